"""The transfers the engine follows: the registry every PBX fact and command is matched against (pure).

Recent transfers by id (finished ones are kept for ``status`` and idempotent repeats, up to
:data:`KEEP_FINISHED`), the unfinished ones apart (what every AMI event is matched against), and the
idempotency keys of commands. A mapping of id → :class:`Transfer` for everyone who reads it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from callbridge.engine.transfer import Transfer

#: Finished transfers kept for ``status`` and idempotent repeats (the records store keeps them for good).
KEEP_FINISHED = 5000


class Transfers(Mapping[str, Transfer]):
    """Transfer id → transfer, oldest first; plus the lookups the observer and the commands need."""

    __slots__ = ("_all", "_keys", "_live")

    def __init__(self) -> None:
        self._all: dict[str, Transfer] = {}  # recent transfers, finished ones kept for status/idempotency
        self._live: dict[str, Transfer] = {}  # unfinished ones: what every PBX event is matched against
        self._keys: dict[str, str] = {}  # idempotency key → transfer id

    # --- the mapping --------------------------------------------------------------------------------

    def __getitem__(self, transfer_id: str) -> Transfer:
        return self._all[transfer_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)

    def __contains__(self, transfer_id: object) -> bool:
        return transfer_id in self._all

    def get(self, transfer_id: str, default: Transfer | None = None) -> Transfer | None:  # type: ignore[override]
        return self._all.get(transfer_id, default)

    # --- book-keeping -------------------------------------------------------------------------------

    def add(self, t: Transfer) -> None:
        """Follow ``t`` (a new one, or one recalled from the records after a restart)."""
        self._all[t.id] = t
        self._live[t.id] = t
        if t.idempotency_key is not None:
            self._keys[t.idempotency_key] = t.id
        while len(self._all) > KEEP_FINISHED:  # oldest first (insertion order); never an unfinished one
            oldest = next(iter(self._all.values()))
            if not oldest.done:
                break
            self.forget(oldest)

    def forget(self, t: Transfer) -> None:
        del self._all[t.id]
        self._live.pop(t.id, None)
        if t.idempotency_key is not None and self._keys.get(t.idempotency_key) == t.id:
            del self._keys[t.idempotency_key]

    def by_key(self, idempotency_key: str) -> Transfer | None:
        """The transfer a command with this idempotency key started (None: none, or forgotten)."""
        transfer_id = self._keys.get(idempotency_key)
        return self._all.get(transfer_id) if transfer_id is not None else None

    # --- finding an unfinished transfer -------------------------------------------------------------

    def active(self) -> list[Transfer]:
        for done in [tid for tid, t in self._live.items() if t.done]:
            del self._live[done]
        return list(self._live.values())

    def active_on_call(self, call_id: str) -> Transfer | None:
        return next((t for t in self.active() if t.call_id == call_id), None)

    def by_channel(self, channel: str) -> Transfer | None:
        if not channel:
            return None
        return next((t for t in self.active() if channel in (t.caller_channel, t.route_channel, t.dest_channel)), None)

    def by_leg(self, uniqueid: str, *, finished: bool = False) -> tuple[Transfer, int] | None:
        """The three-way transfer that originated this leg (``ChannelId`` ``<id>-leg<n>``), and ``n``."""
        base, sep, index = uniqueid.rpartition("-leg")
        t = self._all.get(base) if sep else None
        if t is None or (t.done and not finished) or not index.isdigit():
            return None
        return t, int(index)
