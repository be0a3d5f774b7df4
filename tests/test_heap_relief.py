"""Overload (issue 17.5): after a burst the daemon gives freed C-heap memory back (``malloc_trim``) while
its RSS stands well above the lowest level seen; not otherwise."""

from __future__ import annotations

import asyncio
import random

import pytest

from callbridge.heap import HeapRelief, glibc_trim, rss_bytes

MIB = 1024 * 1024


async def test_trims_only_while_the_rss_stands_above_its_lowest_level_by_the_slack() -> None:
    levels = iter([60 * MIB, 70 * MIB, 90 * MIB, 75 * MIB, 74 * MIB, 58 * MIB, 80 * MIB, 60 * MIB])
    current = [0]
    trims: list[int] = []

    def rss() -> int:
        current[0] = next(levels)
        return current[0]

    relief = HeapRelief(slack=16 * MIB, rss=rss, trim=lambda: trims.append(current[0]))
    await relief.check()  # 60: the lowest
    await relief.check()  # 70: within the slack
    assert trims == []
    await relief.check()  # 90: trimmed; 75 after
    assert trims == [90 * MIB] and relief.released == 15 * MIB
    await relief.check()  # 74: within the slack of 60
    await relief.check()  # 58: a new lowest
    assert relief.lowest == 58 * MIB and relief.trims == 1
    await relief.check()  # 80 > 58 + 16: trimmed; 60 after
    assert relief.trims == 2 and relief.released == 35 * MIB


async def test_without_a_c_library_trim_it_does_nothing() -> None:
    relief = HeapRelief(rss=lambda: 500 * MIB, trim=None)  # as on a system without glibc
    assert not relief.can_trim
    await asyncio.wait_for(relief.run(), 1)  # returns at once instead of looping


def test_malloc_trim_gives_freed_heap_memory_back() -> None:
    trim = glibc_trim()
    if trim is None:
        pytest.skip("no glibc malloc_trim on this system")
    rng = random.Random(17)
    # Objects above pymalloc's 512-byte limit come from malloc; keep one in fifty so the heap is fragmented
    # (glibc only returns the top of its heap by itself).
    junk = [bytes(rng.randrange(600, 3000)) for _ in range(60_000)]
    kept = junk[::50]
    del junk
    before = rss_bytes()
    trim()
    after = rss_bytes()
    assert kept
    assert before - after > 20 * MIB, (before, after)
