"""The live board's memory per call of the day (issue 17.5): the day's waits are kept for the exact p90, so
they grow with the day's calls — 8 bytes a call, not the 32 of a list of floats (a flood of 22,000 calls
grew the daemon by 0.7 MB that way, given back only at midnight). Measured with tracemalloc, no timing."""

from __future__ import annotations

import tracemalloc

from records_scenario import TZ, Story, at

from callbridge.store.live import LiveBoard


def _answered_calls(board: LiveBoard, first: int, count: int) -> None:
    story = Story()
    for i in range(first, first + count):
        story.call(f"c{i}", "12345", f"138{i:08d}", at(i * 0.001), wait=5 + i % 30, outcome="answered",
                   agent="a1", talk=1.0)  # fmt: skip
    for event in story.sorted():
        board.feed(event)


def test_the_days_waits_cost_at_most_16_bytes_a_call() -> None:
    tracemalloc.start()
    try:
        board = LiveBoard(["12345"], tz=TZ)
        _answered_calls(board, 0, 10_000)  # what the board bounds by count (offers remembered) is full now
        before = tracemalloc.get_traced_memory()[0]
        _answered_calls(board, 10_000, 20_000)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown / 20_000 <= 16, f"{grown / 20_000:.1f} bytes a call"
    [tile] = board.snapshot(at(31))["hotlines"]
    exact_p90 = sorted(5 + i % 30 for i in range(30_000))[27_000 - 1]  # nearest rank
    assert tile["answered_today"] == 30_000 and tile["wait_p90_s"] == exact_p90
