"""The tracker's hotline look-up caches its trunk scan per plan: a reload's answers are the new plan's."""

from __future__ import annotations

import shutil
from pathlib import Path

from callbridge.ami.decode import decode
from callbridge.ami.framing import AmiFramer, AmiMessage
from callbridge.dialplan.loader import load_dialplan
from callbridge.engine import authz
from tests.conftest import traces_dir

REPO = Path(__file__).resolve().parents[2]


def snapshot(channel: str, uniqueid: str, linkedid: str) -> authz.ChannelSnapshot:
    values = dict.fromkeys(authz.ChannelSnapshot._fields, "")
    values.update(channel=channel, context="from-trunk", exten="s", uniqueid=uniqueid, linkedid=linkedid)
    return authz.ChannelSnapshot(**values)


def test_trunk_answers_follow_the_current_plan_after_a_reload(tmp_path: Path) -> None:
    shutil.copytree(REPO / "dialplans", tmp_path / "plans")
    before = load_dialplan(tmp_path / "plans")
    path = tmp_path / "plans" / "110.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("@hotline-110-backup", "@elsewhere"), encoding="utf-8")
    after = load_dialplan(tmp_path / "plans")
    current = [before]
    lookup = authz.hotline_of(lambda: current[0])
    leg = snapshot("PJSIP/hotline-110-backup-0000002a", "1.2", "1.1")  # an outbound leg, not the call's root
    assert lookup(leg) == "110"
    assert lookup(leg) == "110"  # answered from the cache
    assert lookup(snapshot("PJSIP/agent1001-0000002b", "1.3", "1.1")) is None
    current[0] = after  # the reload: the backup line no longer reaches that endpoint
    assert lookup(leg) is None
    current[0] = before
    assert lookup(leg) == "110"


def test_cached_answers_equal_a_fresh_look_up_for_every_snapshot_of_the_traces(tmp_path: Path) -> None:
    """Issue 19: answers are cached per (channel, context, exten, root of the call) too; over every snapshot of
    every recorded trace, on two plans in turn, they are what a look-up without any cache answers."""
    shutil.copytree(REPO / "dialplans", tmp_path / "plans")
    plans = [load_dialplan(tmp_path / "plans")]
    path = tmp_path / "plans" / "110.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("@hotline-110-backup", "@elsewhere"), encoding="utf-8")
    plans.append(load_dialplan(tmp_path / "plans"))
    snaps = []
    for trace in sorted(traces_dir().glob("*.rx.raw")):
        for frame in AmiFramer().feed(trace.read_bytes()):
            if isinstance(frame, AmiMessage) and frame.kind == "event":
                event = decode(frame)
                snaps += [v for v in (getattr(event, "snap", None), getattr(event, "dest", None)) if v]
    assert len(snaps) > 1000
    current = [plans[0]]
    lookup = authz.hotline_of(lambda: current[0])
    answered = set()
    for round_no in range(4):
        current[0] = plans[round_no % 2]
        for snap in snaps:
            fresh = authz.hotline_of(lambda: current[0])(snap)
            assert lookup(snap) == fresh, snap
            answered.add(fresh)
    assert {"110", None} <= answered
