"""Records, KPIs and live state (see docs/records.md).

``records`` (RecordStore over ``backend`` SQLite/PostgreSQL, ``schema`` migrations, ``projection``
event → SQL) · ``writer`` (RecordWriter: bounded, non-blocking) · ``kpi`` and ``report`` (pure KPIs and
the periodic brief) · ``live`` (LiveBoard for the wallboard and /metrics) · ``sink`` (RecordsSink: the
one event sink wiring them) · ``events`` (kpi.answer_rate_low, records.backlog) · ``periods``.
"""
