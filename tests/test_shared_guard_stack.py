"""The shared-files guard knows when live-suite code is on the stack (its session teardown may run later)."""

from __future__ import annotations

from tests.shared_guard import LIVE, _called_from_live


def test_live_code_on_the_stack_is_seen_and_other_code_is_not() -> None:
    assert _called_from_live() is False
    namespace: dict[str, object] = {"probe": _called_from_live}
    # code whose file name is in tests/live/, as the live suite's fixtures are
    exec(compile("seen = probe()", str(LIVE / "conftest.py"), "exec"), namespace)
    assert namespace["seen"] is True
