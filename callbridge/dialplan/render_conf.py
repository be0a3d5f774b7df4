"""Render the non-dialplan Asterisk files: queues, pjsip trunk options, ConfBridge, features, manager.

No secret is ever written: manager.conf carries ``${CALLBRIDGE_AMI_SECRET}``, substituted at deploy time
(``envsubst '$CALLBRIDGE_AMI_SECRET' < manager.conf``).
"""

from __future__ import annotations

from callbridge.dialplan.plan import Dialplan
from callbridge.dialplan.render_asterisk import HEADER, render_extensions

#: AMI classes callbridge needs — nothing more (least privilege):
#: read: call/dial/bridge events (call), queue events (agent), UserEvent (user), DTMF (dtmf),
#: FullyBooted/Shutdown (system), VarSet (dialplan), list replies (reporting).
AMI_READ = "system,call,agent,user,dtmf,dialplan,reporting"
#: write: Redirect/Hangup/Setvar/Atxfer/Bridge/Confbridge* (call), Originate (originate),
#: Queue* (agent), UserEvent (user), CoreShowChannels/QueueStatus/ConfbridgeList (reporting).
AMI_WRITE = "call,originate,agent,user,reporting"


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"


def endpoint_of(dial: str) -> str | None:
    """PJSIP endpoint of a dial string: ``PJSIP/110@hotline-110`` → ``hotline-110``, ``PJSIP/carrier`` → ``carrier``."""
    tech, _, rest = dial.partition("/")
    if tech != "PJSIP":
        return None
    return rest.rpartition("@")[2] if "@" in rest else rest


def render_queues(plan: Dialplan) -> str:
    lines = [HEADER, "[general]", "persistentmembers = no", "shared_lastcall = no", "log_membername_as_agent = yes"]
    for q in plan.queues.values():
        owner = plan.hotline_of_queue(q.name)
        lines += [
            "",
            f"; {owner.number + ' ' + owner.name if owner else 'queue'}",
            f"[{q.name}]",
            f"strategy = {q.strategy}",
            f"timeout = {q.timeout}",
            "retry = 2",
            "wrapuptime = 0",
            "maxlen = 0",
            "joinempty = yes",  # callers wait even when no agent is logged in: never refused
            "leavewhenempty = no",
            "ringinuse = no",
            "autofill = yes",  # several callers ring free agents at once; priorities still order them
            "announce-frequency = 0",
            "periodic-announce-frequency = 0",
            "musicclass = default",
            "setinterfacevar = yes",
            "setqueuevar = yes",
            "setqueueentryvar = yes",
        ]
        lines += [f"member => {m}" for m in q.members]
    return "\n".join(lines) + "\n"


def render_pjsip(plan: Dialplan) -> str:
    inbound = {t for h in plan.hotlines.values() for t in h.inbound_trunks}
    lines = [
        HEADER,
        "; Include from pjsip.conf (#include pjsip_callbridge.conf). Each endpoint inherits the site template",
        "; cb-site-endpoint (transport, codecs — edit it there) and its trunk's number-carrying template.",
        "; Contacts (the aor sections) stay in the site's own pjsip.conf.",
        "",
        "[cb-site-endpoint](!)",
        "type = endpoint",
        "transport = transport-udp",
        "disallow = all",
        "allow = alaw,ulaw",
        "direct_media = no",
        "dtmf_mode = rfc4733",
    ]
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
            "send_connected_line = yes",
        ]
        if t.max_channels is not None:
            lines.append(f"; max_channels = {t.max_channels} (enforced by callbridge; set device_state_busy_at too)")
            lines.append(f"device_state_busy_at = {t.max_channels}")
        seen: set[str] = set()
        for line in t.lines:
            ep = endpoint_of(line)
            if ep is None or ep in seen:
                continue
            seen.add(ep)
            lines += [f"[{ep}](cb-site-endpoint,cb-trunk-{t.name})", f"aors = {ep}"]
    return "\n".join(lines) + "\n"


def render_confbridge(plan: Dialplan) -> str:
    lines = [
        HEADER,
        "[general]",
        "",
        "; three-way hand-over rooms (cb-conf)",
        "[cb_bridge]",
        "type = bridge",
        "max_members = 6",
        "record_conference = no",
        "",
        "[cb_user]",
        "type = user",
        "quiet = yes",  # no join/leave beeps: the caller must not hear the hand-over machinery
        "announce_user_count = no",
        "announce_only_user = no",
        "music_on_hold_when_empty = yes",
        "dsp_drop_silence = no",
        "talk_detection_events = no",
    ]
    return "\n".join(lines) + "\n"


def render_features(plan: Dialplan) -> str:
    f = plan.features
    digit_ms = int(plan.engine.dtmf_interdigit_timeout * 1000)
    lines = [
        HEADER,
        "[general]",
        f"featuredigittimeout = {digit_ms}",
        "transferdigittimeout = 3",
        "atxfernoanswertimeout = 15",
        "atxferdropcall = no",
        "transferdialattempts = 1",
        "; only active during an attended-transfer consultation (AMI CancelAtxfer sends it)",
        f"atxferabort = {f.atxferabort}",
        "",
        "[featuremap]",
        f"blindxfer = {f.blindxfer}",
        f"disconnect = {f.disconnect}",
        f"atxfer = {f.atxfer}",
    ]
    return "\n".join(lines) + "\n"


def render_manager(plan: Dialplan, username: str = "callbridge", permit: str = "127.0.0.1/255.255.255.255") -> str:
    lines = [
        HEADER,
        "; The secret is substituted at deploy time, never stored here:",
        ";   envsubst '$CALLBRIDGE_AMI_SECRET' < manager.conf > /etc/asterisk/manager.conf",
        "[general]",
        "enabled = yes",
        "port = 5038",
        "bindaddr = 127.0.0.1",
        "displayconnects = yes",
        "timestampevents = no",
        "webenabled = no",
        "",
        f"[{username}]",
        "secret = ${CALLBRIDGE_AMI_SECRET}",
        "deny = 0.0.0.0/0.0.0.0",
        f"permit = {permit}",
        f"read = {AMI_READ}",
        f"write = {AMI_WRITE}",
        "writetimeout = 5000",
        "eventfilter = !Event: RTCP*",
    ]
    return "\n".join(lines) + "\n"


def render_all(plan: Dialplan, ami_username: str = "callbridge") -> dict[str, str]:
    """File name → text of every rendered Asterisk file."""
    return {
        "extensions.conf": render_extensions(plan),
        "queues.conf": render_queues(plan),
        "pjsip_callbridge.conf": render_pjsip(plan),
        "confbridge.conf": render_confbridge(plan),
        "features.conf": render_features(plan),
        "manager.conf": render_manager(plan, ami_username),
    }
