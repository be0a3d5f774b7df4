"""A private Asterisk 22 loaded with the rendered configuration, SIPp user agents, and their logs.

The Asterisk side is built the way a site deploys callbridge: a small "existing" configuration
(:data:`BASE_FILES`, as a stock install has it) whose files end in ``#include`` lines for the files
``callbridge render-asterisk`` writes, the manager user in ``manager.d/`` (included by the stock
manager.conf's ``#include manager.d/*.conf``), its secret filled in by ``envsubst`` with the one variable
of the secret. Every writable directory is under the session's temporary folder and every port is chosen
free at run time (other private instances may run on the same machine).
"""

from __future__ import annotations

import functools
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from baseconf import BASE_FILES

from callbridge.testing.ports import PortHold

REPO = Path(__file__).resolve().parents[2]
AST = Path("/opt/ast")
#: the binary to run (``$CALLBRIDGE_LIVE_ASTERISK`` overrides it: another build, or a test of the skip)
ASTERISK = Path(os.environ.get("CALLBRIDGE_LIVE_ASTERISK") or AST / "sbin" / "asterisk")
SIPP_DIR = Path(__file__).resolve().parent / "sipp"
INSTALL_SH = REPO.parent / "shared" / "asterisk" / "install.sh"
AMI_SECRET = "live-test-secret-not-for-production"


def free_udp_port(span: int = 1) -> int:
    """A UDP port free now, with the *span* - 1 ports after it, whose TCP twin is free too (SIPp may open
    both; its media port *p* also uses *p* + 2)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + span > 65535 or not all(_udp_free(p) for p in range(port + 1, port + span)):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free UDP port")


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_udp_range(size: int = 200) -> int:
    """The first port of *size* consecutive even-aligned UDP ports that are free now (RTP)."""
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


class CannotRun(RuntimeError):
    """This machine cannot execute the installed Asterisk (a build for another CPU): the suite skips."""


class PbxGone(AssertionError):
    """The lab's Asterisk is no longer running (it crashed, or was killed): the message says how it ended."""


#: what ``asterisk -rx`` prints when nothing listens on the control socket (the daemon is gone or restarting)
NO_CONSOLE = "Unable to connect to remote asterisk"


def sigill_reason(binary: Path, returncode: int | None, output: str = "") -> str:
    """Why *binary* died, when it died of an illegal instruction ('' otherwise)."""
    if returncode not in (-signal.SIGILL, 128 + signal.SIGILL) and "Illegal instruction" not in output:
        return ""
    flags = Path("/proc/cpuinfo").read_text("utf-8", "replace") if Path("/proc/cpuinfo").exists() else ""
    cpu = "this CPU has no AVX-512" if " avx512f" not in flags else "this CPU lacks an instruction it uses"
    return (f"{binary} stops at start with SIGILL (illegal instruction) and {cpu}: the build in "
            f"{INSTALL_SH.parent} was compiled for another CPU (menuselect BUILD_NATIVE, -march=native); "
            "rebuild it with BUILD_NATIVE disabled (menuselect --disable BUILD_NATIVE)")


def probe_start(binary: Path = ASTERISK, timeout: float = 60.0) -> str:
    """Start *binary* briefly with no modules in a temporary folder: '' when it boots, else why it cannot.

    ``asterisk -V`` works on any CPU; only a real start executes the code a foreign build has compiled
    for instructions this CPU lacks, so that is what is probed. The one probe: ``scripts/build-asterisk``
    runs it too (``python3 tests/live/livepbx.py --probe BINARY``, see :func:`main`). The modules and data
    are those of the binary's own install (``…/sbin/asterisk`` → ``…/lib/asterisk/modules``).
    """
    install = binary.parent.parent
    with tempfile.TemporaryDirectory(prefix="cb-probe-") as tmp:
        root = Path(tmp)
        for sub in ("etc", "db", "spool", "run", "log"):
            (root / sub).mkdir()
        conf = root / "etc" / "asterisk.conf"
        dirs = "".join(f"ast{d}dir => {root / d}\n" for d in ("etc", "db", "spool", "run", "log"))
        conf.write_text("[directories]\n" + dirs
                        + f"astmoddir => {install}/lib/asterisk/modules\nastdatadir => {install}/var/lib/asterisk\n"
                        + f"astvarlibdir => {root}/db\n", encoding="utf-8")  # fmt: skip
        (root / "etc" / "modules.conf").write_text("[modules]\nautoload = no\n", encoding="utf-8")
        for name in ("logger.conf", "manager.conf", "extensions.conf"):
            (root / "etc" / name).write_text("[general]\n", encoding="utf-8")
        proc = subprocess.Popen([str(binary), "-C", str(conf), "-f", "-n", "-q"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    out = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
                    why = sigill_reason(binary, proc.returncode, out)
                    return why or f"{binary} exited {proc.returncode} at start: {out[-500:]}"
                if (root / "run" / "asterisk.ctl").exists():
                    r = subprocess.run([str(binary), "-C", str(conf), "-rx", "core waitfullybooted"],
                                       capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip
                    if "fully booted" in r.stdout.lower():
                        return ""
                time.sleep(0.1)
            return f"{binary} did not boot within {timeout:.0f} s (even with no modules)"
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def _install_reason() -> str:
    """Install Asterisk with ``../shared/asterisk/install.sh`` if it is missing; why it is not there ('' if it is)."""
    if not ASTERISK.exists() and INSTALL_SH.is_file() and os.geteuid() == 0:
        proc = subprocess.run(["bash", str(INSTALL_SH)], capture_output=True, text=True, timeout=900, check=False)
        if proc.returncode != 0:
            return f"{INSTALL_SH} failed ({proc.returncode}): {proc.stderr.strip()[-300:]}"
    if ASTERISK.exists():
        return ""
    if not INSTALL_SH.is_file():
        return f"no Asterisk at {AST} and no installer at {INSTALL_SH} (the live-PBX suite needs ../shared)"
    return f"no Asterisk at {AST}; run (as root) bash {INSTALL_SH}"


@functools.cache
def live_unavailable() -> str:
    """Why the live suite cannot run here ('' when it can); asked once per test session."""
    if os.environ.get("CALLBRIDGE_LIVE") == "0":
        return "CALLBRIDGE_LIVE=0 in the environment"
    # The build is probed before the tools: a build that cannot start on this CPU is the reason to
    # report, and installing SIPp would not cure it.
    missing = _install_reason() or probe_start()
    if missing:
        return missing
    for tool in ("sipp", "envsubst", "mosquitto_sub", "mosquitto_pub"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (bash {INSTALL_SH} installs SIPp; gettext-base has envsubst)"
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        return "espeak-ng and sox are needed for the prompts (bash scripts/setup installs them)"
    return ""


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
    #: held while the PBX lives: ``core restart now`` rebinds AMI on it (callbridge.testing.ports says why)
    ami_hold: PortHold = field(default_factory=PortHold, repr=False)
    sip_port: int = field(default_factory=free_udp_port)
    rtp_start: int = field(default_factory=free_udp_range)
    proc: subprocess.Popen[bytes] | None = None
    sipps: list[Sipp] = field(default_factory=list)

    @property
    def ami_port(self) -> int:
        return self.ami_hold.port

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
        # cwd: a core dump (where ulimit -c allows one; kernel.core_pattern "core") lands here, not in the checkout
        self.proc = subprocess.Popen([str(ASTERISK), "-C", str(self.conf), "-f", "-n", "-q"], cwd=self.root,
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                reason = self._exit_reason()
                raise CannotRun(reason) if "SIGILL" in reason else RuntimeError(reason)
            if (self.root / "run" / "asterisk.ctl").exists():
                r = self.cli("core waitfullybooted", timeout=timeout)
                if "fully booted" in r.lower():
                    return
            time.sleep(0.2)
        raise RuntimeError("asterisk did not boot: " + self.full_log()[-2000:])

    def _exit_reason(self) -> str:
        code = self.proc.returncode if self.proc is not None else None
        out = (self.root / "asterisk.stdout").read_text("utf-8", "replace")
        return sigill_reason(ASTERISK, code, out) or f"asterisk exited {code}: {out[-1000:]} {self.full_log()[-2000:]}"

    def cli(self, command: str, timeout: float = 20.0) -> str:
        """The output of one CLI command. Raises :class:`PbxGone` when the console cannot connect because
        Asterisk exited (not while it runs: during ``core restart now`` the console is away for a while)."""
        proc = subprocess.run([str(ASTERISK), "-C", str(self.conf), "-rx", command],
                              capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip
        out = proc.stdout + proc.stderr
        if NO_CONSOLE in out and not self.running():
            raise PbxGone(f"{command!r}: {self.gone_reason()}")
        return out

    def running(self) -> bool:
        """Whether the Asterisk process started here still runs (``core restart now`` keeps its pid)."""
        return self.proc is not None and self.proc.poll() is None

    def gone_reason(self) -> str:
        """How the PBX ended ('' while it runs): its exit status, a core file, the tail of its logs."""
        if self.running() or self.proc is None:
            return ""
        code = self.proc.returncode
        how = f"exited with status {code}"
        if code < 0:
            try:
                how = f"killed by signal {-code} ({signal.Signals(-code).name})"
            except ValueError:
                how = f"killed by signal {-code}"
        cores = sorted(str(p) for p in self.root.glob("core*") if p.is_file())
        console = self.root / "asterisk.stdout"
        stdout = console.read_text("utf-8", "replace").strip() if console.exists() else ""
        return "\n".join([
            f"Asterisk (pid {self.proc.pid}, {self.root}) is no longer running: {how}"
            + (f"; core file: {', '.join(cores)}" if cores else ""),
            "last lines of its messages.log:", self.messages_tail(),
            *(["its console output:", *stdout.splitlines()[-5:]] if stdout else []),
        ])  # fmt: skip

    def full_log(self) -> str:
        path = self.log_dir / "full.log"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def messages_log(self) -> str:
        path = self.log_dir / "messages.log"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def messages_tail(self, lines: int = 25) -> str:
        return "\n".join(self.messages_log().splitlines()[-lines:])

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
        self.ami_hold.close()

    # --- SIPp ----------------------------------------------------------------------------------------

    def _sipp(self, name: str, scenario: Path, extra: list[str]) -> Sipp:
        """Start SIPp on a free port; again on another if a port was taken meanwhile (it then exits at once)."""
        msgs = self.root / f"sipp-{name}.msgs.log"
        err = self.root / f"sipp-{name}.err.log"
        for _ in range(5):
            port, media = free_udp_port(), free_udp_port(span=4)
            proc = subprocess.Popen(
                ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1",
                 "-mp", str(media), "-nostdin", "-trace_msg", "-message_file", str(msgs),
                 "-trace_err", "-error_file", str(err), *extra],
                cwd=SIPP_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            # listening once the port is taken (by SIPp); an exit first means the bind failed
            wait_for(lambda port=port, proc=proc: proc.poll() is not None or not _udp_free(port), 30,  # type: ignore[misc]
                     interval=0.05, label=f"sipp {name} listening")  # fmt: skip
            if proc.poll() is None:
                s = Sipp(name, port, proc, msgs)
                self.sipps.append(s)
                return s
        errors = err.read_text("utf-8", "replace")[-500:] if err.exists() else ""
        raise RuntimeError(f"sipp {name} did not start: {errors}")

    def sipp_uas(self, name: str, scenario: str) -> Sipp:
        """A phone or trunk: answers as *scenario* says, any number of calls at once."""
        answer = ["-max_recv_loops", "100", "-aa", "-default_behaviors", "all,-bye"]
        return self._sipp(name, SIPP_DIR / scenario, answer)

    def call_in(self, name: str, caller: str, did: str) -> Sipp:
        """An inbound carrier call from *caller* to *did* (SIPp UAC that stays up until Asterisk's BYE)."""
        scenario = self.root / f"uac-{name}.xml"
        template = (SIPP_DIR / "uac_caller.xml.tmpl").read_text("utf-8")
        scenario.write_text(template.replace("@CALLER@", caller), encoding="utf-8")
        return self._sipp(name, scenario, ["-s", did, "-m", "1", "-l", "1", f"127.0.0.1:{self.sip_port}"])


def wait_for(what, timeout: float = 15.0, interval: float = 0.2, label: str = ""):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {label or what}")
        time.sleep(interval)


def main(argv: list[str]) -> int:
    """``python3 tests/live/livepbx.py --probe [BINARY]``: scripts/build-asterisk's start probe (the same as the
    live suite's). Exit 0 when *BINARY* (default: the live suite's Asterisk) boots here; otherwise print why
    (the SIGILL reason for a build made for another CPU) and exit 1."""
    if not argv or argv[0] != "--probe" or len(argv) > 2:
        print("usage: livepbx.py --probe [BINARY]")
        return 2
    why = probe_start(Path(argv[1]) if len(argv) == 2 else ASTERISK)
    if why:
        print(why)
        return 1
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
