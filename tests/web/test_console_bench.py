"""bench/console_pop.py keeps working (it runs only with --only, so the quick benchmark pass does not cover it):
a few rounds in headless Chromium, each hand-over stamped arrived <= put in the page <= framed."""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.browser


async def test_console_pop_benchmark_measures_each_round() -> None:
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        pytest.skip("browser test skipped: no chromium binary (apt-get install chromium)")
    pytest.importorskip("playwright", reason="browser test skipped: playwright is not installed")
    from bench.console_pop import measure

    samples = await measure(3)
    assert [len(v) for v in samples.values()] == [3, 3, 3]
    for arrived, dom, framed in zip(samples["arrive_ms"], samples["dom_ms"], samples["pop_ms"], strict=True):
        assert -1 <= arrived <= dom <= framed  # the page stamps whole milliseconds
