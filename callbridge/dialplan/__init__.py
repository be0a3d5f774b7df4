"""The ops-facing YAML dialplan: models, loader, cross-reference checks, Asterisk rendering.

Public API::

    from callbridge.dialplan import Dialplan, load_dialplan, load_dialplan_with_warnings
"""

from __future__ import annotations

from callbridge.dialplan.loader import load_dialplan, load_dialplan_with_warnings, parse_dialplan_text
from callbridge.dialplan.model import (
    DialplanModel,
    ExpertPriority,
    ExpertSeats,
    Hotline,
    Mode,
    NuisancePolicy,
    NumberCarrying,
    Overflow,
    Queue,
    TransferRule,
    Trunk,
)
from callbridge.dialplan.plan import Dialplan

__all__ = [
    "Dialplan",
    "DialplanModel",
    "ExpertPriority",
    "ExpertSeats",
    "Hotline",
    "Mode",
    "NuisancePolicy",
    "NumberCarrying",
    "Overflow",
    "Queue",
    "TransferRule",
    "Trunk",
    "load_dialplan",
    "load_dialplan_with_warnings",
    "parse_dialplan_text",
]
