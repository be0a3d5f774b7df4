"""The tracker on real recordings of the live suite (``tests/fixtures/asterisk-22-live``, issue 16's "real
recordings only"): callbridge's own AMI sessions with a real Asterisk 22.10.1, one per live scenario.

For every recording: it decodes, exactly one ``call.ended`` per call, nothing left in the tracker once the
PBX is empty, each transfer with exactly one outcome.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from callbridge.calls.tracker import CallTracker
from callbridge.testing.replay import events_from_raw, replay_events, times_from_log

LIVE = Path(__file__).resolve().parents[1] / "fixtures" / "asterisk-22-live"
RECORDINGS = sorted(LIVE.glob("*.rx.raw"))


def test_the_live_recordings_are_there_with_their_files() -> None:
    assert len(RECORDINGS) >= 15
    for rx in RECORDINGS:
        stem = rx.name.removesuffix(".rx.raw")
        assert (LIVE / f"{stem}.tx.raw").is_file() and (LIVE / f"{stem}.log").is_file(), stem
        assert rx.read_bytes().startswith(b"Asterisk Call Manager/11.0.0\r\n"), stem
        assert stem in (LIVE / "README.md").read_text("utf-8"), f"{stem} missing from the README table"


@pytest.mark.parametrize("rx", RECORDINGS, ids=[p.name.removesuffix(".rx.raw") for p in RECORDINGS])
def test_every_live_recording_keeps_the_call_invariants(rx: Path) -> None:
    events = list(events_from_raw(rx.read_bytes()))
    assert events, rx.name
    times = times_from_log((LIVE / rx.name.replace(".rx.raw", ".log")).read_text("utf-8"))
    derived, tracker = replay_events(events, CallTracker(), times if len(times) == len(events) else None)
    calls = {e.call_id for e in derived if e.TYPE.startswith("call.")}
    assert calls, "a live scenario has at least one call"
    ended = Counter(e.call_id for e in derived if e.TYPE == "call.ended")
    assert all(ended[c] == 1 for c in calls), f"call.ended per call: {dict(ended)} for {sorted(calls)}"
    assert not tracker.calls, "the recording ends with every channel hung up"
    for call_id in calls:
        transfers = [e for e in derived if e.call_id == call_id and e.TYPE == "call.transferred"]
        outcomes = [e for e in derived if e.call_id == call_id and e.TYPE == "call.transfer_ended"]
        assert len(outcomes) == len(transfers), f"{call_id}: {len(transfers)} transfers, {len(outcomes)} outcomes"
