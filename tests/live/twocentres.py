"""Two centres live (issue 21.4): two private Asterisks joined by a PJSIP trunk, two ``callbridge run``,
two mosquitto brokers bridged.

Each centre is one :func:`livelab.open_lab` (its own PBX, SIPp phones, ``callbridge run``, AMI recorder)
configured from the repository's two-centres files, exactly as a site renders them:
``dialplans/two-centres/<12345|110>`` and ``config/two-centres/site-<...>.yaml``, with only the lab's
addresses templated in (every port chosen free now): the transport on this PBX's SIP port, the trunk's
lines at the *other* PBX's SIP port (the 12345 centre's backup line too: both lines lead to the other
centre), the agents at the lab's SIPp. The 12345 centre's broker is plain; the 110 centre's broker
carries ``config/two-centres/mosquitto-bridge-110.conf`` with ``@PEER@`` filled in.

The 110 PBX logs every SIP message it receives (``pjsip set logger on``): that is where the INVITE that
crossed the trunk is read (From, P-Asserted-Identity, X-Callbridge-Handover).
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from livelab import Events, Lab, SiteText, open_lab
from livepbx import REPO, LivePbx, free_udp_port, wait_for

from callbridge.testing.mosquitto import Mosquitto

DIALPLANS = REPO / "dialplans" / "two-centres"
CONFIG = REPO / "config" / "two-centres"
BRIDGE = CONFIG / "mosquitto-bridge-110.conf"
SITE_IDS = {"12345": "c12345", "110": "c110"}
#: the line of the 110 centre's inbound trunk that makes its PBX read the hand-over header
READS_HEADER = "    number_carrying: {handover_header: true}\n"


def centre_site(centre: str, peer_sip_port: int) -> SiteText:
    """The centre's site file from ``config/two-centres``, the lab's ports templated in."""

    def text(pbx: LivePbx, ports: dict[str, int], prompts: Path) -> str:
        site = yaml.safe_load((CONFIG / f"site-{centre}.yaml").read_text("utf-8"))
        site["transport"]["bind"] = f"127.0.0.1:{pbx.sip_port}"
        site["trunks"]["default_host"] = f"127.0.0.1:{peer_sip_port}"
        for endpoint in (site["trunks"].get("endpoints") or {}).values():
            endpoint["contact"] = re.sub(r"@[^@;>]+$", f"@127.0.0.1:{peer_sip_port}", endpoint["contact"])
        site["agents"]["default_host"] = f"127.0.0.1:{ports['agents']}"
        site["prompts_dir"] = str(prompts)
        return str(yaml.safe_dump(site, allow_unicode=True, sort_keys=False))

    return text


def stripped_110_dialplans(root: Path) -> Path:
    """The 110 centre's dialplans with an inbound trunk that does not read the header (a peer PBX that
    strips it, as far as the 110 side can tell)."""
    plan = (DIALPLANS / "110" / "110.yaml").read_text("utf-8")
    assert plan.count(READS_HEADER) == 1, "the 110 dialplan's t-carrier line changed: update READS_HEADER"
    out = root / "dialplans-110-stripped"
    out.mkdir(parents=True, exist_ok=True)
    (out / "110.yaml").write_text(plan.replace(READS_HEADER, ""), encoding="utf-8")
    return out


def observe(broker: Mosquitto, topic: str, name: str) -> Events:
    """Every event on *topic* at *broker*, by a persistent ``mosquitto_sub`` session (client id *name*,
    clean session off): across a restart of a persisting broker it gets what was queued for it."""
    client = f"cb-observer-{name}-{broker.port}"
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-v", "-c",
                            "-i", client, "-t", topic], stdout=subprocess.PIPE, text=True)  # fmt: skip
    events = Events(sub)
    threading.Thread(target=events.pump, daemon=True).start()
    return events


@dataclass
class TwoCentres:
    c12345: Lab  # the 12345 centre: its PBX, daemon and broker (A)
    c110: Lab  # the 110 centre: its PBX, daemon and broker (B, which holds the bridge)
    bridge_broker: Mosquitto  # B
    from_110: Events  # the 110 daemon's events as they arrive at the 12345 broker
    from_12345: Events  # the 12345 daemon's events as they arrive at the 110 broker
    own_110: Events  # the 110 daemon's events at its own broker (a persistent session, unlike c110.events)

    def invites_at_110(self) -> list[str]:
        """The INVITEs the 110 PBX received (its pjsip logger), each from its request line."""
        return [m for m in received_sip(self.c110.pbx.full_log()) if m.startswith("INVITE sip:110@")]

    def var_sets(self, lab: Lab, variable: str) -> list[dict[str, str]]:
        """The ``VarSet`` events of *variable* in *lab*'s AMI session (as recorded between callbridge and it)."""
        with lab.recorder.lock:
            frames = [m.data for m in lab.recorder.messages if not m.sent]
        out = []
        for frame in frames:
            fields = dict(_ami_fields(frame))
            if fields.get("Event") == "VarSet" and fields.get("Variable", "").lstrip("_") == variable:
                out.append(fields)
        return out

    def hang_up_everything(self) -> None:
        """No channel left on either PBX (again while a late call still arrives: a resumed PBX)."""
        for lab in (self.c12345, self.c110):
            wait_for(lambda lab=lab: lab.cli("channel request hangup all") is not None  # type: ignore[misc]
                     and "0 active channels" in lab.cli("core show channels count"), 60, interval=1.0,
                     label=f"no channels left at {lab.site_id}")  # fmt: skip

    @contextlib.contextmanager
    def recording(self, name: str, note: str) -> Iterator[None]:
        """Both PBXs' AMI sessions of this span (``$CALLBRIDGE_LIVE_RECORD``: ``live_<name>_12345`` and
        ``live_<name>_110``); every call is hung up at the end of the span."""
        with self.c12345.recording(f"live_{name}_12345", f"{note} (the 12345 centre's PBX)"), \
                self.c110.recording(f"live_{name}_110", f"{note} (the 110 centre's PBX)"):  # fmt: skip
            yield
            self.hang_up_everything()

    @contextlib.contextmanager
    def frozen_110(self) -> Iterator[None]:
        """The 110 PBX unreachable: its process stopped (SIGSTOP) for the span, then resumed."""
        proc = self.c110.pbx.proc
        assert proc is not None and proc.poll() is None
        proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            proc.send_signal(signal.SIGCONT)


def _ami_fields(frame: bytes) -> Iterator[tuple[str, str]]:
    for line in frame.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep:
            yield key, value


_LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def received_sip(full_log: str) -> list[str]:
    """The SIP messages an Asterisk received, as its ``pjsip set logger`` wrote them into full.log."""
    out: list[str] = []
    current: list[str] | None = None
    for line in full_log.splitlines():
        if _LOG_LINE.match(line):
            if current is not None:
                out.append("\n".join(current).strip("\n"))
            current = [] if "<--- Received SIP request" in line else None
        elif current is not None:
            current.append(line)
    if current is not None:
        out.append("\n".join(current).strip("\n"))
    return out


def centres_settings(centre: str) -> str:
    """The ``centres:`` block of the centre's daemon settings (``config/two-centres/callbridge-<c>.yaml``)."""
    settings = yaml.safe_load((CONFIG / f"callbridge-{centre}.yaml").read_text("utf-8"))
    return str(yaml.safe_dump({"centres": settings["centres"]}, sort_keys=False))


@contextlib.contextmanager
def open_two_centres(root: Path, *, strip_header: bool = False) -> Iterator[TwoCentres]:
    """Both centres under *root*; *strip_header*: the 110 side's inbound trunk does not read the header.
    Each daemon links to the other (its ``centres:`` settings as ``config/two-centres`` has them)."""
    port_110 = free_udp_port()  # the 12345 site's trunk must know it before the 110 PBX exists
    dialplans_110 = stripped_110_dialplans(root) if strip_header else DIALPLANS / "110"
    with contextlib.ExitStack() as stack:
        broker_a = stack.enter_context(Mosquitto(root / "mqtt-12345"))
        bridge = BRIDGE.read_text("utf-8").replace("@PEER@", f"127.0.0.1:{broker_a.port}")
        # the 110 broker persists its sessions (the observers' queues) across the bridge test's restart
        persist = f"persistence true\npersistence_location {root / 'mqtt-110'}/\n"
        broker_b = stack.enter_context(Mosquitto(root / "mqtt-110", extra_config=bridge + persist))
        observers = {name: observe(broker, f"callbridge/{site}/events/#", name)
                     for name, broker, site in (("from-110", broker_a, "c110"), ("from-12345", broker_b, "c12345"),
                                                ("own-110", broker_b, "c110"))}  # fmt: skip
        for events in observers.values():
            stack.callback(events.proc.terminate)
        lab_12345 = stack.enter_context(open_lab(
            root / "c12345", site_id=SITE_IDS["12345"], dialplans=DIALPLANS / "12345", broker=broker_a,
            site=centre_site("12345", port_110), settings_extra=centres_settings("12345")))  # fmt: skip
        lab_110 = stack.enter_context(open_lab(
            root / "c110", site_id=SITE_IDS["110"], dialplans=dialplans_110, broker=broker_b,
            site=centre_site("110", lab_12345.pbx.sip_port), sip_port=port_110,
            settings_extra=centres_settings("110")))  # fmt: skip
        lab_110.cli("pjsip set logger on")
        yield TwoCentres(
            lab_12345, lab_110, broker_b, observers["from-110"], observers["from-12345"], observers["own-110"]
        )
