"""Plays the demo: start the lab, play each scene, show what happened, summarise, exit code.

On a terminal the view is a rich Live display (calls, queues, MQTT events); otherwise (tests, CI,
a pipe, a file) it prints plain narrated lines, one per scene, check and notable event, never wrapped
mid-sentence. The narration speaks to an operator: hotlines, numbers, agents and lines, no channel or
variable names (``--verbose`` adds them, and the daemon's log on stderr). The wallboard URL (this run's
token included) is printed at start, so the day can also be watched in a browser; the summary ends with
the KPIs of the daemon's records store, a word on every hotline below its answer-rate target, and where
the records are kept (``callbridge records --db PATH`` / ``callbridge report --db PATH`` read them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from callbridge.demo.lab import DemoLab, default_dialplans
from callbridge.demo.records import records_summary, records_tables
from callbridge.demo.script import SCENES, Scene
from callbridge.demo.stage import Stage, StepOutcome, who
from callbridge.demo.view import DemoView, summarise
from callbridge.demo.watch import EventLog, SeenEvent
from callbridge.log import configure_logging
from callbridge.store.kpi import answer_rate
from callbridge.store.offers import offers_of
from callbridge.store.record import EventRecord

#: Event types worth a line in the plain narration (calls' own life cycle would drown them).
NOTABLE = ("transfer.", "threeway.", "queue.priority_set", "queue.overflow_", "nuisance.", "dialplan.", "mode.",
           "ami.", "command.")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    fast: bool = False
    keep_running: bool = False
    broker: str | None = None
    json_summary: Path | None = None
    dialplans: Path | None = None
    log_level: str = "warning"
    web: bool = True
    verbose: bool = False
    #: Where the records are kept (None: :func:`default_records_path`, replaced at each run).
    db: Path | None = None


def default_records_path() -> Path:
    """``$XDG_STATE_HOME/callbridge/demo-records.sqlite3`` (``~/.local/state/…`` by default): the last demo's."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "callbridge" / "demo-records.sqlite3"


def fresh_records(path: Path) -> None:
    """The default records file holds the last demo's day only: the previous one's goes (with its WAL)."""
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)


def rate_notes(records: dict[str, Any], notes: dict[str, list[str]]) -> list[str]:
    """One sentence for every hotline whose answer rate ended below its target (0 % included): what the
    scenes said happened there, else the counts that make the rate."""
    lines = []
    for hotline, k in records["hotlines"].items():
        rate, target = k["answer_rate"], k["target"]
        if rate is None or (target is not None and rate >= target and rate > 0):
            continue
        finished = k["answered"] + k["abandoned"]
        head = f"{hotline} at {rate:.0%} ({k['answered']} of {finished} answered)"
        why = notes.get(hotline) or [f"{k['abandoned']} caller(s) hung up before an answer"]
        lines.append(f"{head}: " + "; ".join(why))
    return lines


def summary_of(log: EventLog, outcomes: Sequence[StepOutcome], wall_s: float,
               records: dict[str, Any] | None = None) -> dict[str, Any]:
    """The numbers a person (and the test) checks at the end: counts from the subscriber's events, and
    ``records`` — the KPIs of the daemon's records store (:func:`records_summary`), ``None`` without one."""
    # the presentations by the one definition the board and the records use (callbridge.store.offers), over
    # the events this subscriber saw, in the order the daemon emitted them
    seen = sorted(log.firsts, key=lambda e: e.seq)
    offers = offers_of(EventRecord(e.type, e.received, e.subject, e.data.get("hotline") or None, e.data) for e in seen)
    offered = offers
    answered = [o for o in offers if o.outcome == "answered"]
    abandoned = [o for o in offers if o.outcome == "abandoned"]
    rate = answer_rate(len(answered), len(abandoned))
    return {
        "ok": bool(outcomes) and all(o.ok for o in outcomes),
        "steps": [{"title": o.title, "ok": o.ok, "detail": o.detail(),
                   "checks": [{"label": c.label, "ok": c.ok, "detail": c.detail, "internals": c.internals}
                              for c in o.checks]}
                  for o in outcomes],
        "transfers": log.count("transfer.requested"),
        "transfers_answered": log.count("transfer.answered"),
        "number_carrying_verified": log.count("transfer.number_verified"),
        "number_carrying_mismatch": log.count("transfer.number_mismatch"),
        "calls_offered": len(offered),
        "calls_answered": len(answered),
        "calls_abandoned": len(abandoned),
        "calls_in_progress": len(offered) - len(answered) - len(abandoned),
        # one definition everywhere (callbridge.store.kpi.answer_rate): None until an offer finished
        "answer_rate": None if rate is None else round(rate, 3),
        "events_seen": len(log.ids),
        "deliveries": len(log.events),
        "duplicates": log.duplicates,
        "wall_time_s": round(wall_s, 2),
        "records": records,
    }


def answer_rate_text(summary: dict[str, Any]) -> str:
    """``80% (12/15)``: answered of the finished offers (answered + abandoned), "–" before the first."""
    rate = summary["answer_rate"]
    finished = summary["calls_answered"] + summary["calls_abandoned"]
    return f"{'–' if rate is None else format(rate, '.0%')} ({summary['calls_answered']}/{finished})"


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title="summary 汇总", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = (
        ("scenes ok 场景通过", f"{sum(s['ok'] for s in summary['steps'])}/{len(summary['steps'])}"),
        ("transfers 转接", str(summary["transfers"])),
        ("number carrying verified 号码携带核实", str(summary["number_carrying_verified"])),
        ("answer rate 接通率 (answered/finished)", answer_rate_text(summary)),
        ("calls in progress 进行中", str(summary["calls_in_progress"])),
        ("MQTT events seen 收到事件", f"{summary['events_seen']} ({summary['deliveries']} deliveries)"),
        ("duplicates 重复", str(summary["duplicates"])),
        ("wall time 用时", f"{summary['wall_time_s']:.1f} s"),
    )
    for what, value in rows:
        table.add_row(what, value)
    return table


class Narrator:
    """Live view on a terminal, plain lines elsewhere; both fed from the same calls."""

    def __init__(self, console: Console, lab: DemoLab, verbose: bool = False) -> None:
        self.console = console
        self.lab = lab
        self.verbose = verbose
        self.view = DemoView(console, lab.log, calls=self._calls, queues=self._queues, verbose=verbose)
        self.live = console.is_terminal
        if not self.live:
            lab.log.listeners.append(self.plain_event)

    def plain_event(self, ev: SeenEvent) -> None:
        if ev.type.startswith(NOTABLE):
            self.console.print(f"    ← MQTT {ev.topic}  {ev.type}  {summarise(ev, self.verbose)}", highlight=False,
                               soft_wrap=True)  # fmt: skip

    def _calls(self) -> list[tuple[str, ...]]:
        sim = self.lab.sim
        if sim is None:
            return []
        rows: list[tuple[str, ...]] = []
        for chan in list(sim.world.channels.values()):
            if not chan.name.startswith("PJSIP/carrier-"):
                continue
            where = chan.exten if chan.context == "cb-inbound" else chan.context
            peers = sim.bridged_with(chan)
            if self.verbose:
                rows.append((chan.linkedid[-8:], chan.cid_num, where, chan.state_desc, ", ".join(peers) or chan.app))
            else:
                rows.append(("", chan.cid_num, where, chan.state_desc, ", ".join(who(p) for p in peers) or "waiting"))
        return rows

    def _queues(self) -> list[tuple[str, ...]]:
        app = self.lab.app
        if app is None:
            return []
        rows: list[tuple[str, ...]] = []
        for name, q in sorted(app.tracker.queues.items()):
            callers = q.ordered_callers()
            free = sum(1 for m in q.members.values() if m.status == 1 and not m.paused)
            if callers or name.startswith(("q-12345", "q-119-expert")):
                rows.append((name, str(len(callers)), " ".join(self._caller(c.channel) for c in callers),
                             f"{free}/{len(q.members)}"))  # fmt: skip
        return rows

    def _caller(self, channel: str) -> str:
        if self.verbose or self.lab.sim is None:
            return channel.rsplit("-", 1)[-1]
        chan = self.lab.sim.channel(channel)
        return chan.cid_num if chan is not None else "?"

    def say(self, english: str, chinese: str) -> None:
        self.view.narration = f"{english}\n{chinese}"
        if not self.live:
            self.console.print(f"  {english}\n  {chinese}", highlight=False)

    def scene(self, title: str) -> None:
        self.view.step = title
        if not self.live:
            self.console.print(f"\n▶ {title}", highlight=False)

    def result(self, outcome: StepOutcome) -> None:
        for c in outcome.checks:
            mark = "[green]✔[/]" if c.ok else "[red]✘[/]"
            internals = f"  [dim]({c.internals})[/]" if self.verbose and c.internals else ""
            self.console.print(f"    {mark} {c.label} — {c.detail}{internals}", highlight=False, soft_wrap=True)
        if outcome.error:
            self.console.print(f"    [red]✘ {outcome.error}[/]", highlight=False)
        self.view.print_step_result(outcome.title, outcome.ok, "ok" if outcome.ok else outcome.detail())

    @contextlib.contextmanager
    def showing(self) -> Iterator[None]:
        if not self.live:
            yield
            return
        with Live(get_renderable=self.view.render, console=self.console, refresh_per_second=4, transient=True):
            yield


async def play(scene: Scene, stage: Stage, limit: float) -> StepOutcome:
    stage.outcome = StepOutcome(scene.title)
    try:
        async with asyncio.timeout(limit):
            await scene.play(stage)
    except TimeoutError:
        stage.outcome.error = f"scene did not finish within {limit:.0f}s"
    except Exception as exc:  # a broken scene is reported, and the next one still plays
        stage.outcome.error = f"{type(exc).__name__}: {exc}"
    return stage.outcome


async def run_demo(options: DemoOptions, console: Console) -> int:
    started = time.monotonic()
    source = options.dialplans or default_dialplans()
    if not any(source.glob("*.yaml")):
        console.print(f"[red]callbridge demo: no dialplan files in {source}; pass --dialplans DIR[/]")
        return 2
    records = options.db or default_records_path()
    try:
        records.parent.mkdir(parents=True, exist_ok=True)
        if options.db is None:
            fresh_records(records)
    except OSError as exc:
        console.print(f"[red]callbridge demo: cannot keep the records at {records}: {exc}; pass --db PATH[/]")
        return 2
    log_file = records.with_name(records.stem + ".log")
    with tempfile.TemporaryDirectory(prefix="callbridge-demo-") as tmp, \
            contextlib.ExitStack() as files:  # fmt: skip
        if console.is_terminal or not options.verbose:
            # the daemon's log lines would tear the live view apart, and they name channels: a file beside the
            # records keeps them (--verbose prints them on stderr instead, when not on a terminal)
            configure_logging("console", options.log_level, stream=files.enter_context(log_file.open("w")))
        else:
            configure_logging("console", options.log_level)
        lab = DemoLab(Path(tmp), source, broker_url=options.broker, web=options.web,
                      answer_after=0.3 if options.fast else 1.5, records_path=records)  # fmt: skip
        try:
            await lab.start()
        except Exception as exc:
            console.print(f"[red]callbridge demo: could not start: {type(exc).__name__}: {exc}[/]")
            await lab.stop()
            return 2
        try:
            return await _perform(lab, options, console, started)
        finally:
            await lab.stop()


async def _perform(lab: DemoLab, options: DemoOptions, console: Console, started: float) -> int:
    narrator = Narrator(console, lab, options.verbose)
    assert lab.broker is not None
    console.print(f"[bold]callbridge demo[/] — daemon + PBX simulator (AMI 127.0.0.1:{lab.ami_port}) + MQTT "
                  f"{lab.broker.host}:{lab.broker.port} (MQTT {lab.broker.protocol}"
                  f"{', embedded' if not options.broker else ''})", highlight=False)  # fmt: skip
    if lab.wallboard_url:
        console.print(f"wallboard 大屏: {lab.wallboard_url}", highlight=False, soft_wrap=True)
    records_path = lab.records_path
    console.print(f"records 记录: {records_path}", highlight=False, soft_wrap=True)
    stage = Stage(lab, options.fast, narrator.say)
    outcomes: list[StepOutcome] = []
    with narrator.showing():
        for scene in SCENES:
            narrator.scene(scene.title)
            outcome = await play(scene, stage, 45.0 if options.fast else 120.0)
            outcomes.append(outcome)
            narrator.result(outcome)
            await stage.pause(2.0)
        await end_of_day(lab, narrator)
        await asyncio.sleep(0.3)  # the last events' deliveries
    report = await lab.settled_kpis()
    records = records_summary(report) if report is not None else None
    summary = summary_of(lab.log, outcomes, time.monotonic() - started, records)
    summary["records_path"] = str(records_path)
    summary["rate_notes"] = rate_notes(records, stage.notes) if records is not None else []
    lab.log.listeners.clear()  # the daemon's own shutdown events are not part of the story
    if options.keep_running:  # … but while it keeps running, every event is printed as a line
        lab.log.listeners.append(narrator.plain_event)
    console.print(summary_table(summary))
    if records is not None:
        for table in records_tables(records):
            console.print(table)
        if summary["rate_notes"]:
            console.print("below target 未达标原因:", highlight=False)
            for note in summary["rate_notes"]:
                console.print(f"  {note}", highlight=False, soft_wrap=True)
    console.print(f"the day's records 当天记录: callbridge records --db {records_path}  ·  "
                  f"callbridge report --db {records_path}", highlight=False, soft_wrap=True)  # fmt: skip
    if options.json_summary is not None:
        options.json_summary.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    ok = bool(summary["ok"])
    console.print("[green]all scenes happened ✔[/]" if ok else "[red]some scenes did not happen ✘[/]")
    if options.keep_running:
        await keep_running(lab, console)
    return 0 if ok else 1


async def end_of_day(lab: DemoLab, narrator: Narrator) -> None:
    """The citizens still on the line hang up, then the hotline lines they leave behind (a 120 line alone in
    a three-way room), so the records show every call and transfer finished (a transfer answered and still
    up would read ``answered``, one whose call ended ``completed``)."""
    still_up = lab.callers_still_up()
    if not still_up:
        return
    narrator.scene("end of the day 一天结束")
    narrator.say(f"The {len(still_up)} citizens still on the line hang up, then any hotline line left in a "
                 "three-way room; the records store closes their calls and transfers.",
                 f"仍在通话的 {len(still_up)} 位市民及三方会议中留下的热线挂机，记录库为其通话和转接办结。")
    missing = await lab.hang_up_callers()
    if missing:  # the table then shows those rows as in progress; the demo does not fail for it
        shown = ", ".join(missing) if narrator.verbose else f"{len(missing)} call(s)"
        narrator.console.print(f"    [yellow]the end of {shown} was not seen on MQTT[/]", highlight=False)
    if lab.sim is not None and (left := [c.name for c in list(lab.sim.world.channels.values())]):
        # nothing should be left; if something is, the records show its call as still up
        shown = ", ".join(left if narrator.verbose else sorted({who(c) for c in left}))
        narrator.console.print(f"    still up 仍在线: {shown}", highlight=False, soft_wrap=True)


async def keep_running(lab: DemoLab, console: Console) -> None:
    assert lab.broker is not None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # before the message that invites Ctrl-C: a press right after it must stop the lab, not kill the process
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    console.print(
        "\nStill running — 演示环境保持运行 (Ctrl-C to stop):\n"
        f"  subscribe:  mosquitto_sub -h {lab.broker.host} -p {lab.broker.port} -t 'callbridge/#' -v\n"
        f"  commands:   mosquitto_pub -h {lab.broker.host} -p {lab.broker.port} -q 1 -t callbridge/demo/cmd/set_mode "
        f"-m '{{\"mode\": \"surge\", \"role\": \"supervisor\", \"reply_to\": \"me\"}}'"
        "   (reply on callbridge/demo/reply/me)\n"
        f"  AMI:        127.0.0.1:{lab.ami_port} user callbridge, secret {lab.ami_secret} "
        "(simulated Asterisk; this run's secret, generated at start, never written to a file)"
        + (f"\n  wallboard:  {lab.wallboard_url}   (this run's token, never written to a file)"
           if lab.wallboard_url else ""),
        highlight=False,
        soft_wrap=True,  # keep the commands on one line, ready to copy
    )
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
