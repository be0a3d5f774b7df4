"""End-to-end fixtures: the daemon (``callbridge.app.App``) beside the PBX simulator, over real TCP.

The simulator runs the Asterisk configuration rendered from the example dialplans
(``callbridge.dialplan.render_asterisk``), so what the engine redirects into is what ops deploy. The
110 queue's members are turned into SIP phones (agent2101/2102) so a 110 agent can press keys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callbridge.testing.lab import (  # the lab lives there so that bench/faults.py runs it too
    CALLER as CALLER,
)
from callbridge.testing.lab import ROOT as ROOT
from callbridge.testing.lab import SECRET as SECRET
from callbridge.testing.lab import Lab as Lab
from callbridge.testing.lab import agent_endpoint as agent_endpoint
from callbridge.testing.lab import command as command
from callbridge.testing.lab import copy_dialplans as copy_dialplans
from callbridge.testing.lab import open_lab as open_lab
from callbridge.testing.lab import sim_config as sim_config
from callbridge.testing.lab import sim_phone_context as sim_phone_context


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    async with open_lab(tmp_path) as opened:
        yield opened
