"""The comparison of the live PBX with the simulator (simtwin) is itself real: the simulator side runs here."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML
from simtwin import ALLOWLIST, SCENARIOS, differences, run_on_simulator, sequence, until


def test_the_simulator_twin_of_the_blind_scenario_gives_a_comparable_sequence(tmp_path: Path) -> None:
    seq = run_on_simulator("blind_12345_to_110_mqtt", tmp_path, "13700000051")
    types = [item[0] for item in seq]
    assert types.index("call.offered") < types.index("transfer.requested") < types.index("transfer.answered")
    requested = next(i for i in seq if i[0] == "transfer.requested")
    assert requested[1:4] == ("12345", "12345", "110") and requested[6] == "13700000051"
    verified = next(i for i in seq if i[0] == "transfer.number_verified")
    assert verified[7] == "13700000051"  # presented_num
    assert differences(seq, seq, "blind_12345_to_110_mqtt") == []
    assert until(seq, "transfer.answered")[-1][0] == "transfer.answered"
    changed = [i if i[0] != "transfer.answered" else (*i[:8], "PJSIP/110@hotline-110-backup", *i[9:]) for i in seq]
    assert differences(seq, changed, "blind_12345_to_110_mqtt")  # a different line is a difference


def test_sequence_reads_mqtt_envelopes_like_domain_events() -> None:
    env = {"type": "org.callbridge.transfer.failed", "data": {"call_id": "c1", "hotline": "12345",
                                                             "reason": "busy", "transfer_id": "t9"}}
    assert sequence([env, {"type": "org.callbridge.command.received", "data": {"call_id": "c1"}}], "c1") == [
        ("transfer.failed", "12345", None, None, None, "busy", None, None, None, None, None)]
    assert sequence([env], "other") == []


def test_the_simulator_twin_of_busy_primary_then_backup(tmp_path: Path) -> None:
    seq = until(run_on_simulator("busy_122_backup", tmp_path, "13700000052"), "transfer.answered")
    backup = next(i for i in seq if i[0] == "transfer.backup_line")
    assert backup[3] == "122" and backup[5] == "busy" and backup[8] == "PJSIP/122@hotline-122-backup"
    assert seq[-1][0] == "transfer.answered" and seq[-1][8] == "PJSIP/122@hotline-122-backup"


def test_the_simulator_twin_of_the_attended_expert_consultation(tmp_path: Path) -> None:
    seq = until(run_on_simulator("attended_119_expert", tmp_path, "13700000053"), "transfer.answered")
    ringing = next(i for i in seq if i[0] == "transfer.ringing")
    assert ringing[3] == "119" and ringing[4] == "attended" and ringing[8] == "q-119-expert"
    assert not [i for i in seq if i[0] == "transfer.failed"]


def test_every_compared_scenario_has_its_allowlist_entry_and_no_entry_is_stale() -> None:
    doc = YAML(typ="safe").load(ALLOWLIST.read_text("utf-8"))
    assert set(doc) - {"all"} == set(SCENARIOS)
    for entries in doc.values():
        assert all(set(e) == {"item", "reason"} and e["reason"].strip() for e in entries or []), entries


def test_room_joins_may_interleave_with_the_legs_progress_but_nothing_else_may() -> None:
    """A three-way's Redirect into the room and the hotline leg's Originate run in parallel on the PBX: the
    joins are compared in their own order; any other change of order is still a difference."""
    join = ("conference.joined", "12345")
    ringing, answered = ("transfer.ringing", "12345"), ("transfer.answered", "12345")
    scenario = "threeway_120_agent_leaves"
    assert differences([join, join, ringing, answered], [ringing, join, join, answered], scenario) == []
    assert differences([ringing, answered], [answered, ringing], scenario)
    assert differences([join, ringing], [ringing], scenario)
