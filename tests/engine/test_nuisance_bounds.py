"""The nuisance watch's memory is bounded by count and by age (issue 17.5): a flood of distinct numbers keeps
at most ``MAX_NUMBERS`` windows, the least recently calling number forgotten first, a number's window
at most ``MAX_CALLS`` calls and all windows together ``MAX_HELD``; a repeat caller is still flagged."""

from __future__ import annotations

from callbridge.dialplan.model import NuisancePolicy
from callbridge.engine.nuisance import MAX_CALLS, MAX_HELD, MAX_NUMBERS, NuisanceWatch

DAY = NuisancePolicy(window=86_400, threshold=5)  # nothing leaves the window by age during these tests


def test_a_million_distinct_callers_keep_at_most_the_cap_of_windows() -> None:
    w = NuisanceWatch()
    for i in range(1_000_000):
        assert w.offered(DAY, f"13{i:09d}", "12345", i * 0.001) is None
        assert w.tracked_numbers() <= MAX_NUMBERS
    assert w.tracked_numbers() == MAX_NUMBERS
    assert w.evicted == 1_000_000 - MAX_NUMBERS
    # the ones kept are the most recent callers: the first number starts afresh, the last is still counted
    assert w.release("13000000000") == 0
    assert w.release(f"13{999_999:09d}") == 1


def test_a_repeat_caller_is_kept_and_flagged_among_a_flood_of_distinct_numbers() -> None:
    w = NuisanceWatch()
    verdicts = []
    for i in range(200_000):
        if i % (MAX_NUMBERS // 2) == 0:  # calls again before MAX_NUMBERS other numbers called
            verdicts.append(w.offered(DAY, "13511112222", "12345", i * 0.001))
        w.offered(DAY, f"13{i:09d}", "12345", i * 0.001)
    flagged = [v for v in verdicts if v is not None]
    assert len(verdicts) == 40 and len(flagged) == 36  # from its fifth call on
    assert flagged[-1].count == 40


def test_a_number_calling_non_stop_keeps_at_most_max_calls_and_is_still_flagged() -> None:
    w = NuisanceWatch()
    last = None
    for i in range(3 * MAX_CALLS):
        last = w.offered(DAY, "13511112222", "12345", float(i))
    assert last is not None and last.count == MAX_CALLS
    assert w.held == MAX_CALLS
    assert w.release("13511112222") == MAX_CALLS
    assert w.held == 0


def test_repeat_callers_of_a_flood_hold_at_most_max_held_calls_in_all() -> None:
    # The overload benchmark's flood: the same few thousand numbers, each calling again and again.
    numbers = [f"13{i:09d}" for i in range(4_000)]
    w = NuisanceWatch()
    t = 0.0
    for _ in range(40):  # 160,000 calls within the window
        for num in numbers:
            t += 0.001
            w.offered(DAY, num, "12345", t)
            assert w.held <= MAX_HELD
    assert w.held == sum(w.release(n) for n in numbers) <= MAX_HELD
    assert w.held == 0 and w.tracked_numbers() == 0


def test_numbers_whose_last_call_left_the_window_are_forgotten_without_waiting_for_the_cap() -> None:
    policy = NuisancePolicy(window=60, threshold=3)
    w = NuisanceWatch(max_numbers=1_000_000)
    for i in range(50_000):  # a new number every 0.1 s: 600 in any window
        w.offered(policy, f"13{i:09d}", "12345", i * 0.1)
        assert w.tracked_numbers() <= 601
    assert w.evicted == 0
    # a number that called within the window is still counted across the prune
    w.offered(policy, "13800000000", "12345", 5000.0)
    w.offered(policy, "13800000000", "12345", 5030.0)
    verdict = w.offered(policy, "13800000000", "12345", 5059.0)
    assert verdict is not None and verdict.count == 3
