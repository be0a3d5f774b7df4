"""``callbridge replay``: raw AMI text or JSON arrays in, JSON lines out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from callbridge.ami.framing import AmiFramer, AmiMessage
from callbridge.cli import main
from tests.calls.traces import full_name, trace_bytes, trace_path


def _lines(text: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def test_replay_prints_stable_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(trace_path(full_name("04")))]) == 0
    records = _lines(capsys.readouterr().out)
    assert [r["type"] for r in records] == ["call.offered", "call.ringing", "call.answered", "call.transferred",
                                            "call.ringing", "call.answered", "call.transfer_ended",
                                            "call.ended"]  # fmt: skip
    for record in records:
        assert list(record)[:4] == ["type", "ts", "call_id", "hotline"]
    assert records[3]["target"] == "12345@internal" and records[3]["caller_num"] == "13800138000"


def test_replay_of_a_json_array_matches_the_raw_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = trace_bytes(full_name("09"))
    objects = [dict(f.headers) for f in AmiFramer().feed(raw) if isinstance(f, AmiMessage) and f.kind == "event"]
    json_trace = tmp_path / "09.json"
    json_trace.write_bytes(orjson.dumps(objects))
    assert main(["replay", str(trace_path(full_name("09")))]) == 0
    from_raw = _lines(capsys.readouterr().out)
    assert main(["replay", str(json_trace)]) == 0
    assert _lines(capsys.readouterr().out) == from_raw and len(from_raw) > 10


def test_replay_state_shows_the_final_picture(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--state", "--no-events", str(trace_path(full_name("21")))]) == 0
    (dump,) = _lines(capsys.readouterr().out.replace("\n", " ").replace("} {", "}\n{"))
    state = dump["state"]
    assert isinstance(state, dict) and state["calls"] == {} and "support" in state["queues"]


def test_replay_refuses_unreadable_and_invalid_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "missing.rx.raw")]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text("[{oops")
    assert main(["replay", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_replay_entry_point_keeps_stdout_pure_json() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "callbridge", "replay", "-v", str(trace_path(full_name("18")))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [r["digit"] for r in _lines(proc.stdout) if r["type"] == "call.dtmf"] == ["*", "1", "5"]
    assert "call.transition" in proc.stderr, "-v logs the tracker's decisions to stderr"
