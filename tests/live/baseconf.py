"""The "existing" Asterisk configuration of a live lab, as a stock install has it: modules, logger, and
the stock files (manager, extensions, pjsip, queues, confbridge, features, musiconhold) ending in the
``#include`` lines for the files ``callbridge render-asterisk`` writes. ``@AMI_PORT@``, ``@RTP_START@`` and
``@RTP_END@`` are filled in per instance.
"""

from __future__ import annotations

BASE_FILES: dict[str, str] = {
    "modules.conf": """[modules]
autoload = yes
noload => chan_iax2.so
noload => chan_mgcp.so
noload => chan_skinny.so
noload => chan_unistim.so
noload => pbx_dundi.so
noload => res_phoneprov.so
noload => res_pjsip_phoneprov_provider.so
noload => res_hep.so
noload => res_hep_pjsip.so
noload => res_hep_rtcp.so
noload => res_xmpp.so
noload => chan_motif.so
noload => res_snmp.so
noload => res_config_ldap.so
noload => res_config_pgsql.so
noload => res_config_mysql.so
noload => res_config_sqlite3.so
noload => cdr_pgsql.so
noload => cel_pgsql.so
noload => cdr_radius.so
noload => cel_radius.so
noload => cdr_tds.so
noload => cel_tds.so
noload => res_calendar.so
noload => res_calendar_caldav.so
noload => res_calendar_ews.so
noload => res_calendar_exchange.so
noload => res_calendar_icalendar.so
noload => app_voicemail.so
noload => res_stir_shaken.so
noload => res_pjsip_stir_shaken.so
noload => res_prometheus.so
noload => res_statsd.so
noload => res_smdi.so
noload => res_aeap.so
noload => res_speech_aeap.so
noload => res_pjsip_config_wizard.so
noload => res_pjsip_outbound_publish.so
noload => res_pjsip_publish_asterisk.so
noload => chan_audiosocket.so
noload => res_audiosocket.so
noload => chan_websocket.so
noload => app_audiosocket.so
noload => res_pjsip_exten_state.so
noload => res_pjsip_notify.so
noload => res_resolver_unbound.so
noload => cdr_csv.so
noload => cdr_custom.so
noload => cdr_manager.so
noload => cdr_sqlite3_custom.so
noload => cel_custom.so
noload => cel_manager.so
noload => cel_sqlite3_custom.so
noload => res_http_websocket.so
noload => res_ari.so
noload => res_pjsip_transport_websocket.so
""",
    "logger.conf": """[general]
dateformat = %F %T.%3q
[logfiles]
messages.log => notice,warning,error
full.log => notice,warning,error,verbose,dtmf
""",
    "manager.conf": """[general]
enabled = yes
port = @AMI_PORT@
bindaddr = 127.0.0.1
displayconnects = yes
webenabled = no

#include "manager.d/*.conf"
""",
    "extensions.conf": """[general]
static = yes
writeprotect = yes
clearglobalvars = no

[globals]

[default]
exten => s,1,Hangup()

#include extensions_callbridge.conf
""",
    "pjsip.conf": """[global]
type = global
user_agent = Asterisk-Live-22
endpoint_identifier_order = ip,username,anonymous

[system]
type = system
; SIP timer B (no answer at all from a trunk: unreachable) is 64 x T1: 6.4 s rather than 32 s
timer_t1 = 100

#include pjsip_callbridge.conf
""",
    "queues.conf": """[general]
persistentmembers = no
shared_lastcall = no
log_membername_as_agent = yes

#include queues_callbridge.conf
""",
    "confbridge.conf": """[general]

#include confbridge_callbridge.conf
""",
    "features.conf": """[general]

[featuremap]

[applicationmap]

#include features_callbridge.conf
""",
    "musiconhold.conf": """[general]

[default]
mode = files
directory = moh

#include musiconhold_callbridge.conf
""",
    "indications.conf": """[general]
country = cn

[cn]
description = China
ringcadence = 1000,4000
dial = 450
busy = 450/350,0/350
ring = 450/1000,0/4000
congestion = 450/700,0/700
callwaiting = 450/400,0/4000
dialrecall = 450
record = 950/400,0/10000
info = 450/100,0/100,450/100,0/100,450/100,0/100,450/400,0/400
stutter = 450+425
""",
    "rtp.conf": """[general]
rtpstart = @RTP_START@
rtpend = @RTP_END@
""",
    "res_parking.conf": "[general]\n",
    "cdr.conf": "[general]\nenable = no\n",
    "cel.conf": "[general]\nenable = no\n",
    "http.conf": "[general]\nenabled = no\n",
    "ari.conf": "[general]\nenabled = no\n",
    "acl.conf": "",
    "ccss.conf": "",
    "udptl.conf": "[general]\n",
    "stasis.conf": "",
    "geolocation.conf": "",
    "pjproject.conf": "",
}
