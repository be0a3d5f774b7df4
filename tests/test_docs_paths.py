"""docs/ARCHITECTURE.md names only modules that exist (a newcomer follows its paths to the files)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "ARCHITECTURE.md"


def named_paths(text: str) -> set[str]:
    """Every ``callbridge/...py`` or ``tests/...py`` path the text names in full."""
    return set(re.findall(r"\b((?:callbridge|tests)/[\w/]+\.py)\b", text))


def test_the_path_finder_sees_full_paths_only() -> None:
    found = named_paths("see `callbridge/ami/decode.py` and tests/test_boundaries.py, not ami/x.py")
    assert found == {"callbridge/ami/decode.py", "tests/test_boundaries.py"}


def test_every_module_the_architecture_names_exists() -> None:
    paths = named_paths(DOC.read_text(encoding="utf-8"))
    assert paths, "the architecture document names no module"
    missing = sorted(p for p in paths if not (REPO / p).is_file())
    assert not missing, f"docs/ARCHITECTURE.md names modules that do not exist: {missing}"
