"""The hand-over id in a SIP header across the inter-centre trunk (the Asterisk side, pure text).

Sending side: a trunk with ``number_carrying.handover_header: true`` dials its lines with a pre-dial
handler (``Dial(...,b(cb-handover-out^s^1))``), which runs *on the outbound channel* — the only channel a
PJSIP header added with ``PJSIP_HEADER(add,...)`` goes out on — and adds ``X-Callbridge-Handover:
${CB_XFER_ID}`` (``CB_XFER_ID`` is inherited from the caller: the engine sets ``__CB_XFER_ID``). The
caller's number travels as always: ``CALLERID(num)`` in From and, with ``send_pai=yes``,
P-Asserted-Identity.

Receiving side: a hotline one of whose inbound trunks has ``handover_header: true`` reads the header
into ``__CB_HANDOVER_IN`` as the first step of ``cb-inbound`` (Asterisk reports it in ``VarSet``; the
tracker keeps ``CB_*`` variables). The value comes from another PBX: :func:`handover_id` checks it
against the hand-over key alphabet (:data:`callbridge.bus.idents.KEY`) before it is used anywhere.
"""

from __future__ import annotations

import re

from callbridge.bus.idents import KEY
from callbridge.dialplan.model import Trunk
from callbridge.dialplan.plan import Dialplan

HEADER = "X-Callbridge-Handover"
#: The channel variable the inbound leg's header is read into (without the inheritance prefix).
INBOUND_VAR = "CB_HANDOVER_IN"
#: The pre-dial handler context (run on the outbound channel before it is dialled).
PREDIAL_CONTEXT = "cb-handover-out"

_KEY = re.compile(KEY)


def handover_id(value: str) -> str | None:
    """The header's value when it is a valid hand-over id, else ``None`` (the caller then falls back)."""
    value = value.strip()
    return value if _KEY.fullmatch(value) else None


def carries_header(trunk: Trunk | None) -> bool:
    return trunk is not None and trunk.number_carrying.handover_header


def dial_options(trunk: Trunk | None) -> str:
    """Extra ``Dial`` options of a trunk line (``""`` for a trunk without the header)."""
    return f",b({PREDIAL_CONTEXT}^s^1)" if carries_header(trunk) else ""


def render_predial(plan: Dialplan) -> str:
    """The ``cb-handover-out`` context when a trunk of the plan carries the header, else ``""``."""
    if not any(carries_header(t) for t in plan.trunks.values()):
        return ""
    return "\n".join((
        f"[{PREDIAL_CONTEXT}]",
        "; pre-dial handler on the outbound leg of an inter-centre trunk: the hand-over id in a SIP header",
        'exten => s,1,GotoIf($["${CB_XFER_ID}" = ""]?done)',
        f" same => n,Set(PJSIP_HEADER(add,{HEADER})=${{CB_XFER_ID}})",
        " same => n(done),Return()",
        "",
    ))  # fmt: skip


def reads_header(plan: Dialplan, inbound_trunks: tuple[str, ...]) -> bool:
    return any(carries_header(plan.trunks.get(name)) for name in inbound_trunks)


def inbound_step() -> str:
    """The ``cb-inbound`` step that keeps the inbound leg's header (empty when the peer stripped it)."""
    return f"n,Set(__{INBOUND_VAR}=${{PJSIP_HEADER(read,{HEADER})}})"
