"""Live PBX: ``core restart now`` in the middle of a call (runs last: it restarts the session's Asterisk).

Asterisk hangs every channel up (SoftHangupRequest Cause 4), says ``Shutdown Restart: True``, closes AMI
and boots again with the same rendered configuration; callbridge ends the call, reconnects and resyncs.
"""

from __future__ import annotations

import pytest
from conftest import Lab
from livepbx import wait_for

pytestmark = pytest.mark.live


def test_core_restart_now_mid_call_ends_the_call_and_callbridge_reconnects(lab: Lab) -> None:
    lab.only_agent("q-12345", "agent1002")
    _caller, call_id = lab.call("12345", "13700000077")
    log = lab.root / "callbridge.log"
    connected_before = log.read_bytes().count(b'"ami.connected"')
    lab.cli("core restart now")
    ended = lab.events.wait("call.ended", call_id=call_id, timeout=30)
    assert ended["data"]["call_id"] == call_id
    wait_for(lambda: "fully booted" in lab.cli("core waitfullybooted").lower(), 60, label="Asterisk back")
    wait_for(lambda: log.read_bytes().count(b'"ami.connected"') > connected_before, 30, label="callbridge reconnects")
    # the rendered configuration is loaded again and serves calls
    assert "cb-inbound" in lab.cli("dialplan show cb-inbound")
    _caller2, call2 = lab.call("12345", "13700000078")
    assert call2 != call_id
    lab.hang_up_everything()
