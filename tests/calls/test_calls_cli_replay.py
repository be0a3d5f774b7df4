"""``callbridge replay``: raw AMI text or JSON arrays in, JSON lines out."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from callbridge.ami.framing import AmiFramer, AmiMessage
from callbridge.cli import main
from tests.calls.traces import CASES_DIR, full_name, trace_bytes, trace_path
from tests.conftest import REPO


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
    assert main(["replay", "--no-log-times", str(trace_path(full_name("09")))]) == 0  # a JSON array has no log
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
    assert main(["replay", str(bad)]) == 4
    assert "not valid JSON" in capsys.readouterr().err


def _refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, data: bytes) -> tuple[int, str, str]:
    trace = tmp_path / name
    trace.write_bytes(data)
    code = main(["replay", str(trace)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("name", "mangle", "code", "says"),
    [
        ("cut.rx.raw", lambda raw: raw[: raw.rindex(b"Event: Hangup") + 40], 3, "truncated"),
        ("object.json", lambda raw: b'{"Event": "Newchannel", "Channel": "PJSIP/a-1"}', 5, "array"),
        ("noise.rx.raw", lambda raw: bytes((i * 131 + 7) % 256 for i in range(4096)), 6, "not an AMI stream"),
        ("latin1.rx.raw", lambda raw: raw.replace(b"Agent 1001", "Agent 张".encode("gb18030")), 7, "not UTF-8"),
    ],
)  # fmt: skip
def test_replay_refuses_what_is_no_trace_with_one_line_and_its_own_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, mangle: Callable[[bytes], bytes], code: int,
    says: str,
) -> None:  # fmt: skip
    raw = trace_bytes(full_name("04"))
    got, out, err = _refusal(tmp_path, capsys, name, mangle(raw))
    assert (got, out) == (code, ""), err
    assert len(err.strip().splitlines()) == 1 and says in err and name in err


def test_replay_times_come_from_the_recordings_log(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(trace_path(full_name("15")))]) == 0
    records = _lines(capsys.readouterr().out)
    xfer = next(r for r in records if r["type"] == "call.transferred")
    ended = next(r for r in records if r["type"] == "call.transfer_ended")
    assert 9.9 < float(str(ended["ts"])) - float(str(xfer["ts"])) < 10.2, "the 10 s HOTLINE_TIMEOUT"
    assert main(["replay", "--no-log-times", str(trace_path(full_name("15")))]) == 0
    logical = _lines(capsys.readouterr().out)
    gap = float(str(logical[-2]["ts"])) - float(str(next(r for r in logical if r["type"] == "call.transferred")["ts"]))
    assert gap < 1.0, "without the log: 10 ms per event"


def test_replay_prefers_timestamp_headers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = trace_bytes(full_name("03"))
    objects = [dict(f.headers) for f in AmiFramer().feed(raw) if isinstance(f, AmiMessage) and f.kind == "event"]
    for i, obj in enumerate(objects):
        obj["Timestamp"] = f"{1790000000 + i * 2}.000000"
    trace = tmp_path / "03.json"
    trace.write_bytes(orjson.dumps(objects))
    assert main(["replay", str(trace)]) == 0
    records = _lines(capsys.readouterr().out)
    assert all(float(str(r["ts"])) >= 1790000000 for r in records) and records[-1]["ts"] != records[0]["ts"]


def test_replay_with_a_dialplan_attributes_hotlines(capsys: pytest.CaptureFixture[str]) -> None:
    trace = str(CASES_DIR / "blind_busy_then_backup_answers.rx.raw")
    assert main(["replay", trace]) == 0
    assert {r["hotline"] for r in _lines(capsys.readouterr().out)} == {None}
    assert main(["replay", "--dialplan", str(REPO / "dialplans"), trace]) == 0
    assert {r["hotline"] for r in _lines(capsys.readouterr().out)} == {"12345"}


def test_replay_refuses_a_bad_dialplan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "plan.yaml"
    bad.write_text("version: 1\nhotlines: [oops\n", encoding="utf-8")
    assert main(["replay", "--dialplan", str(bad), str(trace_path(full_name("03")))]) == 8
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1 and "dialplan" in captured.err


def test_replay_entry_point_keeps_stdout_pure_json() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "callbridge", "replay", "-v", str(trace_path(full_name("18")))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [r["digit"] for r in _lines(proc.stdout) if r["type"] == "call.dtmf"] == ["*", "1", "5"]
    assert "call.transition" in proc.stderr, "-v logs the tracker's decisions to stderr"
