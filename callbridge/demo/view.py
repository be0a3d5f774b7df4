"""The demo's terminal view (rich): the step being played, calls, queues and the MQTT events seen."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from callbridge.demo.watch import EventLog, SeenEvent

# The data keys most worth a glance in a one-line event summary, in order.
_KEYS = ("verb", "outcome", "caller_num", "presented_num", "from_hotline", "to_hotline", "agent", "queue", "line",
         "failed_line", "mode", "reason", "category", "ticket", "position", "priority", "count", "room")


#: Keys whose values are PBX internals (dial strings, conference names): shown with ``--verbose`` only.
_INTERNAL_KEYS = ("line", "failed_line", "room")


def summarise(ev: SeenEvent, verbose: bool = True) -> str:
    """``key=value`` of the keys worth a glance; without ``verbose`` no dial string, conference name or
    file path (a problem names its file, not the demo's temporary folder)."""
    keys = _KEYS if verbose else tuple(k for k in _KEYS if k not in _INTERNAL_KEYS)
    parts = []
    for k in keys:
        value = ev.data.get(k)
        if value in (None, "", [], {}):
            continue
        text = str(value)
        if not verbose and "/" in text and k == "reason":
            text = text.rsplit("/", 1)[-1]
        parts.append(f"{k}={text}")
    return " ".join(parts)


@dataclass
class DemoView:
    console: Console
    log: EventLog
    calls: Callable[[], Sequence[tuple[str, ...]]] = lambda: ()
    queues: Callable[[], Sequence[tuple[str, ...]]] = lambda: ()
    step: str = ""
    narration: str = ""
    verbose: bool = False
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def render(self) -> Group:
        header = Panel(Text(self.narration or "", style="white"), title=f"[bold cyan]{self.step}", expand=True)
        calls = Table(title="calls 通话", expand=True, show_edge=False)
        for col in ("call", "caller 主叫", "hotline 热线", "state 状态", "parties 参与方"):
            calls.add_column(col, overflow="fold")
        for row in list(self.calls())[-8:]:
            calls.add_row(*row)
        queues = Table(title="queues 队列", expand=True, show_edge=False)
        for col in ("queue", "waiting 等待", "order 顺序", "agents free 空闲"):
            queues.add_column(col, overflow="fold")
        for row in list(self.queues())[-8:]:
            queues.add_row(*row)
        events = Table(title="MQTT events as a subscriber sees them 订阅端收到的事件", expand=True, show_edge=False)
        events.add_column("topic (callbridge/<site>/…)", style="dim", overflow="ellipsis", no_wrap=True, ratio=2)
        events.add_column("type", style="bold", no_wrap=True, ratio=1)
        events.add_column("data", overflow="ellipsis", no_wrap=True, ratio=3)
        for ev in self.log.firsts[-14:]:
            events.add_row(ev.topic.split("/", 2)[-1], ev.type, summarise(ev, self.verbose))
        return Group(header, calls, queues, events)

    def print_step_result(self, title: str, ok: bool, detail: str) -> None:
        self.results.append((title, ok, detail))
        mark = "[green]✔" if ok else "[red]✘"
        self.console.print(f"{mark} {title}[/] — {detail}")
