"""The live-PBX suite: callbridge against a private, real Asterisk 22 (``../shared/asterisk``).

One session builds everything once (about 15 s): the configuration ``render-asterisk`` writes from
``dialplans/`` and :data:`SITE` (ports chosen free now), ``#include``d into a stock-like Asterisk
configuration (:mod:`livepbx`); SIPp user agents for the agents' phones and the hotline trunks; mosquitto;
``callbridge run`` as a subprocess; ``mosquitto_sub`` recording every event. A scenario places a call
with a SIPp caller and reads three views: the SIP messages at the trunk, the MQTT events, and
Asterisk's own CLI (``core show channels``, ``queue show``, ``confbridge list``).

Where Asterisk cannot run (no ``../shared/asterisk/install.sh`` beside the repository, not root, a build
this CPU cannot execute) every live test is skipped with the reason, printed by ``-ra``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from livepbx import AMI_SECRET, REPO, LivePbx, Sipp, free_udp_port, live_unavailable, wait_for

from callbridge.dialplan import load_dialplan
from callbridge.dialplan.render_conf import render_all
from callbridge.dialplan.site import parse_site_text
from callbridge.testing.mosquitto import Mosquitto

CALLER = "13800138000"
SITE_ID = "live"

#: How each endpoint of the example city answers in the live suite (SIPp scenario per port).
#: ok: answers and holds; busy: 486; noanswer: rings for ever; dead: nothing listens (SIP timer B);
#: qualified-dead: nothing listens and PJSIP qualifies it (unavailable at once).
TRUNK_BEHAVIOUR = {
    "hotline-122": "busy",               # primary busy → backup (hotline-122-backup answers)
    "utility-water": "busy",             # one line, busy → back to the agent
    "utility-gas": "busy",               # busy …
    "utility-gas-backup": "noanswer",    # … backup does not answer → back to the agent
    "utility-heating": "dead",           # unreachable
    "utility-power": "qualified-dead",   # qualified unavailable → backup
}  # fmt: skip


def site_yaml(pbx: LivePbx, ports: dict[str, int], prompts: Path) -> str:
    endpoints = []
    for ep, how in TRUNK_BEHAVIOUR.items():
        port = ports["dead"] if how == "qualified-dead" else ports[how]
        qualify = ", qualify_frequency: 5" if how == "qualified-dead" else ""
        number = {"hotline-122": "122", "utility-water": "96116", "utility-gas": "96777",
                  "utility-gas-backup": "96777", "utility-heating": "96069", "utility-power": "95598"}[ep]  # fmt: skip
        endpoints.append(f'    {ep}: {{contact: "sip:{number}@127.0.0.1:{port}"{qualify}}}')
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
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            topic, _, payload = line.rstrip("\n").partition(" ")
            with contextlib.suppress(ValueError):
                body = json.loads(payload)
                with self.lock:
                    if "/reply/" in topic:
                        self.replies.append(body)
                    elif "/calls/" in topic and isinstance(body, dict):
                        self.items.append(body)

    def of(self, type_: str, **match: Any) -> list[dict[str, Any]]:
        with self.lock:
            found = [e for e in self.items if e.get("type") == f"org.callbridge.{type_}"]
        return [e for e in found if all(e.get("data", {}).get(k) == v for k, v in match.items())]

    def wait(self, type_: str, timeout: float = 20.0, **match: Any) -> dict[str, Any]:
        return wait_for(lambda: (self.of(type_, **match) or [None])[0], timeout, label=f"{type_} {match}")

    def of_call(self, call_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.items if e.get("data", {}).get("call_id") == call_id]


@dataclass
class Lab:
    pbx: LivePbx
    broker: Mosquitto
    events: Events
    run: subprocess.Popen[bytes]
    trunks: dict[str, Sipp]
    agents: Sipp
    dtmf_agent: Sipp
    root: Path
    calls: int = 0
    answered_by: str = ""  # endpoint of the agent who answered the last call (call.answered)

    def cli(self, command: str) -> str:
        return self.pbx.cli(command)

    def command(self, verb: str, body: dict[str, Any], timeout: float = 15.0) -> dict[str, Any]:
        """An MQTT command (3.1.1 reply topic); returns callbridge's reply."""
        corr = f"live-{time.monotonic_ns()}"
        payload = json.dumps({**body, "reply_to": "live", "correlation_id": corr})
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.broker.port), "-q", "1", "-V", "mqttv311",
                        "-t", f"callbridge/{SITE_ID}/cmd/{verb}", "-m", payload], check=True, timeout=10)  # fmt: skip

        def reply() -> dict[str, Any] | None:
            # a command the PBX executes is answered twice ("accepted", then the final result)
            with self.events.lock:
                return next((r for r in self.events.replies
                             if r.get("correlation_id") == corr and r.get("final", True)), None)  # fmt: skip

        found: dict[str, Any] = wait_for(reply, timeout, label=f"reply to {verb}")
        return found

    def only_agent(self, queue: str, agent: str, members: tuple[str, ...]) -> None:
        """Pause every member of *queue* but *agent* (which agent's phone answers decides the scenario)."""
        for m in members:
            verb = "unpause" if m == agent else "pause"
            self.cli(f"queue {verb} member PJSIP/{m} queue {queue}")

    def call(self, did: str, caller: str = CALLER) -> tuple[Sipp, str]:
        """A citizen calls *did*; returns the caller's SIPp and the call id once an agent answered."""
        self.calls += 1
        before = {e["data"]["call_id"] for e in self.events.of("call.offered")}
        sipp = self.pbx.call_in(f"caller{self.calls}", caller, did)
        offered = wait_for(lambda: [e for e in self.events.of("call.offered") if e["data"]["call_id"] not in before
                                    and e["data"].get("caller_num") == caller], 20, label=f"call.offered {did}")
        call_id = offered[0]["data"]["call_id"]
        self.answered_by = self.events.wait("call.answered", call_id=call_id)["data"].get("agent", "")
        return sipp, call_id

    def wait_cli(self, command: str, text: str, timeout: float = 20.0) -> str:
        """Poll an Asterisk CLI command until its output contains *text*."""
        found: str = wait_for(lambda: (out := self.cli(command)) and text in out and out, timeout,
                              label=f"{text!r} in {command!r}")  # fmt: skip
        return found

    def hang_up_everything(self) -> None:
        self.cli("channel request hangup all")
        wait_for(lambda: "0 active channels" in self.cli("core show channels count"), 20, label="no channels left")

    def sip_invites(self, trunk: str, number: str) -> list[str]:
        """INVITEs the trunk's SIPp received for *number* (the hotline dialled)."""
        return [m for m in self.trunks[trunk].received() if m.lstrip().startswith(f"INVITE sip:{number}@")]


def header(message: str, name: str) -> str:
    for line in message.splitlines():
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return ""


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    reason = live_unavailable()
    if reason:
        pytest.skip(f"live-PBX suite skipped: {reason}")
    root = tmp_path_factory.mktemp("live")
    pbx = LivePbx(root)
    prompts = root / "prompts"
    subprocess.run(["bash", str(REPO / "scripts" / "make-prompts"), str(prompts)], check=True, capture_output=True)
    trunks = {how: pbx.sipp_uas(f"trunk-{how}", f"uas_{how}.xml") for how in ("hold", "busy", "noanswer")}
    trunks["ok"] = trunks.pop("hold")
    agents = pbx.sipp_uas("agents", "uas_hold.xml")
    dtmf = pbx.sipp_uas("agent1001", "uas_dtmf.xml")
    ports = {"ok": trunks["ok"].port, "busy": trunks["busy"].port, "noanswer": trunks["noanswer"].port,
             "dead": free_udp_port(), "agents": agents.port, "dtmf": dtmf.port}  # fmt: skip
    site = parse_site_text(site_yaml(pbx, ports, prompts), "live-site.yaml")
    (root / "live-site.yaml").write_text(site_yaml(pbx, ports, prompts), encoding="utf-8")
    pbx.write_base(render_all(load_dialplan(REPO / "dialplans"), site))
    try:
        pbx.start()
    except RuntimeError as exc:
        pbx.stop()
        if "SIGILL" in str(exc):
            pytest.skip(f"live-PBX suite skipped: {exc}")
        raise
    broker = Mosquitto(root / "mqtt")
    broker.__enter__()
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-v",
                            "-t", f"callbridge/{SITE_ID}/calls/#", "-t", f"callbridge/{SITE_ID}/reply/#"],
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    events = Events(sub)
    threading.Thread(target=events.pump, daemon=True).start()
    settings = root / "callbridge.yaml"
    settings.write_text(
        f"site_id: {SITE_ID}\n"
        f"ami: {{host: 127.0.0.1, port: {pbx.ami_port}, username: callbridge, auth: md5}}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, protocol: '3.1.1', outbox_path: {root / 'outbox.sqlite3'}}}\n"
        f"dialplan: {{path: {REPO / 'dialplans'}}}\nlog: {{format: json, level: info}}\nweb: {{enabled: false}}\n"
        f"store: {{path: {root / 'records.sqlite3'}}}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "CALLBRIDGE_AMI_SECRET": AMI_SECRET, "PYTHONPATH": str(REPO)}
    log = (root / "callbridge.log").open("wb")
    run = subprocess.Popen([sys.executable, "-m", "callbridge", "run", "--config", str(settings)], cwd=root,
                           env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    lab = Lab(pbx, broker, events, run, dict(trunks), agents, dtmf, root)
    try:
        wait_for(lambda: b'"ami.connected"' in (root / "callbridge.log").read_bytes(), 30, label="callbridge connected")
        yield lab
    finally:
        run.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.wait(15)
        if run.poll() is None:
            run.kill()
        sub.terminate()
        pbx.stop()
        broker.__exit__(None, None, None)


@pytest.fixture
def clean(lab: Lab) -> Iterator[Lab]:
    """Each scenario starts and ends with no channel on the PBX."""
    yield lab
    lab.hang_up_everything()


def never_bye(caller: Sipp) -> bool:
    return not [m for m in caller.received() if m.lstrip().startswith("BYE ")]


Check = Callable[[], bool]
