"""``python -m bench --quick --only ingest`` runs and writes a valid result (its speed is not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_ingest_writes_valid_json(tmp_path: Path) -> None:
    result_file = tmp_path / "ingest.quick.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "ingest", "--results", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(result_file.read_text(encoding="utf-8"))
    assert data["name"] == "ingest" and data["params"]["quick"] is True
    assert data["params"]["events"] >= 50_000
    for key in ("callbridge_events_per_s", "callbridge_core_events_per_s"):
        assert data["results"][key] > 0
    assert data["baselines"]["panoramisk_events_per_s"] > 0 and data["baselines"]["bare_protocol_events_per_s"] > 0
    assert set(data["ratios"]) >= {"vs_panoramisk", "vs_bare"}
    assert isinstance(data["met"], bool) and data["machine"]["cores"] >= 1
