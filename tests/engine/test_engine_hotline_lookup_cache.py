"""The tracker's hotline look-up caches its trunk scan per plan: a reload's answers are the new plan's."""

from __future__ import annotations

import shutil
from pathlib import Path

from callbridge.dialplan.loader import load_dialplan
from callbridge.engine import authz

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
