"""CPython's object arenas on transparent huge pages, for the daemon (issue 19.3).

At 100k calls in progress the tracker holds a few hundred MB of small objects and each AMI event touches a
random call among them; on 4 KiB pages nearly every such touch misses the TLB as well as the cache, which is
most of why ingest cost per event grew with the calls tracked. The optional C module
:mod:`callbridge._hugearenas` (built by ``setup.py``; its header explains it) gives pymalloc arenas cut from
2 MiB-aligned regions marked for transparent huge pages, through CPython's public arena-allocator API.

:func:`use_huge_arenas` installs it. Only the daemon's entry point (and the benchmarks, for every client of a
comparison alike) calls it, as early as possible: arenas given out before keep their small pages. It does
nothing when the module is not built, when the kernel has transparent huge pages off (``never``), or with
``CALLBRIDGE_HUGE_PAGES=0`` in the environment (e.g. where direct compaction stalls would matter more than
the TLB: with ``defrag=madvise`` the kernel may compact memory when such a region is first touched).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def thp_mode(path: Path = THP_MODE) -> str:
    """The kernel's transparent huge page mode (``always``, ``madvise``, ``never``), '' when unknown."""
    try:
        text = path.read_text("ascii")
    except OSError:
        return ""
    chosen = [word[1:-1] for word in text.split() if word.startswith("[") and word.endswith("]")]
    return chosen[0] if chosen else ""


def _module() -> Any:
    try:
        return importlib.import_module("callbridge._hugearenas")
    except ImportError:
        return None


def use_huge_arenas(environ: Mapping[str, str] | None = None, mode: str | None = None) -> str:
    """Install the huge-page arena allocator when it can help; say what was done (for the start-up log)."""
    env = os.environ if environ is None else environ
    if env.get("CALLBRIDGE_HUGE_PAGES", "1") == "0":
        return "off: CALLBRIDGE_HUGE_PAGES=0"
    mode = thp_mode() if mode is None else mode
    if mode == "never":
        return "off: transparent huge pages are disabled in the kernel (never)"
    module = _module()
    if module is None:
        return "off: callbridge._hugearenas is not built (no C compiler at install)"
    installed = module.install()
    return f"on (transparent huge pages: {mode or 'unknown'})" if installed else "on (already)"


def huge_arena_stats() -> dict[str, Any]:
    """The allocator's counters (regions mapped, arenas in use and free); empty when it is not built."""
    module = _module()
    return dict(module.stats()) if module is not None else {}
