"""Render the site-dependent Asterisk files: PJSIP endpoints, aors and identify, Local seats, music on hold.

The dialplan names endpoints; :class:`~callbridge.dialplan.site.Site` says where they are. Every endpoint
the dialplan dials (trunk lines, ``PJSIP/…`` queue members) gets an ``endpoint`` and an ``aor`` with its
contact; the inbound carrier an ``identify`` (without it its calls never reach ``cb-inbound``); every
``Local/<n>@<context>`` member a context that dials the seat. A dialplan endpoint the site file does not
place is an error naming it: a rendered configuration loads as is or is not written.
"""

from __future__ import annotations

from callbridge.dialplan.plan import Dialplan
from callbridge.dialplan.render_asterisk import HEADER
from callbridge.dialplan.site import Site
from callbridge.errors import ConfigError, Problem


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"


def endpoint_of(dial: str) -> str | None:
    """PJSIP endpoint of a dial string: ``PJSIP/110@hotline-110`` → ``hotline-110``, ``PJSIP/carrier`` → ``carrier``."""
    tech, _, rest = dial.partition("/")
    if tech != "PJSIP":
        return None
    return rest.rpartition("@")[2] if "@" in rest else rest


def _number_of(dial: str) -> str:
    """``PJSIP/110@hotline-110`` → ``110`` (the user part the far end is dialled with)."""
    rest = dial.partition("/")[2]
    return rest.partition("@")[0] if "@" in rest else ""


def trunk_endpoints(plan: Dialplan) -> dict[str, tuple[str, str]]:
    """Outbound trunk endpoint → (trunk name, number dialled), in dialplan order."""
    out: dict[str, tuple[str, str]] = {}
    for t in plan.trunks.values():
        for line in t.lines:
            ep = endpoint_of(line)
            if ep is not None and ep not in out and "@" in line:
                out[ep] = (t.name, _number_of(line))
    return out


def agent_endpoints(plan: Dialplan, site: Site | None = None) -> list[str]:
    """The agents' phones, in dialplan order: ``PJSIP/<endpoint>`` queue members, and the endpoints the
    site's Local seats dial (``Local/2101@sim`` with ``sim: PJSIP/agent${EXTEN}`` → ``agent2101``)."""
    seen: dict[str, None] = {}
    seats = site.local_seats if site is not None else {}
    for q in plan.queues.values():
        for m in q.members:
            ep = endpoint_of(m)
            if ep is None and m.startswith("Local/") and "@" in m:
                seat, _, ctx = m[len("Local/"):].rpartition("@")
                dial = seats.get(ctx, "")
                ep = endpoint_of(dial.replace("${EXTEN}", seat)) if "@" not in dial else None
            if ep is not None:
                seen.setdefault(ep)
    return list(seen)


def local_contexts(plan: Dialplan) -> list[str]:
    """Contexts named by ``Local/<n>@<context>`` queue members."""
    seen: dict[str, None] = {}
    for q in plan.queues.values():
        for m in q.members:
            if m.startswith("Local/") and "@" in m:
                seen.setdefault(m.rpartition("@")[2])
    return list(seen)


def check_site(plan: Dialplan, site: Site, filename: str = "<site>") -> None:
    """Every endpoint and Local context of the dialplan is placed by the site file, else ``ConfigError``."""
    missing = [*_carrier_missing(plan, site), *_contacts_missing(plan, site)]
    missing += [(f"local_seats.{ctx}", f"queue members Local/…@{ctx}: say what context {ctx!r} dials")
                for ctx in local_contexts(plan) if ctx not in site.local_seats]  # fmt: skip
    if missing:
        raise ConfigError([Problem(filename, 0, 0, field, message) for field, message in missing])


def _carrier_missing(plan: Dialplan, site: Site) -> list[tuple[str, str]]:
    """(field, message) for the inbound trunk lines the site's carrier does not cover."""
    inbound = {ep for t in plan.trunks.values() for line in t.lines if "@" not in line
               for ep in [endpoint_of(line)] if ep is not None}  # fmt: skip
    out = []
    if site.carrier.endpoint not in inbound:
        out.append(("carrier.endpoint", f"{site.carrier.endpoint!r} is not an inbound trunk line of the dialplan"
                    f" (expected one of: {', '.join(sorted(inbound)) or 'none'})"))  # fmt: skip
    out += [("carrier", f"inbound trunk endpoint {ep!r} has no carrier entry")
            for ep in sorted(inbound - {site.carrier.endpoint})]  # fmt: skip
    return out


def _contacts_missing(plan: Dialplan, site: Site) -> list[tuple[str, str]]:
    """(field, message) for the trunk and agent endpoints the site gives no contact (nor a default host)."""
    out = []
    if site.trunks.default_host is None:
        out += [(f"trunks.endpoints.{ep}", "no contact for this trunk endpoint (or set trunks.default_host)")
                for ep in trunk_endpoints(plan) if ep not in site.trunks.endpoints]  # fmt: skip
    if site.agents.include is None and site.agents.default_host is None:
        out += [(f"agents.endpoints.{ep}", "no contact for this agent (or set agents.default_host / include)")
                for ep in agent_endpoints(plan, site)
                if ep not in site.agents.endpoints or site.agents.endpoints[ep].contact is None]  # fmt: skip
    return out


def _transport(site: Site) -> list[str]:
    tr = site.transport
    if tr.bind is None:
        return [f"; transport {tr.name}: defined by the site's own pjsip.conf"]
    lines = [f"[{tr.name}]", "type = transport", f"protocol = {tr.protocol}", f"bind = {tr.bind}"]
    if tr.external_address:
        lines += [f"external_signaling_address = {tr.external_address}",
                  f"external_media_address = {tr.external_address}"]  # fmt: skip
    return lines


def _aor(name: str, contact: str, qualify: int = 0) -> list[str]:
    lines = [f"[{name}]", "type = aor", f"contact = {contact}"]
    if qualify:
        lines += [f"qualify_frequency = {qualify}", "qualify_timeout = 2.0"]
    return lines


def render_pjsip(plan: Dialplan, site: Site) -> str:
    trunks = trunk_endpoints(plan)
    lines = [
        HEADER,
        "; #include pjsip_callbridge.conf from pjsip.conf. Every callbridge endpoint inherits cb-site-endpoint",
        "; (transport, codecs) and its trunk's number-carrying template.",
        "",
        *_transport(site),
        "",
        "[cb-site-endpoint](!)",
        "type = endpoint",
        f"transport = {site.transport.name}",
        "disallow = all",
        "allow = alaw,ulaw",
        "direct_media = no",
        "rtp_symmetric = yes",
        "force_rport = yes",
        "dtmf_mode = rfc4733",
        "timers = no",
        f"moh_suggest = {site.moh_class}",
        "send_connected_line = yes",
        "trust_connected_line = yes",
    ]
    inbound = {t for h in plan.hotlines.values() for t in h.inbound_trunks}
    for t in plan.trunks.values():
        nc = t.number_carrying
        lines += [
            "",
            f"; trunk {t.name}: present_caller_id={_yn(nc.present_caller_id)}"
            f" p_asserted_identity={_yn(nc.p_asserted_identity)} verify={_yn(nc.verify)}",
            f"[cb-trunk-{t.name}](!)",
            "context = cb-inbound",  # any call a trunk brings in lands on its DID
            f"send_pai = {_yn(nc.p_asserted_identity)}",
            "send_rpid = no",
            # trust_id_outbound lets Asterisk send the caller's (transferred) identity to the far end
            f"trust_id_outbound = {_yn(nc.present_caller_id or nc.p_asserted_identity)}",
            f"trust_id_inbound = {_yn(nc.verify or t.name in inbound)}",
        ]
        if t.max_channels is not None:
            lines.append(f"device_state_busy_at = {t.max_channels}  ; callbridge enforces max_channels too")
        for ep, (trunk, number) in trunks.items():
            if trunk != t.name:
                continue
            placed = site.trunks.endpoints.get(ep)
            contact = placed.contact if placed else f"sip:{number}@{site.trunks.default_host}"
            lines += ["", f"[{ep}](cb-site-endpoint,cb-trunk-{t.name})", f"aors = {ep}",
                      *_aor(ep, contact, placed.qualify_frequency if placed else 0)]  # fmt: skip
        if any(endpoint_of(line) == site.carrier.endpoint and "@" not in line for line in t.lines):
            lines += _carrier(site, t.name)
    lines += ["", *_agents(plan, site)]
    return "\n".join(lines) + "\n"


def _carrier(site: Site, trunk: str) -> list[str]:
    c = site.carrier
    return [
        "", "; the carrier's calls are recognised by source address (identify) and land in cb-inbound",
        f"[{c.endpoint}](cb-site-endpoint,cb-trunk-{trunk})",
        *([f"aors = {c.endpoint}", *_aor(c.endpoint, c.contact)] if c.contact else []),
        "", f"[{c.endpoint}-identify]", "type = identify", f"endpoint = {c.endpoint}",
        *(f"match = {m}" for m in c.match),
    ]  # fmt: skip


def _agents(plan: Dialplan, site: Site) -> list[str]:
    a = site.agents
    if a.include is not None:
        return ["; the agents' endpoints are the site's own (they use the cb-agent template's options)",
                f"#include {a.include}"]  # fmt: skip
    lines = ["; agents' phones: the queues' PJSIP members",
             "[cb-agent](!,cb-site-endpoint)", f"context = {a.context}", "send_pai = yes",
             "trust_id_outbound = yes"]  # fmt: skip
    for ep in agent_endpoints(plan, site):
        agent = a.endpoints.get(ep)
        contact = agent.contact if agent and agent.contact else f"sip:{ep}@{a.default_host}"
        lines += ["", f"[{ep}](cb-agent)", f"aors = {ep}"]
        if agent and agent.callerid:
            lines.append(f"callerid = {agent.callerid}")
        lines += _aor(ep, contact)
    return lines


def render_site_contexts(plan: Dialplan, site: Site) -> str:
    """Contexts that depend on the site: the Local seats and the agents' own context."""
    out = ["; --- site contexts (from the site file) ---"]
    for ctx in local_contexts(plan):
        dial = site.local_seats[ctx]
        out += [f"[{ctx}]", f"; Local/<seat>@{ctx} queue members ring {dial}",
                "exten => _X.,1,NoOp(callbridge seat ${EXTEN})", f" same => n,Dial({dial},,tT)",
                " same => n,Hangup()", ""]  # fmt: skip
    if site.agents.include is None:
        out += [f"[{site.agents.context}]", "; agents place no calls of their own through callbridge",
                "exten => _X.,1,Hangup()", ""]  # fmt: skip
    return "\n".join(out)


def render_musiconhold(site: Site) -> str:
    return "\n".join([
        HEADER, "; #include musiconhold_callbridge.conf from musiconhold.conf",
        f"[{site.moh_class}]", "mode = files", f"directory = {site.prompts_dir}/moh", "sort = alpha",
    ]) + "\n"  # fmt: skip
