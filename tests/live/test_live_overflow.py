"""Live PBX: 12345 overflows to the neighbour region's remote seats in surge mode, and comes back.

``of-12345-remote`` starts when no 12345 agent is free and 8 callers wait; callbridge sets the global
``CB_OVERFLOW_12345`` (new callers go to ``cb-overflow``) and withdraws waiting callers to
``q-12345-remote`` (``Local/300x@sim`` seats); when the queue is short again it clears the global.
"""

from __future__ import annotations

import re

import pytest
from conftest import Lab
from livepbx import wait_for

pytestmark = pytest.mark.live


def _global(lab: Lab, name: str) -> str:
    found = re.search(rf"^\s*{name}=(.*)$", lab.cli("dialplan show globals"), re.M)
    return found.group(1).strip() if found else ""


def test_surge_overflows_12345_to_the_remote_seats_and_back(clean: Lab) -> None:
    lab = clean
    lab.pause_all("q-12345")  # no 12345 agent is free
    try:
        assert lab.command("set_mode", {"mode": "surge", "reason": "live", "role": "supervisor"})["ok"]
        with lab.recording("live_overflow_12345_remote_and_back", "surge: 8 callers wait at q-12345, no agent free"):
            for n in range(8):
                lab.pbx.call_in(f"surge{n}", f"1350000{n:04d}", "12345")
            started = lab.events.wait("queue.overflow_started", timeout=60)["data"]
            assert (started["queue"], started["target"]) == ("q-12345", "q-12345-remote"), started
            # withdrawn callers reach the remote seats (Local/300x@sim rings PJSIP/agent300x)
            lab.wait_cli("core show channels concise", "PJSIP/agent300", timeout=60)
            assert "Setting global variable 'CB_OVERFLOW_12345' to 'of-12345-remote'" in lab.pbx.full_log()
            # Asterisk's view: the callers left beyond the recovery threshold wait at q-12345, the rest
            # went to q-12345-remote through cb-overflow (QUEUESTATUS=WITHDRAW, QUEUE_WITHDRAW_INFO)
            wait_for(lambda: lab.pbx.full_log().count("Goto (cb-overflow,of-12345-remote,1)") == 8 - 2, 60,
                     label="6 callers withdrawn")  # recover.waiting_calls = 2 stay  # fmt: skip
            # the withdrawal leaves 2 waiting for a second: at once below the recovery thresholds (2, 20 s)
            ended = lab.events.wait("queue.overflow_ended", timeout=60)["data"]
            assert ended["queue"] == "q-12345", ended
            wait_for(lambda: _global(lab, "CB_OVERFLOW_12345") == "", 30, label="CB_OVERFLOW_12345 cleared")
            lab.wait_cli("queue show q-12345", "2 calls")
            lab.hang_up_everything()
    finally:
        lab.command("set_mode", {"mode": "normal", "reason": "live", "role": "supervisor"})
        lab.pause_all("q-12345", paused=False)
    # back: a caller queues for the local agents again
    lab.only_agent("q-12345", "agent1002")
    lab.call("12345", "13500008888")
    assert lab.answered_by == "agent1002"
    assert "PJSIP/agent1002-" in lab.cli("core show channels concise")
