"""The AMI client's reconnect policy: the connection state and the jittered exponential back-off (pure, no I/O).

Split from :mod:`callbridge.ami.client` (which re-exports both names) because it is a small sans-IO state
machine the client merely drives: tested on its own with a seeded ``random.Random`` and no event loop
(tests/ami/test_ami_reconnect_policy.py), and read by the app and the health checks through
``AmiClient.state``.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field


class ConnState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    RESYNCING = "resyncing"
    CONNECTED = "connected"
    BACKING_OFF = "backing_off"
    LOGIN_FAILED = "login_failed"
    CLOSED = "closed"


@dataclass(slots=True)
class ReconnectPolicy:
    """Jittered exponential backoff: ``initial * multiplier**n`` capped at ``maximum``, ±``jitter``.

    Jitter spreads the reconnects of several callbridge instances after an Asterisk restart.
    """

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2
    login_retry: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    state: ConnState = ConnState.IDLE
    failures: int = 0
    attempts: int = 0

    def connecting(self) -> int:
        """A connect attempt starts; returns its 1-based number (for the logs)."""
        self.state = ConnState.CONNECTING
        self.attempts += 1
        return self.attempts

    def resyncing(self) -> None:
        self.state = ConnState.RESYNCING

    def connected(self) -> None:
        self.state = ConnState.CONNECTED
        self.failures = 0

    def failed(self) -> float:
        """A connection attempt or an established connection failed: the delay before the next."""
        self.state = ConnState.BACKING_OFF
        base = min(self.maximum, self.initial * self.multiplier**self.failures)
        self.failures += 1
        return self._jittered(base)

    def login_failed(self) -> float:
        self.state = ConnState.LOGIN_FAILED
        return self._jittered(self.login_retry)

    def closed(self) -> None:
        self.state = ConnState.CLOSED

    def _jittered(self, base: float) -> float:
        return max(0.0, base * (1.0 + self.rng.uniform(-self.jitter, self.jitter)))
