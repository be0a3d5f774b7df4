"""The PBX simulator: an AMI server that behaves like the recorded Asterisk 22 (issue 4).

Entry point: :class:`callbridge.sim.simulator.Simulator` (embedded) or ``callbridge sim`` (standalone).
Layers, pure first: ``clock`` (one heap scheduler, virtual time) · ``channels``/``bridges``/``world``
(state and the events each change emits) · ``dialplan`` (extensions.conf subset) · ``pbx`` (interpreter
and applications) · ``dial``/``queues``/``confbridge``/``transfers``/``dtmf`` · ``endpoints`` (far-end
behaviour) · ``actions``/``actions_info`` (AMI actions) · ``server`` (TCP/AMI sessions) · ``control``
(faults, callers) · ``traffic`` · ``fidelity``/``replay`` (comparison with the recorded traces).
"""
