"""pymalloc arenas on transparent huge pages (issue 19.3, callbridge/hugepages.py and callbridge/_hugearenas.c).

The allocator is installed in a child process (it is process-wide and cannot be taken out): there objects are
made and freed, and what the kernel was told is read back from ``/proc/self/smaps``: the arenas lie in
2 MiB-aligned regions flagged for huge pages (``hg`` in VmFlags), and freed arenas give their pages back.
Whether the kernel then really backs them with huge pages depends on its free memory, so that is reported, not
asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from callbridge.hugepages import huge_arena_stats, thp_mode

built = pytest.mark.skipif(not huge_arena_stats(), reason="callbridge._hugearenas is not built (no C compiler)")
linux = pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux's /proc/self/smaps")

CHILD = r"""
import gc, json, re, sys
from callbridge.hugepages import huge_arena_stats, use_huge_arenas

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096

def regions(size):
    # VMAs of whole regions (64 MiB each; neighbours with the same flags merge into one), with their VmFlags
    found, start = [], None
    for line in open("/proc/self/smaps"):
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) ", line)
        if m:
            lo, hi = int(m.group(1), 16), int(m.group(2), 16)
            start = lo if (hi - lo) % size == 0 and hi - lo >= size else None
        elif line.startswith("VmFlags:") and start is not None:
            found.append({"aligned": start % (2 << 20) == 0, "hugepage": " hg" in line})
    return found

status = use_huge_arenas(environ={}, mode=sys.argv[1])
before = huge_arena_stats()
keep = [{"uniqueid": f"1700000000.{i}", "n": [i] * 8, "s": "x" * (i % 300)} for i in range(200_000)]
full = huge_arena_stats()
rss_full = rss()
checksum = sum(len(d["s"]) + d["n"][7] for d in keep)
vmas = regions(full["region_size"])
del keep
gc.collect()
after = huge_arena_stats()
print(json.dumps({"status": status, "before": before, "full": full, "after": after, "vmas": vmas,
                  "checksum": checksum, "rss_full": rss_full, "rss_after": rss()}))
"""


def _child(mode: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


@built
@linux
def test_objects_live_in_aligned_huge_page_regions_and_freed_arenas_give_their_pages_back() -> None:
    out = _child("madvise")
    assert str(out["status"]).startswith("on"), out["status"]
    full, after = out["full"], out["after"]
    assert isinstance(full, dict) and isinstance(after, dict)
    assert full["installed"] and full["fallbacks"] == 0
    assert full["arena_size"] in (256 << 10, 1 << 20)  # CPython's ARENA_SIZE
    assert full["arenas_in_use"] * full["arena_size"] > 100 << 20  # the objects are in our arenas
    assert full["regions"] >= 2
    vmas = out["vmas"]
    assert isinstance(vmas, list) and len(vmas) >= 1
    assert all(v["aligned"] and v["hugepage"] for v in vmas), vmas
    # the objects were intact (the values came back as stored)
    assert out["checksum"] == sum(i % 300 + i for i in range(200_000))
    # freed: the arenas are kept for reuse, their pages given back (RSS falls as with CPython's own munmap)
    assert after["arenas_free"] >= full["arenas_in_use"] // 2
    assert after["arenas_in_use"] < full["arenas_in_use"] // 2
    assert int(str(out["rss_after"])) < int(str(out["rss_full"])) - (50 << 20)


def test_the_module_is_built() -> None:
    if os.environ.get("CALLBRIDGE_NO_C_EXT") == "1":
        pytest.skip("CALLBRIDGE_NO_C_EXT=1: this machine builds no C module")
    assert huge_arena_stats(), "callbridge._hugearenas is not built: run `pip install -e .` with a C compiler"


OFF_CHILD = r"""
import json
from callbridge.hugepages import huge_arena_stats, use_huge_arenas
print(json.dumps([use_huge_arenas(environ={"CALLBRIDGE_HUGE_PAGES": "0"}),
                  use_huge_arenas(environ={}, mode="never"), huge_arena_stats().get("installed", False)]))
"""


def test_it_is_left_off_when_asked_or_when_the_kernel_has_no_huge_pages() -> None:
    # in a child: whether this process has it installed is not the test's to know
    proc = subprocess.run([sys.executable, "-c", OFF_CHILD], capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    asked, never, installed = json.loads(proc.stdout)
    assert asked == "off: CALLBRIDGE_HUGE_PAGES=0"
    assert never.startswith("off: transparent huge pages are disabled"), never
    assert installed is False, "neither call installed it"


def test_the_kernels_mode_is_the_bracketed_word(tmp_path: Path) -> None:
    path = tmp_path / "enabled"
    path.write_text("always [madvise] never\n", "ascii")
    assert thp_mode(path) == "madvise"
    path.write_text("[always] madvise never\n", "ascii")
    assert thp_mode(path) == "always"
    assert thp_mode(tmp_path / "missing") == ""
