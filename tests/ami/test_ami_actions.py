"""Typed AMI actions: rendered exactly as the actions that worked on the real Asterisk 22; unsafe refused."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.ami import actions as a
from callbridge.ami.framing import AmiFramer, AmiMessage
from callbridge.errors import UnsafeValueError


def sent_actions(traces: Path, scenario: str) -> list[AmiMessage]:
    data = next(traces.glob(f"{scenario}*.tx.raw")).read_bytes()
    return [f for f in AmiFramer(expect_banner=False).feed(data) if isinstance(f, AmiMessage)]


def recorded(traces: Path, scenario: str, name: str, nth: int = 0) -> AmiMessage:
    """The ``nth`` action called ``name`` that the lab sent in ``scenario``."""
    return [m for m in sent_actions(traces, scenario) if m.name == name][nth]


def without_action_id(msg: AmiMessage) -> list[tuple[str, str]]:
    return [(k, v) for k, v in msg.headers if k != "ActionID"]


# (scenario, which occurrence of that action in its tx.raw, our typed equivalent)
RECORDED = [
    (
        "07",
        0,
        a.Originate(
            channel="Local/p1@sim",
            timeout_ms=30000,
            context="internal",
            exten="conf-room1",
            priority=1,
            caller_name="p1",
            caller_num="13800138000",
            channel_id="lab-p1",
        ),
    ),
    ("02", 0, a.Bridge(channel1="Local/alice@sim-00000000;1", channel2="Local/bob@sim-00000001;1", tone="no")),
    ("07", 0, a.ConfbridgeListRooms()),
    ("07", 0, a.ConfbridgeList(conference="room1")),
    ("07", 0, a.ConfbridgeMute(conference="room1", channel="Local/p2@sim-0000000a;1")),
    ("07", 0, a.ConfbridgeKick(conference="room1", channel="Local/p3@sim-0000000b;1")),
    ("07", 0, a.Hangup.matching(".*", cause=16)),
    (
        "08",
        0,
        a.Redirect(
            channel="Local/caller@sim-0000000c;1",
            context="internal",
            exten="conf-3way",
            extra_channel="PJSIP/agent1001-00000006",
        ),
    ),
    ("04", 0, a.BlindTransfer(channel="PJSIP/agent1001-00000000", context="internal", exten="12345")),
    ("06", 0, a.Atxfer(channel="PJSIP/agent1001-00000004", context="internal", exten="1002")),
    ("17", 0, a.CancelAtxfer(channel="PJSIP/agent1001-0000000a")),
    (
        "09",
        0,
        a.QueueAdd(queue="support", interface="PJSIP/agent1002", member_name="Agent 1002", penalty=0, paused=False),
    ),
    ("09", 0, a.QueueRemove(queue="support", interface="PJSIP/agent1002")),
    ("09", 0, a.QueueSummary(queue="support")),
    (
        "19",
        1,
        a.QueueChangePriorityCaller(
            queue="support", caller="Local/callerB@sim-00000009;1", priority=10, immediate=True
        ),
    ),
    ("19", 0, a.QueueWithdrawCaller(queue="support", caller="Local/callerA@sim-00000008;1", withdraw_info="2001")),
    ("18", 1, a.PlayDTMF(channel="PJSIP/agent1001-0000000c", digit="9", duration_ms=200, receive=True)),
    ("15", 0, a.Setvar(variable="HOTLINE_TIMEOUT", value="10")),
    ("03", 0, a.Getvar(channel="Local/caller@sim-00000002;1", variable="CALLERID(num)")),
    ("02", 0, a.BridgeInfo(bridge_uniqueid="f6b944ee-586c-43f4-8821-b1825ebb8978")),
    ("01_", 0, a.CoreSettings()),
    ("01_", 0, a.CoreStatus()),
]


@pytest.mark.parametrize(("scenario", "nth", "action"), RECORDED, ids=lambda v: getattr(v, "name", str(v)))
def test_renders_like_the_recorded_action(traces: Path, scenario: str, nth: int, action: a.Action) -> None:
    assert action.to_headers() == without_action_id(recorded(traces, scenario, action.name, nth))


def test_originate_header_order_and_values_match_scenario_09(traces: Path) -> None:
    lab = recorded(traces, "09", "Originate", 0)
    ours = a.Originate(
        channel="Local/callerA@sim",
        timeout_ms=30000,
        context="internal",
        exten="queue-support",
        caller_name="Caller A prio0",
        caller_num="13900000001",
        variables=(("QUEUE_PRIO", "0"),),
        channel_id="lab-qA",
        other_channel_id="lab-qA-2",
    )
    assert ours.to_headers() == without_action_id(lab)


def test_originate_application_and_several_variables() -> None:
    headers = a.Originate(
        channel="PJSIP/12345@hotline-12345",
        application="Wait",
        data="600",
        async_=False,
        variables=(("__CB_XFER_ID", "x1"), ("__CB_TICKET", "T-9")),
        account="110",
    ).to_headers()
    assert ("Async", "false") in headers
    assert [v for k, v in headers if k == "Variable"] == ["__CB_XFER_ID=x1", "__CB_TICKET=T-9"]
    assert ("Application", "Wait") in headers and ("Data", "600") in headers
    assert not any(k in ("Context", "Exten", "Priority") for k, _ in headers)
    assert headers[-1] == ("Account", "110")


def test_originate_needs_exactly_one_destination() -> None:
    with pytest.raises(ValueError):
        a.Originate(channel="Local/x@sim").to_headers()
    with pytest.raises(ValueError):
        a.Originate(channel="Local/x@sim", exten="1", context="c", application="Wait").to_headers()


def test_redirect_extra_fields_explicit() -> None:
    headers = a.Redirect(
        channel="A",
        context="cb-conf",
        exten="room1",
        extra_channel="B",
        extra_context="cb-hold",
        extra_exten="h",
        extra_priority=3,
    ).to_headers()
    assert headers[-4:] == [
        ("ExtraChannel", "B"),
        ("ExtraContext", "cb-hold"),
        ("ExtraExten", "h"),
        ("ExtraPriority", "3"),
    ]


def test_login_plain_and_md5_and_secret_not_in_repr() -> None:
    plain = a.Login(username="callbridge", secret="s3cret")
    assert plain.to_headers() == [
        ("Action", "Login"),
        ("Username", "callbridge"),
        ("Secret", "s3cret"),
        ("Events", "on"),
    ]
    assert "s3cret" not in repr(plain)
    key = a.md5_key("840415273", "s3cret")
    assert key == hashlib.md5(b"840415273s3cret").hexdigest()
    md5 = a.Login(username="callbridge", key=key)
    assert ("AuthType", "md5") in md5.to_headers() and ("Key", key) in md5.to_headers()
    assert not any(k == "Secret" for k, _ in md5.to_headers())
    assert a.Challenge().to_headers() == [("Action", "Challenge"), ("AuthType", "MD5")]
    with pytest.raises(ValueError):
        a.Login(username="u").to_headers()


def test_setvar_global_has_no_channel_and_queue_pause_bools() -> None:
    assert a.Setvar(variable="X", value="1").to_headers() == [("Action", "Setvar"), ("Variable", "X"), ("Value", "1")]
    assert ("Paused", "true") in a.QueuePause(interface="PJSIP/agent1001", paused=True).to_headers()


def test_actions_are_frozen_and_hashable() -> None:
    action = a.Hangup(channel="PJSIP/agent1001-00000001", cause=16)
    with pytest.raises(dataclasses.FrozenInstanceError):
        action.cause = 17  # type: ignore[misc]
    assert hash(action) == hash(a.Hangup(channel="PJSIP/agent1001-00000001", cause=16))


INJECTION = "x\r\nAction: Hangup\r\nChannel: /.*/"

# Every caller-controlled string slot of the actions the engine sends.
UNSAFE_CASES = [
    lambda v: a.Originate(channel=v, context="c", exten="1"),
    lambda v: a.Originate(channel="Local/x@sim", context="c", exten="1", caller_name=v),
    lambda v: a.Originate(channel="Local/x@sim", context="c", exten="1", caller_num=v),
    lambda v: a.Originate(channel="Local/x@sim", context="c", exten="1", variables=(("CB_TICKET", v),)),
    lambda v: a.Originate(channel="Local/x@sim", context="c", exten="1", variables=((v, "1"),)),
    lambda v: a.Redirect(channel="A", context="c", exten=v),
    lambda v: a.Redirect(channel="A", context="c", exten="1", extra_channel=v),
    lambda v: a.BlindTransfer(channel="A", context="c", exten=v),
    lambda v: a.Atxfer(channel=v, exten="1"),
    lambda v: a.Setvar(channel="A", variable="CB_SUMMARY", value=v),
    lambda v: a.Getvar(variable=v),
    lambda v: a.Hangup(channel=v),
    lambda v: a.QueueAdd(queue="q", interface="PJSIP/a", member_name=v),
    lambda v: a.QueuePause(interface="PJSIP/a", paused=True, reason=v),
    lambda v: a.QueueWithdrawCaller(queue="q", caller="A", withdraw_info=v),
    lambda v: a.ConfbridgeKick(conference=v, channel="all"),
    lambda v: a.PlayDTMF(channel="A", digit=v),
    lambda v: a.UserEvent(user_event="CbTransfer", headers=(("Ticket", v),)),
    lambda v: a.UserEvent(user_event="CbTransfer", headers=((v, "1"),)),
    lambda v: a.Login(username=v, secret="s"),
]


@pytest.mark.parametrize("make", UNSAFE_CASES)
def test_control_characters_refused_in_every_slot(make: object) -> None:
    assert callable(make)
    with pytest.raises(UnsafeValueError):
        make(INJECTION).to_headers()


CONTROL = st.sampled_from([chr(c) for c in range(32) if c != 9] + ["\x7f"])


@given(st.text(), CONTROL, st.text())
def test_any_control_character_in_a_value_is_refused(before: str, control: str, after: str) -> None:
    value = before + control + after
    with pytest.raises(UnsafeValueError):
        a.Setvar(channel="PJSIP/agent1001-00000001", variable="CB_SUMMARY", value=value).to_headers()


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs"))))
def test_printable_unicode_values_pass_unchanged(value: str) -> None:
    headers = a.Setvar(channel="PJSIP/agent1001-00000001", variable="CB_SUMMARY", value=value).to_headers()
    assert headers[-1] == ("Value", value)


def test_callerid_quotes_refused_and_actionid_header_refused() -> None:
    with pytest.raises(UnsafeValueError):
        a.Originate(channel="L", context="c", exten="1", caller_name='Evil" <110>').to_headers()
    with pytest.raises(UnsafeValueError):
        a.UserEvent(user_event="X", headers=(("ActionID", "steal"),)).to_headers()
    with pytest.raises(UnsafeValueError):
        a.Originate(channel="L", context="c", exten="1", variables=(("A=B", "1"),)).to_headers()
