"""What a dialplan application returns to the simulator's interpreter (:mod:`callbridge.sim.pbx`).

A leaf module, so that the applications living beside the interpreter (``Queue()`` in :mod:`.queues`,
``ConfBridge()`` in :mod:`.confbridge`) name their outcome without importing the interpreter itself.
"""

from __future__ import annotations

#: wait until someone (a Dial, a queue, a bridge) moves the channel on
BLOCK = "block"
#: the application moved the channel's own position (Goto)
JUMP = "jump"
#: go on (None), wait this many seconds (float), BLOCK or JUMP
Outcome = float | str | None
