"""A real mosquitto broker for tests and local experiments.

``Mosquitto(workdir)`` writes a temporary config (loopback listener on a held free port, no persistence,
unlimited queues so counting subscribers see every message), starts ``mosquitto -c``, and waits until
the port accepts connections. It can be killed (SIGKILL), frozen (SIGSTOP), restarted on the *same*
port, and its users changed at run time (password file rewritten + SIGHUP, which mosquitto reloads).

    with Mosquitto(tmp_path, users={"pub": "secret"}) as broker:
        ... broker.host, broker.port ...

Passwords are hashed in mosquitto 2's own format (PBKDF2-SHA512, ``$7$``), so ``mosquitto_passwd``
is not needed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from callbridge.testing.ports import PortHold

#: mosquitto's line once its listeners are open (log_type notice, which the config turns on)
RUNNING = re.compile(r"mosquitto version \S+ running")
DEFAULT_BINARY_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def find_mosquitto() -> str | None:
    """The broker binary (``$MOSQUITTO``, PATH, or the Debian location), or None."""
    env = os.environ.get("MOSQUITTO")
    if env:
        return env
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in DEFAULT_BINARY_PATHS if Path(p).exists()), None)


def password_line(user: str, password: str, *, iterations: int = 101) -> str:
    """One ``mosquitto_passwd`` line (mosquitto 2: ``user:$7$<iterations>$<salt>$<hash>``)."""
    if ":" in user or "\n" in user:
        raise ValueError("user names cannot contain ':' or newlines")
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"{user}:$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


class Mosquitto:
    """One mosquitto process bound to 127.0.0.1:<port>, restartable on the same port."""

    host = "127.0.0.1"

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        users: dict[str, str] | None = None,
        allow_anonymous: bool | None = None,
        extra_config: str = "",
        binary: str | None = None,
    ) -> None:
        found = binary or find_mosquitto()
        if found is None:
            raise FileNotFoundError("mosquitto binary not found (install the Debian 'mosquitto' package)")
        self.binary = found
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Held for this object's life, so that a restart on the same port (after a kill -9 outage) never
        # finds it taken by somebody else's port-0 bind (callbridge.testing.ports says why).
        self._hold: PortHold | None = None
        if port is None:
            self._hold = PortHold(self.host)
            port = self._hold.port
        self.port = port
        self.users = dict(users or {})
        self.allow_anonymous = (not self.users) if allow_anonymous is None else allow_anonymous
        self.extra_config = extra_config
        self.config_path = self.workdir / "mosquitto.conf"
        self.password_path = self.workdir / "passwd"
        self.log_path = self.workdir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    # --- configuration ------------------------------------------------------------------------

    def _write_passwords(self) -> None:
        lines = [password_line(u, p) for u, p in self.users.items()]
        self.password_path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        self.password_path.chmod(0o600)

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            "persistence false",
            # 0 = unlimited: the default of 1000 queued messages drops QoS 0 for a lagging subscriber,
            # and 20 in flight makes a slow subscriber's backlog live only in broker memory.
            "max_queued_messages 0",
            "max_inflight_messages 0",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise mosquitto drops to 'mosquitto' and cannot read workdir
        if self.users or not self.allow_anonymous:
            self._write_passwords()
            lines.append(f"password_file {self.password_path}")
        if self.extra_config:
            lines.append(self.extra_config)
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    # --- process control ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        self._write_config()
        log_from = self._log_bytes()
        # The binary is a trusted local path and the config a file we just wrote.
        self._proc = subprocess.Popen(  # noqa: S603
            [self.binary, "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                started = self._log_since(log_from)  # this start's lines: why it exited, not the last run's
                code = self._proc.returncode
                raise RuntimeError(f"mosquitto exited with {code} on port {self.port}: {err}\n{started}")
            # Up once this start logged "running" (after it opened its listener) and the port answers: a
            # connection alone could reach somebody else listening there while this one fails to bind.
            if RUNNING.search(self._log_since(log_from)):
                with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            time.sleep(0.02)
        self.stop(kill=True)
        raise TimeoutError(f"mosquitto did not listen on {self.host}:{self.port} within {timeout}s")

    def stop(self, *, kill: bool = False, timeout: float = 5.0) -> None:
        """SIGTERM (graceful) or SIGKILL (crash); waits for the process to exit."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if kill:
                    proc.send_signal(signal.SIGKILL)  # works on a frozen broker too, which must not run again
                else:
                    proc.send_signal(signal.SIGCONT)  # a frozen broker cannot handle SIGTERM
                    proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if proc.stderr is not None:
            proc.stderr.close()

    def restart(self, *, kill: bool = True) -> None:
        """Stop (SIGKILL by default) and start again on the same port."""
        self.stop(kill=kill)
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the broker accepts bytes into its socket buffers but answers nothing."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def set_users(self, users: dict[str, str]) -> None:
        """Replace the password file and make the running broker reload it (SIGHUP)."""
        self.users = dict(users)
        self._write_passwords()
        if self._proc is not None and self.running:
            self._proc.send_signal(signal.SIGHUP)

    def _log_bytes(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def _log_since(self, offset: int) -> str:
        """The log from byte *offset* on: what one start wrote."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def log_text(self) -> str:
        return self._log_since(0)

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the broker and give its port back."""
        self.stop()
        if self._hold is not None:
            self._hold.close()
