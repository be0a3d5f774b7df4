"""One live lab: a private Asterisk loaded with the rendered configuration, its SIPp phones and trunks,
mosquitto, ``callbridge run`` as a subprocess, and a recorder of everything callbridge published.

:func:`open_lab` builds one; it is a context manager and keeps nothing global, so a test may hold two
at once (two centres: give each its own ``root`` and ``site_id``; they may share a broker). Every port is
chosen free at run time and every writable file is under ``root``.

    with open_lab(tmp / "a", site_id="city-a") as a, open_lab(tmp / "b", site_id="city-b", broker=a.broker) as b:
        ...

The live suite's session fixture (``conftest.lab``) is one :func:`open_lab`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amirecord import AmiRecorder
from livepbx import AMI_SECRET, NO_CONSOLE, REPO, LivePbx, Sipp, free_udp_port, wait_for

from callbridge.dialplan import load_dialplan
from callbridge.dialplan.render_conf import render_all
from callbridge.dialplan.site import parse_site_text
from callbridge.testing.mosquitto import Mosquitto

CALLER = "13800138000"

#: How each endpoint of the example city answers in the live suite (SIPp scenario per port); every
#: endpoint not named here answers and holds (``ok``). busy: 486; noanswer: rings for ever; dead: nothing
#: listens (SIP timer B); qualified-dead: nothing listens and PJSIP qualifies it (unavailable at once).
TRUNK_BEHAVIOUR = {
    "hotline-119": "noanswer",           # primary never answers → after answer_timeout the backup answers
    "hotline-122": "busy",               # primary busy → backup (hotline-122-backup answers)
    "utility-water": "busy",             # one line, busy → back to the agent
    "utility-gas": "busy",               # busy …
    "utility-gas-backup": "noanswer",    # … backup does not answer
    "utility-heating": "dead",           # one line, unreachable → back to the agent
    "utility-power": "qualified-dead",   # qualified unavailable → backup
}  # fmt: skip
TRUNK_NUMBER = {"hotline-119": "119", "hotline-122": "122", "utility-water": "96116", "utility-gas": "96777",
                "utility-gas-backup": "96777", "utility-heating": "96069", "utility-power": "95598"}  # fmt: skip

#: Writes a lab's site file from its PBX, the ports of its SIPp agents (``ok``, ``busy``, ``noanswer``, ``dead``,
#: ``agents``, ``dtmf``) and its prompts folder.
SiteText = Callable[[LivePbx, dict[str, int], Path], str]


def site_yaml(pbx: LivePbx, ports: dict[str, int], prompts: Path) -> str:
    """The live site file: the transport on this instance's SIP port, every trunk at its SIPp."""
    endpoints = []
    for ep, how in TRUNK_BEHAVIOUR.items():
        port = ports["dead"] if how == "qualified-dead" else ports[how]
        qualify = ", qualify_frequency: 5" if how == "qualified-dead" else ""
        endpoints.append(f'    {ep}: {{contact: "sip:{TRUNK_NUMBER[ep]}@127.0.0.1:{port}"{qualify}}}')
    return "\n".join([
        "version: 1",
        f'transport: {{name: cb-live-udp, bind: "127.0.0.1:{pbx.sip_port}"}}',
        "carrier: {endpoint: carrier, match: [127.0.0.1]}",
        "trunks:",
        f'  default_host: "127.0.0.1:{ports["ok"]}"',
        "  endpoints:",
        *endpoints,
        "agents:",
        f'  default_host: "127.0.0.1:{ports["agents"]}"',
        "  endpoints:",
        f'    agent1001: {{contact: "sip:agent1001@127.0.0.1:{ports["dtmf"]}", callerid: "Agent 1001 <1001>"}}',
        '    agent1002: {callerid: "Agent 1002 <1002>"}',
        '    agent1003: {callerid: "Agent 1003 <1003>"}',
        'local_seats: {sim: "PJSIP/agent${EXTEN}"}',
        f"prompts_dir: {prompts}",
        "",
    ])  # fmt: skip


@dataclass
class Events:
    """Every event callbridge published (``mosquitto_sub`` on the per-call topics), in arrival order."""

    proc: subprocess.Popen[str]
    items: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    topics: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    seen: set[Any] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            topic, _, payload = line.rstrip("\n").partition(" ")
            with contextlib.suppress(ValueError):
                body = json.loads(payload)
                with self.lock:
                    if isinstance(body, dict):
                        self.topics.append((topic, body))
                    if "/reply/" in topic:
                        self.replies.append(body)
                    elif isinstance(body, dict) and "type" in body and body.get("id") not in self.seen:
                        self.seen.add(body.get("id"))  # one event may be published on several topics
                        self.items.append(body)

    def of(self, type_: str, **match: Any) -> list[dict[str, Any]]:
        with self.lock:
            found = [e for e in self.items if e.get("type") == f"org.callbridge.{type_}"]
        return [e for e in found if all(e.get("data", {}).get(k) == v for k, v in match.items())]

    def wait(self, type_: str, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
        return wait_for(lambda: (self.of(type_, **match) or [None])[0], timeout, label=f"{type_} {match}")

    def of_call(self, call_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.items if e.get("data", {}).get("call_id") == call_id]


@dataclass
class Lab:
    pbx: LivePbx
    broker: Mosquitto
    events: Events
    recorder: AmiRecorder
    trunks: dict[str, Sipp]
    agents: Sipp
    dtmf_agent: Sipp
    root: Path
    site_id: str
    settings: Path
    run: subprocess.Popen[bytes] | None = None
    calls: int = 0
    answered_by: str = ""  # endpoint of the agent who answered the last call (call.answered)
    saved: int = 0  # recordings saved so far

    # --- callbridge ---------------------------------------------------------------------------------

    @property
    def log(self) -> Path:
        return self.root / "callbridge.log"

    def connections(self) -> int:
        return self.log.read_bytes().count(b'"ami.connected"') if self.log.exists() else 0

    def start_callbridge(self, timeout: float = 60.0) -> None:
        before = self.connections()
        env = {**os.environ, "CALLBRIDGE_AMI_SECRET": AMI_SECRET, "PYTHONPATH": str(REPO)}
        with self.log.open("ab") as log:
            self.run = subprocess.Popen([sys.executable, "-m", "callbridge", "run", "--config", str(self.settings)],
                                        cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        wait_for(lambda: self.connections() > before or self._died(), timeout, label="callbridge connected")
        if self._died():
            raise RuntimeError(f"callbridge run exited {self.run.returncode}: {self.log.read_text()[-3000:]}")

    def _died(self) -> bool:
        return self.run is not None and self.run.poll() is not None

    def stop_callbridge(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Stop ``callbridge run`` (SIGTERM, or SIGKILL for a crash); returns its exit code."""
        if self.run is None:
            return None
        run, self.run = self.run, None
        if run.poll() is None:
            run.send_signal(sig)
            try:
                run.wait(timeout)
            except subprocess.TimeoutExpired:
                run.kill()
                run.wait(10)
        return run.returncode

    # --- MQTT commands ------------------------------------------------------------------------------

    def command(self, verb: str, body: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """An MQTT command (3.1.1 reply topic); returns callbridge's final reply, asked once.

        Scenarios send a transfer right after ``call.answered``, often before callbridge has read the
        caller's BridgeEnter: that is accepted (the party check knows the leg the caller's Dial or Queue
        answered), so no refusal is retried here."""
        corr = f"live-{time.monotonic_ns()}"
        payload = json.dumps({**body, "reply_to": "live", "correlation_id": corr})
        topic = f"callbridge/{self.site_id}/cmd/{verb}"
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.broker.port), "-q", "1", "-V", "mqttv311",
                        "-t", topic, "-m", payload], check=True, timeout=30)  # fmt: skip

        def reply() -> dict[str, Any] | None:
            # a command the PBX executes is answered twice ("accepted", then the final result)
            with self.events.lock:
                return next((r for r in self.events.replies
                             if r.get("correlation_id") == corr and r.get("final", True)), None)  # fmt: skip

        found: dict[str, Any] = wait_for(reply, timeout, label=f"reply to {verb}")
        return found

    # --- the PBX ------------------------------------------------------------------------------------

    def cli(self, command: str) -> str:
        return self.pbx.cli(command)

    def members(self, queue: str) -> list[str]:
        """The member interfaces of *queue* as Asterisk lists them (``PJSIP/agent1001``, ``Local/2191@sim``)."""
        section = self.cli(f"queue show {queue}").split("Members:", 1)[-1].split("Callers:", 1)[0]
        return re.findall(r"^\s+((?:PJSIP|Local|SIP)/\S+)", section, re.M)

    def pause_all(self, queue: str, paused: bool = True) -> None:
        verb = "pause" if paused else "unpause"
        for m in self.members(queue):
            self.cli(f"queue {verb} member {m} queue {queue}")

    def only_agent(self, queue: str, agent: str) -> None:
        """Pause every member of *queue* but *agent*'s (``agent1002`` is ``PJSIP/agent1002``, ``agent2101``
        is ``Local/2101@sim``): which agent's phone answers decides the scenario."""
        digits = agent.removeprefix("agent")
        for m in self.members(queue):
            mine = m in (f"PJSIP/{agent}", f"Local/{digits}@sim")
            self.cli(f"queue {'unpause' if mine else 'pause'} member {m} queue {queue}")

    def call(self, did: str, caller: str = CALLER, answered: bool = True) -> tuple[Sipp, str]:
        """A citizen calls *did*; returns the caller's SIPp and the call id (once an agent answered)."""
        self.calls += 1
        before = {e["data"]["call_id"] for e in self.events.of("call.offered")}
        sipp = self.pbx.call_in(f"caller{self.calls}", caller, did)
        offered = wait_for(lambda: [e for e in self.events.of("call.offered") if e["data"]["call_id"] not in before
                                    and e["data"].get("caller_num") == caller], 30, label=f"call.offered {did}")
        call_id = offered[0]["data"]["call_id"]
        if answered:
            self.answered_by = self.events.wait("call.answered", call_id=call_id)["data"].get("agent", "")
        return sipp, call_id

    def wait_cli(self, command: str, text: str, timeout: float = 30.0) -> str:
        """Poll an Asterisk CLI command until its output contains *text*."""
        found: str = wait_for(lambda: (out := self.cli(command)) and text in out and out, timeout,
                              label=f"{text!r} in {command!r}")  # fmt: skip
        return found

    def no_channels(self) -> bool:
        """No channel on the PBX (``core show channels count`` starts ``0 active channels``; 10 is not 0)."""
        return re.search(r"^0 active channels", self.cli("core show channels count"), re.M) is not None

    def hang_up_everything(self, timeout: float = 30.0) -> None:
        """Hang every channel up and wait until none is left, asking again while any is: one request misses
        what appears after it (a queue just unpaused rings its seats' new channels). On a timeout the
        channels left are named; if Asterisk is gone, :class:`livepbx.PbxGone` says how it ended."""
        deadline = time.monotonic() + timeout
        while not self.no_channels():
            if time.monotonic() > deadline:
                left = self.cli("core show channels concise").strip()
                if NO_CONSOLE in left:  # Asterisk runs (cli() raises when not) but its console does not answer
                    left += f"\n(its process still runs; last lines of its messages.log:)\n{self.pbx.messages_tail()}"
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for no channels left; left:\n{left}")
            self.cli("channel request hangup all")
            time.sleep(0.5)

    def sip_invites(self, trunk: str, number: str) -> list[str]:
        """INVITEs the trunk's SIPp received for *number* (the hotline dialled)."""
        return [m for m in self.trunks[trunk].received() if m.lstrip().startswith(f"INVITE sip:{number}@")]

    # --- recordings ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def recording(self, name: str, note: str, unless_saved_inside: bool = False) -> Iterator[None]:
        """Save this span of callbridge's AMI session (and Asterisk's log of it) when
        ``$CALLBRIDGE_LIVE_RECORD`` names a folder (``tests/fixtures/asterisk-22-live`` to refresh them).
        *unless_saved_inside*: not when a recording inside this span was saved (a scenario's own)."""
        out = os.environ.get("CALLBRIDGE_LIVE_RECORD", "")
        start, log_start, saved = self.recorder.mark(), len(self.pbx.full_log()), self.saved
        yield
        if out and not (unless_saved_inside and self.saved > saved):
            # the last events (hang-ups) trail the scenario: wait until the PBX is empty and quiet
            wait_for(self.no_channels, 30, label="calls ended")
            time.sleep(1.0)  # not an assertion: lets the last Hangup events reach the recorder
            self.recorder.write(Path(out), name, start, note)
            (Path(out) / f"{name}.asterisk-full.log").write_text(self.pbx.full_log()[log_start:], encoding="utf-8")
            self.saved += 1


def _settings(root: Path, site_id: str, ami_port: int, broker: Mosquitto, dialplans: Path, extra: str = "") -> Path:
    settings = root / "callbridge.yaml"
    settings.write_text(
        f"site_id: {site_id}\n"
        f"ami: {{host: 127.0.0.1, port: {ami_port}, username: callbridge, auth: md5}}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, protocol: '3.1.1', outbox_path: {root / 'outbox.sqlite3'}}}\n"
        f"dialplan: {{path: {dialplans}}}\nlog: {{format: json, level: info}}\nweb: {{enabled: false}}\n"
        f"store: {{path: {root / 'records.sqlite3'}}}\n{extra}",
        encoding="utf-8",
    )
    return settings


@contextlib.contextmanager
def open_lab(root: Path, site_id: str = "live", dialplans: Path = REPO / "dialplans",
             broker: Mosquitto | None = None, site: SiteText = site_yaml, sip_port: int | None = None,
             settings_extra: str = "") -> Iterator[Lab]:  # fmt: skip
    """Start one lab under *root* (raises RuntimeError when Asterisk cannot start: see ``LivePbx.start``).

    *site* writes the site file (default: the example city's, :func:`site_yaml`); *sip_port* is this
    PBX's SIP port when another lab's site must know it first (two centres: each trunk to the other);
    *settings_extra* is appended to ``callbridge.yaml`` (YAML lines)."""
    root.mkdir(parents=True, exist_ok=True)
    pbx = LivePbx(root) if sip_port is None else LivePbx(root, sip_port=sip_port)
    with contextlib.ExitStack() as stack:
        stack.callback(pbx.stop)
        prompts = root / "prompts"
        subprocess.run(["bash", str(REPO / "scripts" / "make-prompts"), str(prompts)], check=True, capture_output=True)
        trunks = {how: pbx.sipp_uas(f"trunk-{how}", f"uas_{how}.xml") for how in ("hold", "busy", "noanswer")}
        trunks["ok"] = trunks.pop("hold")
        agents = pbx.sipp_uas("agents", "uas_hold.xml")
        dtmf = pbx.sipp_uas("agent1001", "uas_dtmf.xml")
        ports = {"ok": trunks["ok"].port, "busy": trunks["busy"].port, "noanswer": trunks["noanswer"].port,
                 "dead": free_udp_port(), "agents": agents.port, "dtmf": dtmf.port}  # fmt: skip
        text = site(pbx, ports, prompts)
        (root / "live-site.yaml").write_text(text, encoding="utf-8")
        pbx.write_base(render_all(load_dialplan(dialplans), parse_site_text(text, str(root / "live-site.yaml"))))
        pbx.start()
        if broker is None:
            broker = stack.enter_context(Mosquitto(root / "mqtt"))
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-v",
                                "-t", f"callbridge/{site_id}/calls/#", "-t", f"callbridge/{site_id}/reply/#",
                                "-t", f"callbridge/{site_id}/events/#"],
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
        stack.callback(sub.wait, 10)
        stack.callback(sub.terminate)
        events = Events(sub)
        threading.Thread(target=events.pump, daemon=True).start()
        recorder = AmiRecorder(pbx.ami_port).start()
        stack.callback(recorder.stop)
        settings = _settings(root, site_id, recorder.port, broker, dialplans, settings_extra)
        lab = Lab(pbx, broker, events, recorder, dict(trunks), agents, dtmf, root, site_id, settings)
        stack.callback(lab.stop_callbridge)  # the lab's current run, also after a test restarted it
        lab.start_callbridge()
        yield lab
