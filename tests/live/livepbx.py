"""A private Asterisk 22 loaded with the rendered configuration, SIPp user agents, and their logs.

The Asterisk side is built the way a site deploys callbridge: a small "existing" configuration
(:data:`BASE_FILES`, as a stock install has it) whose files end in ``#include`` lines for the files
``callbridge render-asterisk`` writes, the manager user in ``manager.d/`` (included by the stock
manager.conf's ``#include manager.d/*.conf``), its secret filled in by ``envsubst`` with the one variable
of the secret. Every writable directory is under the session's temporary folder and every port is chosen
free at run time (other private instances may run on the same machine).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AST = Path("/opt/ast")
ASTERISK = AST / "sbin" / "asterisk"
SIPP_DIR = Path(__file__).resolve().parent / "sipp"
INSTALL_SH = REPO.parent / "shared" / "asterisk" / "install.sh"
AMI_SECRET = "live-test-secret-not-for-production"


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port() -> int:
    """A UDP port free now, whose TCP twin is free too (SIPp may open both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free UDP port")


def free_udp_range(size: int = 200) -> int:
    """The first port of *size* consecutive even-aligned UDP ports that are free now (RTP)."""
    import random

    for _ in range(200):
        base = random.randrange(20000, 60000 - size, 2)
        socks: list[socket.socket] = []
        try:
            for p in range(base, base + size, 37):  # a sample: binding all 200 would be slow
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free RTP range")


def live_unavailable() -> str:
    """Why the live suite cannot run here ('' when it can)."""
    if os.environ.get("CALLBRIDGE_LIVE") == "0":
        return "CALLBRIDGE_LIVE=0 in the environment"
    if not ASTERISK.exists() and INSTALL_SH.is_file() and os.geteuid() == 0:
        proc = subprocess.run(["bash", str(INSTALL_SH)], capture_output=True, text=True, timeout=900, check=False)
        if proc.returncode != 0:
            return f"{INSTALL_SH} failed ({proc.returncode}): {proc.stderr.strip()[-300:]}"
    if not ASTERISK.exists():
        if not INSTALL_SH.is_file():
            return f"no Asterisk at {AST} and no installer at {INSTALL_SH} (the live-PBX suite needs ../shared)"
        return f"no Asterisk at {AST}; run (as root) bash {INSTALL_SH}"
    for tool in ("sipp", "envsubst"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (bash {INSTALL_SH} installs SIPp; gettext-base has envsubst)"
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        return "espeak-ng and sox are needed for the prompts (bash scripts/setup installs them)"
    return ""


BASE_FILES: dict[str, str] = {
    "modules.conf": """[modules]
autoload = yes
noload => chan_iax2.so
noload => chan_mgcp.so
noload => chan_skinny.so
noload => chan_unistim.so
noload => pbx_dundi.so
noload => res_phoneprov.so
noload => res_pjsip_phoneprov_provider.so
noload => res_hep.so
noload => res_hep_pjsip.so
noload => res_hep_rtcp.so
noload => res_xmpp.so
noload => chan_motif.so
noload => res_snmp.so
noload => res_config_ldap.so
noload => res_config_pgsql.so
noload => res_config_mysql.so
noload => res_config_sqlite3.so
noload => cdr_pgsql.so
noload => cel_pgsql.so
noload => cdr_radius.so
noload => cel_radius.so
noload => cdr_tds.so
noload => cel_tds.so
noload => res_calendar.so
noload => res_calendar_caldav.so
noload => res_calendar_ews.so
noload => res_calendar_exchange.so
noload => res_calendar_icalendar.so
noload => app_voicemail.so
noload => res_stir_shaken.so
noload => res_pjsip_stir_shaken.so
noload => res_prometheus.so
noload => res_statsd.so
noload => res_smdi.so
noload => res_aeap.so
noload => res_speech_aeap.so
noload => res_pjsip_config_wizard.so
noload => res_pjsip_outbound_publish.so
noload => res_pjsip_publish_asterisk.so
noload => chan_audiosocket.so
noload => res_audiosocket.so
noload => chan_websocket.so
noload => app_audiosocket.so
noload => res_pjsip_exten_state.so
noload => res_pjsip_notify.so
noload => res_resolver_unbound.so
noload => cdr_csv.so
noload => cdr_custom.so
noload => cdr_manager.so
noload => cdr_sqlite3_custom.so
noload => cel_custom.so
noload => cel_manager.so
noload => cel_sqlite3_custom.so
noload => res_http_websocket.so
noload => res_ari.so
""",
    "logger.conf": """[general]
dateformat = %F %T.%3q
[logfiles]
messages.log => notice,warning,error
full.log => notice,warning,error,verbose,dtmf
""",
    "manager.conf": """[general]
enabled = yes
port = @AMI_PORT@
bindaddr = 127.0.0.1
displayconnects = yes
webenabled = no

#include "manager.d/*.conf"
""",
    "extensions.conf": """[general]
static = yes
writeprotect = yes
clearglobalvars = no

[globals]

[default]
exten => s,1,Hangup()

#include extensions_callbridge.conf
""",
    "pjsip.conf": """[global]
type = global
user_agent = Asterisk-Live-22
endpoint_identifier_order = ip,username,anonymous

[system]
type = system
timer_t1 = 500

#include pjsip_callbridge.conf
""",
    "queues.conf": """[general]
persistentmembers = no
shared_lastcall = no
log_membername_as_agent = yes

#include queues_callbridge.conf
""",
    "confbridge.conf": """[general]

#include confbridge_callbridge.conf
""",
    "features.conf": """[general]

[featuremap]

[applicationmap]

#include features_callbridge.conf
""",
    "musiconhold.conf": """[general]

[default]
mode = files
directory = moh

#include musiconhold_callbridge.conf
""",
    "indications.conf": """[general]
country = cn

[cn]
description = China
ringcadence = 1000,4000
dial = 450
busy = 450/350,0/350
ring = 450/1000,0/4000
congestion = 450/700,0/700
callwaiting = 450/400,0/4000
dialrecall = 450
record = 950/400,0/10000
info = 450/100,0/100,450/100,0/100,450/100,0/100,450/400,0/400
stutter = 450+425
""",
    "rtp.conf": """[general]
rtpstart = @RTP_START@
rtpend = @RTP_END@
""",
    "res_parking.conf": "[general]\n",
    "cdr.conf": "[general]\nenable = no\n",
    "cel.conf": "[general]\nenable = no\n",
    "http.conf": "[general]\nenabled = no\n",
    "ari.conf": "[general]\nenabled = no\n",
    "acl.conf": "",
    "ccss.conf": "",
    "udptl.conf": "[general]\n",
    "stasis.conf": "",
}

INCLUDED = ("extensions_callbridge.conf", "pjsip_callbridge.conf", "queues_callbridge.conf",
            "confbridge_callbridge.conf", "features_callbridge.conf", "musiconhold_callbridge.conf",
            "manager.d/callbridge.conf")  # fmt: skip


@dataclass
class Sipp:
    """One SIPp user agent; every SIP message it saw is in ``messages``."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    messages: Path

    def text(self) -> str:
        return self.messages.read_text("utf-8", "replace") if self.messages.exists() else ""

    def received(self) -> list[str]:
        """The SIP messages SIPp received, each starting at its request or status line."""
        out = []
        for block in re.split(r"^-{10,}.*\n", self.text(), flags=re.M):
            head, _, message = block.lstrip("\n").partition("\n")
            if "message received" in head:
                out.append(message.lstrip("\n"))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class LivePbx:
    root: Path
    ami_port: int = field(default_factory=free_tcp_port)
    sip_port: int = field(default_factory=free_udp_port)
    rtp_start: int = field(default_factory=free_udp_range)
    proc: subprocess.Popen[bytes] | None = None
    sipps: list[Sipp] = field(default_factory=list)

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def conf(self) -> Path:
        return self.etc / "asterisk.conf"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    def write_base(self, rendered: dict[str, str]) -> None:
        """The 'existing' Asterisk configuration, the rendered files beside it, the secret filled in."""
        for sub in ("etc/manager.d", "db", "spool", "run", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            "[directories]\n"
            f"astetcdir => {self.etc}\n"
            f"astmoddir => {AST}/lib/asterisk/modules\n"
            f"astdatadir => {AST}/var/lib/asterisk\n"
            f"astvarlibdir => {AST}/var/lib/asterisk\n"
            f"astkeydir => {AST}/var/lib/asterisk\n"
            f"astagidir => {AST}/var/lib/asterisk/agi-bin\n"
            f"astdbdir => {self.root}/db\n"
            f"astspooldir => {self.root}/spool\n"
            f"astrundir => {self.root}/run\n"
            f"astlogdir => {self.log_dir}\n"
            f"astsbindir => {AST}/sbin\n"
            "\n[options]\nverbose = 3\ndebug = 0\nnocolor = yes\n"
            "transmit_silence = no\nlanguage = en\nhideconnect = yes\n",
            encoding="utf-8",
        )
        subst = {"@AMI_PORT@": str(self.ami_port), "@RTP_START@": str(self.rtp_start),
                 "@RTP_END@": str(self.rtp_start + 199)}  # fmt: skip
        for name, text in BASE_FILES.items():
            for k, v in subst.items():
                text = text.replace(k, v)
            (self.etc / name).write_text(text, encoding="utf-8")
        for name, text in rendered.items():
            (self.etc / name).parent.mkdir(parents=True, exist_ok=True)
            (self.etc / name).write_text(text, encoding="utf-8")
        manager = self.etc / "manager.d" / "callbridge.conf"
        filled = subprocess.run(["envsubst", "$CALLBRIDGE_AMI_SECRET"], input=manager.read_text("utf-8"),
                                capture_output=True, text=True, check=True,
                                env={**os.environ, "CALLBRIDGE_AMI_SECRET": AMI_SECRET})  # fmt: skip
        manager.write_text(filled.stdout, encoding="utf-8")

    def start(self, timeout: float = 60.0) -> None:
        out = (self.root / "asterisk.stdout").open("wb")
        self.proc = subprocess.Popen([str(ASTERISK), "-C", str(self.conf), "-f", "-n", "-q"],
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self._exit_reason())
            if (self.root / "run" / "asterisk.ctl").exists():
                r = self.cli("core waitfullybooted", timeout=timeout)
                if "fully booted" in r.lower():
                    return
            time.sleep(0.2)
        raise RuntimeError("asterisk did not boot: " + self.full_log()[-2000:])

    def _exit_reason(self) -> str:
        code = self.proc.returncode if self.proc is not None else None
        if code in (-signal.SIGILL, 128 + signal.SIGILL):
            flags = Path("/proc/cpuinfo").read_text("utf-8", "replace") if Path("/proc/cpuinfo").exists() else ""
            cpu = "this CPU has no AVX-512" if " avx512f" not in flags else "this CPU"
            return (f"{ASTERISK} stops at start with SIGILL (illegal instruction) and {cpu}: the build in "
                    f"{INSTALL_SH.parent} was compiled with menuselect BUILD_NATIVE (-march=native) on another CPU; "
                    "it must be rebuilt with BUILD_NATIVE disabled (menuselect --disable BUILD_NATIVE)")
        return f"asterisk exited {code}: {self.full_log()[-2000:]}"

    def cli(self, command: str, timeout: float = 20.0) -> str:
        proc = subprocess.run([str(ASTERISK), "-C", str(self.conf), "-rx", command],
                              capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip
        return proc.stdout + proc.stderr

    def full_log(self) -> str:
        path = self.log_dir / "full.log"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def messages_log(self) -> str:
        path = self.log_dir / "messages.log"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def stop(self) -> None:
        for s in self.sipps:
            s.stop()
        if self.proc is not None and self.proc.poll() is None:
            self.cli("core stop now", timeout=10)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    # --- SIPp ----------------------------------------------------------------------------------------

    def sipp_uas(self, name: str, scenario: str) -> Sipp:
        port = free_udp_port()
        msgs = self.root / f"sipp-{name}.msgs.log"
        media = free_udp_port()
        proc = subprocess.Popen(
            ["sipp", "-sf", str(SIPP_DIR / scenario), "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1",
             "-mp", str(media), "-nostdin", "-trace_msg", "-message_file", str(msgs),
             "-trace_err", "-error_file", str(self.root / f"sipp-{name}.err.log"), "-max_recv_loops", "100",
             "-aa", "-default_behaviors", "all,-bye"],
            cwd=SIPP_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        s = Sipp(name, port, proc, msgs)
        self.sipps.append(s)
        return s

    def call_in(self, name: str, caller: str, did: str) -> Sipp:
        """An inbound carrier call from *caller* to *did* (SIPp UAC that stays up until Asterisk's BYE)."""
        scenario = self.root / f"uac-{name}.xml"
        template = (SIPP_DIR / "uac_caller.xml.tmpl").read_text("utf-8")
        scenario.write_text(template.replace("@CALLER@", caller), encoding="utf-8")
        port = free_udp_port()
        msgs = self.root / f"sipp-{name}.msgs.log"
        proc = subprocess.Popen(
            ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1",
             "-mp", str(free_udp_port()), "-s", did, "-m", "1", "-l", "1", "-nostdin", "-trace_msg",
             "-message_file", str(msgs), "-trace_err", "-error_file", str(self.root / f"sipp-{name}.err.log"),
             f"127.0.0.1:{self.sip_port}"],
            cwd=SIPP_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        s = Sipp(name, port, proc, msgs)
        self.sipps.append(s)
        return s


def wait_for(what, timeout: float = 15.0, interval: float = 0.2, label: str = ""):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {label or what}")
        time.sleep(interval)
