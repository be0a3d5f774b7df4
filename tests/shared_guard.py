"""A pytest plugin that fails any test outside ``tests/live/`` which reads the lab folder beside the clone.

CI has ``../shared/`` beside its clone, a user's clone has nothing there: a test that read it would pass in CI
and fail for every user. An audit hook (``sys.addaudithook``) sees every ``open``, ``os.scandir`` and
``os.listdir`` of this process, so a read is caught even where the folder exists. The read itself is allowed
(raising inside the hook would be swallowed by code that catches ``OSError``); the test that made it fails at
teardown, and a read outside a test's own check (collection, parametrisation, session teardown) fails the
session.

Only the live-PBX suite (``tests/live/``) may use the lab's Asterisk there.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
#: The folder a clone must not need (what CI happens to have beside the repository).
SHARED = REPO.parent / "shared"
LIVE = REPO / "tests" / "live"
_WATCHED = frozenset({"open", "os.scandir", "os.listdir"})


_ROOT = os.path.realpath(SHARED)


def reads_shared(path: str) -> bool:
    """Whether ``path`` (absolute, or relative to the working directory; symlinks followed) is in the lab folder."""
    full = os.path.realpath(path)
    return full == _ROOT or full.startswith(_ROOT + os.sep)


def is_live(test_path: Path) -> bool:
    return test_path.resolve().is_relative_to(LIVE)


def _called_from_live() -> bool:
    """Whether live-suite code is on the stack (its session fixtures may be torn down after another test)."""
    live = str(LIVE) + os.sep
    here = inspect.currentframe()
    frame = here.f_back if here is not None else None  # start at the caller
    while frame is not None:
        if frame.f_code.co_filename.startswith(live):
            return True
        frame = frame.f_back
    return False


class _Guard:
    def __init__(self) -> None:
        self.where = "collection"  # the node id of the test running now, or where the session is
        self.exempt = False
        self.reads: list[tuple[str, str]] = []  # (where, path)
        self._busy = False

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event not in _WATCHED or self.exempt or self._busy or not args:
            return
        target = args[0]
        if not isinstance(target, str | bytes | os.PathLike):
            return  # open() of a file descriptor
        self._busy = True  # realpath may open nothing today, but never recurse if it ever does
        try:
            path = os.fsdecode(target)
            if reads_shared(path) and not _called_from_live():
                self.reads.append((self.where, path))
        finally:
            self._busy = False

    def take(self, where: str) -> list[str]:
        """The reads made during ``where``, forgotten once reported (what is left fails the session)."""
        taken = [path for w, path in self.reads if w == where]
        self.reads = [(w, path) for w, path in self.reads if w != where]
        return taken


_guard = _Guard()
sys.addaudithook(_guard.audit)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _guard.where, _guard.exempt = item.nodeid, is_live(item.path)
    yield
    _guard.where, _guard.exempt = "between tests", False


@pytest.fixture(autouse=True)
def _no_read_of_the_lab_folder(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    taken = _guard.take(request.node.nodeid)
    if taken:
        pytest.fail(f"this test read {SHARED} (a clone has nothing beside it; use tests/fixtures/): "
                    + ", ".join(sorted(set(taken))), pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _guard.reads:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    outside = sorted({f"{path} (during {where})" for where, path in _guard.reads})
    if outside:
        terminalreporter.section("reads of the lab folder outside a test", red=True)
        terminalreporter.line(f"{SHARED} was read (a clone has nothing beside it; use tests/fixtures/):")
        for line in outside:
            terminalreporter.line(f"  {line}")
