"""``callbridge records`` and ``callbridge report`` on a records file of the scenario morning."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from records_scenario import PERIOD, morning

from callbridge.cli import main
from callbridge.store.records import RecordStore

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "records.sqlite3"
    store = RecordStore.sqlite(path)
    store.write(morning())
    store.close()
    return path


def test_records_json_csv_and_timeline(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["records", "--db", str(db), "--number", "13800000002"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["call_id"], r["hotline"]) for r in rows] == [("c2", "12345"), ("c2-120", "120")]
    frm, to = PERIOD.split("..")
    assert main(["records", "--db", str(db), "--hotline", "110", "--from", frm, "--to", to, "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sorted(r["call_id"] for r in table) == ["c1", "p1", "p2", "p3", "p4", "p5"]
    assert main(["records", "--db", str(db), "--id", "c1"]) == 0
    timeline = json.loads(capsys.readouterr().out)
    assert timeline["transfers"][0]["both_sides_closed"] is True
    assert main(["records", "--db", str(db), "--id", "c1", "--format", "csv"]) == 0
    events = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert events[0]["type"] == "call.offered" and len(events) == len(timeline["events"])


def test_records_errors(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["records", "--db", str(db), "--id", "nope"]) == 1
    assert main(["records", "--db", str(db), "--from", "last tuesday"]) == 1
    assert "ISO" in capsys.readouterr().err
    missing = tmp_path / "none.sqlite3"
    assert main(["records", "--db", str(missing)]) == 2
    assert not missing.exists()  # a query never creates an empty records file


def test_report_markdown_csv_and_dialplan_targets(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no settings, no dialplans here: 80 % for every hotline
    assert main(["report", "--db", str(db), "--period", PERIOD]) == 0
    md = capsys.readouterr().out
    assert "| 12345 | 12 | 8 | 80.0% | 80% |" in md  # 8 of 10 finished offers; 2 still waiting
    out = tmp_path / "kpi.csv"
    dialplans = REPO / "dialplans"
    args = ["report", "--db", str(db), "--period", PERIOD, "--format", "csv", "-o", str(out)]
    if dialplans.is_dir():
        args += ["--dialplan", str(dialplans)]
    assert main(args) == 0
    rows = {r["hotline"]: r for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))}
    assert rows["120"]["answer_rate"] == "1" and rows["110"]["offered"] == "6"
    if dialplans.is_dir():
        assert rows["12345"]["target"] == "0.85" and rows["110"]["target"] == "0.98"
    assert main(["report", "--db", str(db), "--period", "2026-13"]) == 1
