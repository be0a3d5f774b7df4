"""Shared fixtures: where the recorded Asterisk traces and the lab configuration live (inside the repository).

Every test outside ``tests/live/`` runs from a clone with nothing beside it; ``tests.shared_guard`` fails a test
that reads the lab folder CI happens to have there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ("tests.shared_guard",)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
#: The configuration of the Asterisk the traces were recorded on (``etc/``, ``sipp/``, README.md).
LAB = FIXTURES / "asterisk-lab"
#: Folders where every test reads "today", a period or a target (KPIs, report, wallboard, demo): marked
#: ``date_sensitive``, which scripts/check runs again under faked far-away dates at day boundaries. A
#: date-sensitive test elsewhere carries ``@pytest.mark.date_sensitive`` (or ``pytestmark``) itself.
DATE_SENSITIVE_DIRS = ("web", "store", "demo")


def traces_dir() -> Path:
    """The real Asterisk 22 traces: ``$CALLBRIDGE_TRACES`` or ``tests/fixtures/asterisk-22``.

    A folder without recordings fails at once (also at collection time, where tests are parametrised over the
    scenarios): an empty list of scenarios would let those tests pass without testing anything.
    """
    env = os.environ.get("CALLBRIDGE_TRACES")
    path = Path(env) if env else FIXTURES / "asterisk-22"
    if not any(path.glob("*.rx.raw")):
        origin = "$CALLBRIDGE_TRACES" if env else "the repository"
        pytest.fail(f"no recorded traces (*.rx.raw) at {path} (from {origin})", pytrace=False)
    return path


@pytest.fixture(scope="session")
def traces() -> Path:
    return traces_dir()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = REPO / "tests"
    for item in items:
        path = item.path.resolve()
        if path.is_relative_to(tests) and path.relative_to(tests).parts[0] in DATE_SENSITIVE_DIRS:
            item.add_marker(pytest.mark.date_sensitive)
