"""Two centres, two PBXs (issue 21): a hand-over that crosses from one centre's PBX to another's.

* :mod:`.header` — the Asterisk side: the ``X-Callbridge-Handover`` SIP header added on the outbound leg
  over an inter-centre trunk (a pre-dial handler) and read on the inbound leg (a channel variable);
* :mod:`.events` — the domain events of the receiving side (``handover.announced``, ``.bound``, ``.failed``,
  ``.answered``, ``.abandoned``);
* :mod:`.binder` — the pure binding of an inbound call to the hand-over data the other centre published
  (by header, else by caller number and time window);
* :mod:`.link` — the pure part of the link between the daemons: which peer topics, which peer events are
  taken in, envelopes back to domain events (the MQTT client is :mod:`callbridge.bus.peer`);
* :mod:`.service` — the link inside one daemon (binder, peer subscriber, where the peer's events go), wired
  by the composition root when ``centres.peer_site`` is set;
* :mod:`.report` — ``callbridge report --centres``: the pair's hand-overs with both outcomes.
"""
