"""Two simulated PBXs joined by an inter-centre trunk (issue 21: two centres, two PBXs).

``join(a, "centre-110", b)``: every leg simulator ``a`` dials to its trunk endpoint ``centre-110``
(``PJSIP/110@centre-110``) arrives at simulator ``b`` as an inbound call from its carrier to the dialled
number (``110``), as a SIP INVITE would:

* From is the leg's connected number — the citizen's, which the rendered ``cb-to-`` context presents;
* ``X-Callbridge-Handover`` carries the leg's ``CB_XFER_ID`` when ``a``'s dialplan has the pre-dial
  handler (``cb-handover-out``: the simulator does not run Dial's ``b()`` option, the link does its one
  step) and the link is not set to strip it (``strip_header``: a peer PBX or SBC that drops unknown
  headers). ``b`` reads it with ``PJSIP_HEADER(read,X-Callbridge-Handover)``: the simulator reads an
  unknown dialplan function as the channel variable of that name, which the link sets on the inbound leg;
* the leg rings at once (180) and is answered when ``b`` answers the inbound channel (200 OK); a hang-up
  on either side ends the other (BYE, or the refusal's cause before an answer).

``hold()`` keeps the INVITEs back (the legs ring) until ``release()``: a call that reaches the other
centre after its hand-over data. The endpoint's behaviour still applies when it is not ``answer``
(``set_trunk("centre-110", "down")``: the other centre unreachable, its backup line and the failure chain
as for any trunk).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callbridge.centres.header import HEADER, PREDIAL_CONTEXT
from callbridge.sim.channels import UP, Channel

if TYPE_CHECKING:
    from callbridge.sim.simulator import Simulator
    from callbridge.sim.world import Event

#: The name under which the inbound leg's header is read (the rendered ``cb-inbound`` step).
READ_HEADER = f"PJSIP_HEADER(read,{HEADER})"


class TrunkLink:
    def __init__(self, a: Simulator, endpoint: str, b: Simulator, *, strip_header: bool = False) -> None:
        self.a, self.b, self.endpoint = a, b, endpoint
        self.strip_header = strip_header
        self.pairs: dict[str, Channel] = {}  # b's inbound channel name -> a's outbound leg
        self.calls: list[tuple[str, str, str]] = []  # (caller number, did, header) of each call passed on
        self.closed = False
        self.held: list[Channel] | None = None  # INVITEs held back (hold()), sent on release()
        a.pbx.far_ends[endpoint] = self.far_end
        b.subscribe(self._on_b_event)  # b's state changes (an event tap: b builds its events for it)

    def close(self) -> None:
        self.closed = True
        self.a.pbx.far_ends.pop(self.endpoint, None)

    def header_of(self, leg: Channel) -> str:
        """What the pre-dial handler adds on the outbound leg ("" when it adds nothing)."""
        if self.strip_header or not self.a.pbx.dialplan.exists(PREDIAL_CONTEXT, "s"):
            return ""
        return leg.vars.get("CB_XFER_ID", "")

    def far_end(self, leg: Channel) -> None:
        """``a`` dialled the trunk: the INVITE reaches ``b`` (after ``make_leg`` finished the leg)."""
        if self.held is not None:  # 180 from the peer's SBC (once Dial holds the leg); the INVITE at release()
            self.a.sched.soon(lambda: self.a.world.ringing(leg))
            self.held.append(leg)
            return
        self.a.sched.soon(lambda: self._invite(leg))

    def hold(self) -> None:
        """Hold the INVITEs back (a slow peer, an SBC queueing): the legs ring until :meth:`release`."""
        self.held = []

    def release(self) -> None:
        held, self.held = self.held or [], None
        for leg in held:
            self._invite(leg)

    def _invite(self, leg: Channel) -> None:
        if leg.hungup or self.closed:
            return
        did = leg.cid_num  # make_leg names a trunk leg after the number it dials (110 of PJSIP/110@centre-110)
        caller = leg.conn_num  # the connected line: the citizen's number, presented in From
        header = self.header_of(leg)
        inbound = self.b.place_call(caller, did, leg.conn_name if leg.conn_name != "<unknown>" else None,
                                    variables={READ_HEADER: header} if header else None)  # fmt: skip
        self.calls.append((caller, did, header))
        self.pairs[inbound.name] = leg
        self.a.world.ringing(leg)
        self.a.pbx.on_channel_gone(leg, lambda _c: self._a_gone(inbound))
        self.b.pbx.on_channel_gone(inbound, lambda c: self._b_gone(c, leg))

    def _on_b_event(self, event: Event) -> None:
        name, _priv, headers = event
        if name != "Newstate" or self.closed:
            return
        fields = dict(headers)
        leg = self.pairs.get(fields.get("Channel", ""))
        if leg is not None and fields.get("ChannelState") == str(UP) and not leg.hungup:
            self.a.world.answer(leg)  # 200 OK: a's Dial bridges the caller with the trunk leg

    def _a_gone(self, inbound: Channel) -> None:
        self.pairs.pop(inbound.name, None)
        if not inbound.hungup:
            self.b.caller_hangup(inbound)  # BYE from the other centre

    def _b_gone(self, inbound: Channel, leg: Channel) -> None:
        self.pairs.pop(inbound.name, None)
        if not leg.hungup:
            cause = int(inbound.vars.get("HANGUPCAUSE", "16") or 16)
            self.a.world.hangup(leg, cause if leg.state != UP else 16, request="hard")


def join(a: Simulator, endpoint: str, b: Simulator, *, strip_header: bool = False) -> TrunkLink:
    """Calls ``a`` sends to its trunk endpoint ``endpoint`` arrive at ``b`` (see the module text)."""
    return TrunkLink(a, endpoint, b, strip_header=strip_header)
