"""The narrated day: eight scenes of a city's hotline network, each checked on what MQTT delivered.

Every scene uses its own caller numbers, so one scene's calls can never satisfy another's checks
(nor count towards the nuisance threshold).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from callbridge.demo.stage import Stage, endpoint, who
from callbridge.demo.watch import SeenEvent
from callbridge.errors import CommandError
from callbridge.sim.channels import Channel

#: The citizens of the day (tests check the events a subscriber saw against them).
CALLERS: dict[str, str] = {
    "fight": "13912340001",
    "ambulance": "13912340002",
    "fire_referral": "13912340003",
    "fight_backup": "13912340004",
    "nuisance": "13911112222",
    "after_bad_edit": "13912340007",
    "rescue": "13912340008",
}


@dataclass(frozen=True, slots=True)
class Scene:
    title: str
    play: Callable[[Stage], Awaitable[None]]


def _same_transfer(tid: str) -> Callable[[SeenEvent], bool]:
    return lambda e: e.data.get("transfer_id") == tid


def _presented(stage: Stage, leg_name: str) -> tuple[str, str]:
    leg = stage.sim.channel(leg_name)
    return (leg.conn_num, leg.cid_num) if leg is not None else ("", "")


def _shows(presented: tuple[str, str], caller: str) -> str:
    """What the receiving line displays, in words: the citizen's number (or what it shows instead)."""
    return f"it shows {caller}" if caller in presented else f"it shows {presented[0] or presented[1] or 'nothing'}"


def _ids(presented: tuple[str, str]) -> str:
    return f"ConnectedLineNum={presented[0]} CallerIDNum={presented[1]}"


def _line(failed: object) -> str:
    """``PJSIP/110@hotline-110`` → ``the 110 primary line`` (the trunk endpoint after the ``@``)."""
    endpoint_name = str(failed).rsplit("@", 1)[-1]
    return who(f"PJSIP/{endpoint_name}")


async def _past_the_110_primary(stage: Stage, caller: str, name: str, since: int) -> tuple[Channel, str] | None:
    """A 12345 call answered, its agent presses *1 with the 110 primary down: the backup line is tried.

    Both the backup scene and the back-to-the-agent scene open this way; ``None`` when no agent answered.
    """
    answered = await stage.answered_call(caller, "12345", name)
    if answered is None:
        return None
    _chan, agent = answered
    stage.sim.agent_press(endpoint(agent), "*1")
    await stage.expect_event("primary failed, backup line tried", "transfer.backup_line",
                             lambda e: e.data.get("caller_num") == caller, since=since,
                             show=lambda e: f"{_line(e.data.get('failed_line'))}: {e.data.get('reason')}",
                             internals=lambda e: f"failed_line={e.data.get('failed_line')}")  # fmt: skip
    return answered


async def police_transfer(stage: Stage) -> None:
    caller = CALLERS["fight"]
    stage.say("A citizen calls 12345: two men are fighting in the street. The agent presses *1.",
              "市民拨打 12345 反映街头有人打架，坐席一键按 *1 转 110。")
    since = stage.log.mark
    answered = await stage.answered_call(caller, "12345", "Citizen Wang")
    if answered is None:
        return
    chan, agent = answered
    await stage.pause(1.0)
    stage.sim.agent_press(endpoint(agent), "*1")
    stage.check("agent pressed *1", True, f"{who(agent)} keyed *1", f"{agent} DTMF *1")
    pop = await stage.expect_event(
        "110 screen pop", "transfer.requested",
        lambda e: e.on_hotline("110") and e.data.get("caller_num") == caller, since=since,
        show=lambda e: f"{e.topic} caller_num={e.data['caller_num']} from={e.data.get('from_hotline')} "
                       f"category={e.data.get('category')} agent={e.data.get('agent')}")  # fmt: skip
    if pop is None:
        return
    tid = str(pop.data.get("transfer_id"))
    stage.check("hand-over data on the pop", pop.data.get("from_hotline") == "12345" and bool(pop.data.get("agent")),
                f"from_hotline={pop.data.get('from_hotline')} agent={pop.data.get('agent')}")
    answer = await stage.expect_event("110 answered", "transfer.answered", lambda e: e.on_hotline("110")
                                      and e.data.get("transfer_id") == tid, since=since)  # fmt: skip
    if answer is not None:
        stage.check("the pop came before the answer", pop.seq < answer.seq, f"seq {pop.seq} < {answer.seq}")
    leg = await stage.until(lambda: stage.peers_matching(chan.name, "hotline-110"))
    if not stage.check("caller talks with the 110 line", bool(leg), f"on {who(leg[0])}" if leg else "no 110 line",
                       leg[0] if leg else ""):  # fmt: skip
        return
    assert leg is not None
    presented = _presented(stage, leg[0])
    stage.check("110 sees the citizen's number (PBX side)", caller in presented, _shows(presented, caller),
                _ids(presented))
    handover = stage.sim.channel_vars(leg[0])
    stage.check("hand-over data reaches the 110 line", handover.get("CB_CALLER_NUM") == caller
                and handover.get("CB_XFER_ID") == tid, f"caller {handover.get('CB_CALLER_NUM')} and the transfer",
                f"CB_CALLER_NUM={handover.get('CB_CALLER_NUM')} CB_XFER_ID={handover.get('CB_XFER_ID')}")  # fmt: skip
    await stage.expect_event("number carrying verified", "transfer.number_verified", _same_transfer(tid),
                             since=since, show=lambda e: f"presented_num={e.data.get('presented_num')}")


async def threeway_ambulance(stage: Stage) -> None:
    caller = CALLERS["ambulance"]
    stage.say("An elderly man collapsed. The 12345 agent presses *3: citizen, agent and 120 talk together; "
              "once 120 has the facts the agent leaves.",
              "老人晕倒：坐席按 *3 建立市民 + 12345 + 120 三方通话，交接后 12345 坐席退出。")
    since = stage.log.mark
    answered = await stage.answered_call(caller, "12345", "Citizen Li")
    if answered is None:
        return
    chan, agent = answered
    await stage.pause(1.0)
    stage.sim.agent_press(endpoint(agent), "*3")
    started = await stage.expect_event("three-way room opened", "threeway.started",
                                       lambda e: e.data.get("caller_num") == caller, since=since,
                                       show=lambda e: "citizen, agent and 120 in one conference",
                                       internals=lambda e: f"room={e.data.get('room')}")  # fmt: skip
    if started is None:
        return
    await stage.expect_event("120 joined and answered", "transfer.answered",
                             lambda e: e.on_hotline("120") and e.data.get("caller_num") == caller, since=since)
    await stage.expect_event("12345 agent left after the hand-over", "threeway.agent_left",
                             lambda e: e.data.get("room") == started.data.get("room"), since=since)
    leg = await stage.until(lambda: stage.peers_matching(chan.name, "hotline-120"))
    stage.check("citizen and 120 stay together", bool(leg), f"with {who(leg[0])}" if leg else "120 is not with them",
                leg[0] if leg else "")  # fmt: skip
    if leg:
        presented = _presented(stage, leg[0])
        stage.check("120 sees the citizen's number (PBX side)", caller in presented, _shows(presented, caller),
                    _ids(presented))
    gone = await stage.until(lambda: not stage.peers_matching(chan.name, endpoint(agent)) or None)
    stage.check("the agent's leg left the room", bool(gone), f"{who(agent)} hung up, the others talk on", agent)


def pause_member(stage: Stage, queue: str, interface: str, paused: bool) -> None:
    """A queue member (un)pauses at the PBX, as the seat's phone would with a QueuePause."""
    stage.lab.pause_member(queue, interface, paused)


def pause_expert(stage: Stage, paused: bool) -> None:
    pause_member(stage, "q-119-expert", "PJSIP/agent2291", paused)


async def expert_priority(stage: Stage) -> None:
    caller = CALLERS["fire_referral"]
    stage.say("A gas cylinder is burning in a flat. Two fire reports already wait for 119's expert seat; the "
              "12345 agent's desktop sends an emergency referral over MQTT, and it is answered first.",
              "居民楼煤气罐起火：119 专家座席已有两个来电在等；12345 坐席软件通过 MQTT 发出紧急转介，优先接听。")
    since = stage.log.mark
    pause_expert(stage, True)  # the expert is finishing notes of another call: callers wait
    waiting = []
    for n in range(2):
        early = stage.sim.place_call(f"1360000010{n}", "119")
        stage.sim.pbx.goto(early, "cb-expert-119", "s")
        waiting.append(early.name)
    queued = await stage.until(lambda: len(stage.sim.queue_order("q-119-expert")) == 2)
    stage.check("two earlier callers wait for the 119 expert", bool(queued), "q-119-expert has 2 callers")
    answered = await stage.answered_call(caller, "12345", "Citizen Zhao")
    if answered is None:
        return
    chan, agent = answered
    reply = await stage.command("transfer", call_id=chan.linkedid, agent=endpoint(agent), to_hotline="119",
                                mode="blind", category="emergency", ticket="T-0003", summary="gas cylinder fire",
                                idempotency_key=f"referral-{chan.linkedid}")  # fmt: skip
    stage.check("transfer command accepted (MQTT reply)", bool(reply.get("transfer_id")),
                "the reply names the new transfer", f"transfer_id={reply.get('transfer_id')}")
    await stage.expect_event("referral raised to priority 10", "queue.priority_set",
                             lambda e: e.data.get("queue") == "q-119-expert" and e.data.get("priority") == 10,
                             since=since, show=lambda e: f"q-119-expert priority={e.data.get('priority')}")  # fmt: skip

    def three_waiting() -> list[str] | None:
        order = stage.sim.queue_order("q-119-expert")
        return order if len(order) == 3 else None

    order = await stage.until(three_waiting)
    stage.check("referral is first in the expert queue", order is not None and order[0] == chan.name,
                f"{caller} is first of {len(order or [])} waiting", f"queue order: {order}")
    pause_expert(stage, False)  # the expert is free again
    expert = await stage.until(lambda: stage.peers_matching(chan.name, "agent2291"))
    early_ones = [w for w in waiting if stage.peers_matching(w, "agent2291")]
    stage.check("the expert answers the referral before the earlier callers", bool(expert) and not early_ones,
                "the expert (agent 2291) talks with the referred citizen; the others still wait")
    for w in [*waiting, chan.name]:  # the waiting ones first: nobody is left ringing the expert
        stage.sim.caller_hangup(w)
    stage.note("119", "scene 3: the two fire reports waiting for the expert seat hung up while the emergency "
                      "referral was served (they count as abandoned)")


async def backup_trunk(stage: Stage) -> None:
    caller = CALLERS["fight_backup"]
    stage.say("The 110 primary line fails. Another fight is reported; the transfer goes over the backup line.",
              "110 主用专线故障，又一起警情：转接自动改走备用专线。")
    since = stage.log.mark
    stage.sim.set_trunk("hotline-110", "down")
    try:
        answered = await _past_the_110_primary(stage, caller, "Citizen Sun", since)
        if answered is None:
            return
        chan, _agent = answered
        await stage.expect_event("110 answered on the backup line", "transfer.answered",
                                 lambda e: e.on_hotline("110") and e.data.get("caller_num") == caller, since=since)
        leg = await stage.until(lambda: stage.peers_matching(chan.name, "hotline-110-backup"))
        stage.check("caller talks over the backup line (PBX side)", bool(leg),
                    f"on {who(leg[0])}" if leg else "not on the backup line", leg[0] if leg else "")
        if leg:
            presented = _presented(stage, leg[0])
            stage.check("the backup line carries the citizen's number", caller in presented,
                        _shows(presented, caller), _ids(presented))
    finally:
        stage.sim.set_trunk("hotline-110", "up")


async def surge_overflow(stage: Stage) -> None:
    stage.say("Evening surge: a burst pipe floods a district and 12345's agents cannot keep up. "
              "The supervisor switches to surge mode (MQTT command): the excess goes to the neighbour "
              "region's remote seats.",
              "晚高峰：爆管导致大量来电，启用高峰模式，超出部分溢出到邻区远程座席，之后恢复正常。")  # fmt: skip
    since = stage.log.mark
    agents = ("agent1001", "agent1002", "agent1003")
    # the supervisor's console, over MQTT
    await stage.command("set_mode", mode="surge", reason="burst pipe", role="supervisor")
    await stage.expect_event("surge mode on", "mode.switched", lambda e: e.data.get("mode") == "surge", since=since)
    for agent in agents:  # every local agent is busy with the flood (paused for new calls)
        pause_member(stage, "q-12345", f"PJSIP/{agent}", True)
    callers = [stage.sim.place_call(f"1350000020{n}", "12345").name for n in range(3)]
    try:
        await stage.expect_event("overflow started", "queue.overflow_started",
                                 lambda e: e.data.get("queue") == "q-12345", since=since,
                                 show=lambda e: f"waiting={e.data.get('waiting')} reason={e.data.get('reason')}")
        remote = await stage.until(lambda: [p for c in callers for p in stage.sim.bridged_with(c)
                                            if p.startswith("Local/30")])  # fmt: skip
        stage.check("remote seats answer the waiting callers (PBX side)", bool(remote),
                    ", ".join(sorted({who(r) for r in remote or []})) or "no remote seat answered", str(remote or []))
        await stage.expect_event("overflow ended once the queue recovered", "queue.overflow_ended",
                                 lambda e: e.data.get("queue") == "q-12345", since=since,
                                 show=lambda e: f"reason={e.data.get('reason')}")
        normal = await stage.until(lambda: stage.sim.world.global_vars.get("CB_OVERFLOW_12345") == "")
        stage.check("new calls route to local agents again (PBX side)", bool(normal),
                    "the PBX sends 12345's calls to its own agents again", "CB_OVERFLOW_12345 cleared")
    finally:
        for agent in agents:
            pause_member(stage, "q-12345", f"PJSIP/{agent}", False)
        for c in callers:
            stage.sim.caller_hangup(c)
        await stage.command("set_mode", mode="normal", reason="surge over", role="supervisor")
        stage.note("12345", "scene 5: the surge callers no remote seat had taken yet hung up while waiting "
                            "(abandoned); the ones the remote seats answered count as answered")


async def nuisance_caller(stage: Stage) -> None:
    number = CALLERS["nuisance"]
    stage.say("One number calls 12345 again and again and hangs up. On the fifth call it is flagged, "
              "hears a warning, and 110 is notified.",
              "同一号码反复拨打 12345 后挂断，第五次被标记为滋扰电话，并通知 110。")
    since = stage.log.mark
    last = None
    for n in range(5):
        # Each call is answered and the caller hangs up without a word (hanging up while an agent's phone
        # still rings would be just as real, but the simulator then keeps that agent busy).
        answered = await stage.answered_call(number, "12345")
        if answered is None:
            return
        last = answered[0]
        if n < 4:  # four silent calls; the fifth stays up to hear the warning
            stage.sim.caller_hangup(last)
        await stage.pause(0.3)
    ev = await stage.expect_event("110 notified", "nuisance.flagged",
                                  lambda e: e.on_hotline("110") and e.data.get("caller_num") == number, since=since,
                                  show=lambda e: f"{e.topic} count={e.data.get('count')}")  # fmt: skip
    if ev is not None:
        stage.check("flagged on the fifth call", ev.data.get("count") == 5, f"count={ev.data.get('count')}")
    if last is not None:
        tag = await stage.until(lambda: last.vars.get("__CB_NUISANCE") or last.vars.get("CB_NUISANCE"))
        stage.check("the call is tagged on the PBX", bool(tag), f"marked as call {tag} of a nuisance caller",
                    f"CB_NUISANCE={tag} on {last.name}")
        await stage.until(lambda: stage.peers_matching(last.name, "PJSIP/agent"))  # after the warning, an agent
        stage.sim.caller_hangup(last)


BROKEN_EDIT = """\
# a hurried edit: a rule to a hotline nobody defined
rules:
  r-12345-999-typo:
    from_hotline: "12345"
    to_hotline: "999"
    code: "*9"
"""


def short_problem(problems: object) -> str:
    """The first problem without the temporary directory: ``zz-hurried-edit.yaml:5:17: error: …``."""
    first = str(problems[0]) if isinstance(problems, list) and problems else "?"
    return first.rsplit("/", 1)[-1]


async def bad_dialplan(stage: Stage) -> None:
    caller = CALLERS["after_bad_edit"]
    stage.say("An operator saves a dialplan edit with a mistake and sends the reload command. callbridge refuses "
              "it, keeps the running plan, and calls keep transferring.",
              "运维人员保存了有错误的拨号方案并重载：callbridge 拒绝加载，继续使用原方案，转接照常。")
    since = stage.log.mark
    assert stage.lab.dialplans is not None
    running = stage.app.engine.plan
    broken = stage.lab.dialplans / "zz-hurried-edit.yaml"
    broken.write_text(BROKEN_EDIT, encoding="utf-8")
    try:
        await stage.command("reload", role="supervisor")
        stage.check("reload refused", False, "the broken dialplan was accepted")
    except CommandError as exc:
        stage.check("reload refused", exc.code == "dialplan_invalid", f"MQTT reply: {exc.code}")
    await stage.expect_event("dialplan.rejected published", "dialplan.rejected", since=since,
                             show=lambda e: short_problem(e.data.get("problems")))
    stage.check("the running dialplan stayed", stage.app.engine.plan is running, "same plan object")
    answered = await stage.answered_call(caller, "12345", "Citizen Zhou")
    if answered is not None:
        _chan, agent = answered
        stage.sim.agent_press(endpoint(agent), "*1")
        await stage.expect_event("a call still transfers to 110", "transfer.answered",
                                 lambda e: e.on_hotline("110") and e.data.get("caller_num") == caller, since=since)
    broken.unlink()
    await stage.command("reload", role="supervisor")
    await stage.expect_event("the corrected dialplan reloads", "dialplan.reloaded", since=since)
    await asyncio.sleep(0)


async def back_to_the_agent(stage: Stage) -> None:
    caller = CALLERS["rescue"]
    stage.say("A storm takes down both 110 lines, the primary and the backup. A citizen reports a break-in and "
              "the agent presses *1: no 110 line answers, so the citizen comes back to the same 12345 agent "
              "instead of being dropped.",
              "暴雨导致 110 主用和备用专线同时中断：坐席按 *1 转接未能接通，市民自动回到原 12345 坐席，不会掉线。")
    since = stage.log.mark
    stage.sim.set_trunk("hotline-110", "down")
    stage.sim.set_trunk("hotline-110-backup", "down")
    try:
        answered = await _past_the_110_primary(stage, caller, "Citizen Wu", since)
        if answered is None:
            return
        chan, agent = answered
        await stage.expect_event("back to the sending agent", "transfer.returned",
                                 lambda e: e.data.get("caller_num") == caller, since=since,
                                 show=lambda e: f"no 110 line answered ({e.data.get('reason')}): back to "
                                                f"agent {str(e.data.get('agent', '')).removeprefix('agent')}")
        back = await stage.until(lambda: stage.peers_matching(chan.name, endpoint(agent)))
        stage.check("the citizen talks with the same agent again (PBX side)", bool(back),
                    f"with {who(agent)}" if back else f"not with {who(agent)}", str(back or []))
        dropped = stage.log.find("transfer.failed", lambda e: e.data.get("caller_num") == caller, since)
        stage.check("the citizen was never dropped", dropped is None and not chan.hungup,
                    "still on the line" if not chan.hungup else "the call ended")
    finally:
        stage.sim.set_trunk("hotline-110", "up")
        stage.sim.set_trunk("hotline-110-backup", "up")
    stage.note("110", "scene 8: both 110 lines were down, so the break-in report went back to the 12345 agent")


SCENES: tuple[Scene, ...] = (
    Scene("1 · 12345 → 110 one-key transfer with the citizen's number", police_transfer),
    Scene("2 · three-way hand-over 12345 + citizen + 120", threeway_ambulance),
    Scene("3 · emergency referral jumps the 119 expert queue", expert_priority),
    Scene("4 · 110 primary line down → backup line", backup_trunk),
    Scene("5 · 12345 surge overflows to remote seats and recovers", surge_overflow),
    Scene("6 · nuisance caller flagged, 110 notified", nuisance_caller),
    Scene("7 · bad dialplan edit rejected while calls continue", bad_dialplan),
    Scene("8 · both 110 lines down → back to the sending agent", back_to_the_agent),
)
