"""Render the whole Asterisk side: files an existing Asterisk ``#include``s, and the manager user.

Every file is meant to be included from the site's own configuration (``#include
extensions_callbridge.conf`` at the end of extensions.conf, and so on; config/asterisk/README.md lists
the lines), never to replace it; the manager user goes to ``manager.d/callbridge.conf`` (the stock
manager.conf includes ``manager.d/*.conf``). No secret is ever written: the user's ``secret`` line holds a
placeholder that ``envsubst`` fills at deploy time, and no comment contains the placeholder (else envsubst
would copy the secret into the comment too).
"""

from __future__ import annotations

from callbridge.dialplan.plan import Dialplan
from callbridge.dialplan.render_asterisk import HEADER, render_extensions
from callbridge.dialplan.render_site import check_site, render_musiconhold, render_pjsip, render_site_contexts
from callbridge.dialplan.site import Site

#: The placeholder of the AMI secret in manager.d/callbridge.conf (filled by envsubst at deploy time).
SECRET_VAR = "CALLBRIDGE_AMI_SECRET"  # noqa: S105 (the name of a variable, not a secret)

#: AMI classes callbridge needs — nothing more (least privilege):
#: read: call/dial/bridge events (call), queue events (agent), UserEvent (user), DTMF (dtmf),
#: FullyBooted/Shutdown (system), VarSet (dialplan), list replies (reporting).
AMI_READ = "system,call,agent,user,dtmf,dialplan,reporting"
#: write: Redirect/Hangup/Setvar/Getvar/Atxfer/Bridge/Confbridge* (call), Originate (originate),
#: Queue* (agent), UserEvent (user), CoreShowChannels/QueueStatus/ConfbridgeList (reporting).
AMI_WRITE = "call,originate,agent,user,reporting"


def render_queues(plan: Dialplan, moh: str = "default") -> str:
    lines = [HEADER, "; #include queues_callbridge.conf from queues.conf (the site's [general] stays)"]
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
            f"musicclass = {moh}",
            "setinterfacevar = yes",
            "setqueuevar = yes",
            "setqueueentryvar = yes",
        ]
        lines += [f"member => {m}" for m in q.members]
    return "\n".join(lines) + "\n"


def render_confbridge(plan: Dialplan) -> str:
    lines = [
        HEADER,
        "; #include confbridge_callbridge.conf from confbridge.conf",
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
        "; #include features_callbridge.conf at the end of features.conf: these options are added to its",
        "; [general] and [featuremap] sections ((+)), which must exist (they do in the stock file)",
        "[general](+)",
        f"featuredigittimeout = {digit_ms}",
        "transferdigittimeout = 3",
        "atxfernoanswertimeout = 15",
        "atxferdropcall = no",
        "transferdialattempts = 1",
        "; only active during an attended-transfer consultation (AMI CancelAtxfer sends it)",
        f"atxferabort = {f.atxferabort}",
        "",
        "[featuremap](+)",
        f"blindxfer = {f.blindxfer}",
        f"disconnect = {f.disconnect}",
        f"atxfer = {f.atxfer}",
    ]
    return "\n".join(lines) + "\n"


def render_manager(plan: Dialplan, username: str = "callbridge", permit: str = "127.0.0.1/255.255.255.255") -> str:
    """manager.d/callbridge.conf: the least-privilege AMI user only (the site's manager.conf keeps
    [general]: port, bind address)."""
    lines = [
        HEADER,
        "; The secret line is filled in at deploy time by envsubst with the one variable of the secret",
        "; (see config/asterisk/README.md); it is never stored here.",
        f"[{username}]",
        f"secret = ${{{SECRET_VAR}}}",
        "deny = 0.0.0.0/0.0.0.0",
        f"permit = {permit}",
        f"read = {AMI_READ}",
        f"write = {AMI_WRITE}",
        "writetimeout = 5000",
        "eventfilter = !Event: RTCP*",
    ]
    return "\n".join(lines) + "\n"


def render_all(
    plan: Dialplan, site: Site, ami_username: str = "callbridge", site_file: str = "<site>"
) -> dict[str, str]:
    """File name (relative to the output directory) → text of every rendered Asterisk file.

    Raises ``ConfigError`` when the site file does not place an endpoint or context the dialplan uses."""
    check_site(plan, site, site_file)
    prompts = site.prompts_dir.rstrip("/") + "/"
    extensions = render_extensions(plan, include=True, prompts=prompts, moh=site.moh_class,
                                   site_contexts=render_site_contexts(plan, site))  # fmt: skip
    return {
        "extensions_callbridge.conf": extensions,
        "queues_callbridge.conf": render_queues(plan, site.moh_class),
        "pjsip_callbridge.conf": render_pjsip(plan, site),
        "confbridge_callbridge.conf": render_confbridge(plan),
        "features_callbridge.conf": render_features(plan),
        "musiconhold_callbridge.conf": render_musiconhold(site),
        "manager.d/callbridge.conf": render_manager(plan, ami_username),
    }
