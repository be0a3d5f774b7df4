"""Prometheus metrics of the live board (and the records writer) on a dedicated registry.

A custom collector reads the board at scrape time, so nothing is double-counted and the global
``prometheus_client`` registry (which other code or tests may use) is left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callbridge.store.live import LiveBoard
from callbridge.store.writer import RecordWriter


class BoardCollector(Collector):
    def __init__(self, board: LiveBoard, writer: RecordWriter | None, clock: Callable[[], float]) -> None:
        self.board = board
        self.writer = writer
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        b = self.board
        snap = b.snapshot(self.clock())
        for name, doc, series in (
            ("callbridge_calls_offered", "Calls offered to a hotline (process lifetime).", b.offered_total),
            ("callbridge_calls_answered", "Calls answered by a person.", b.answered_total),
            ("callbridge_calls_abandoned", "Calls that ended or left the queue unanswered.", b.abandoned_total),
            ("callbridge_nuisance_flags", "Nuisance-caller flags raised.", b.nuisance_total),
        ):
            counter = CounterMetricFamily(name, doc, labels=["hotline"])
            for hotline, value in sorted(series.items()):
                counter.add_metric([hotline], value)
            yield counter
        overflow = CounterMetricFamily("callbridge_overflow_seconds", "Seconds of overflow to remote seats.",
                                       labels=["hotline"])  # fmt: skip
        for hotline, secs in sorted(b.overflow_seconds_total.items()):
            overflow.add_metric([hotline], secs)
        yield overflow
        transfers = CounterMetricFamily("callbridge_transfers", "Transfers between hotlines by outcome.",
                                        labels=["from_hotline", "to_hotline", "outcome"])  # fmt: skip
        for (src, dst, outcome), n in sorted(b.transfers_total.items()):
            transfers.add_metric([src, dst, outcome], n)
        yield transfers
        checks = CounterMetricFamily("callbridge_transfer_number_checks", "Number-carrying checks on transfers.",
                                     labels=["from_hotline", "to_hotline", "result"])  # fmt: skip
        for (src, dst, result), n in sorted(b.number_checks_total.items()):
            checks.add_metric([src, dst, result], n)
        yield checks
        gauges = {
            "waiting": ("callbridge_calls_waiting", "Calls waiting in the hotline's queues now."),
            "longest_wait_s": ("callbridge_longest_wait_seconds", "Longest current wait."),
            "agents_free": ("callbridge_agents_free", "Agents free to take a call."),
            "offered_today": ("callbridge_calls_offered_today", "Calls offered to the hotline today."),
            "answered_today": ("callbridge_calls_answered_today", "Of today's offers, answered by a person."),
            "abandoned_today": ("callbridge_calls_abandoned_today", "Of today's offers, ended unanswered."),
            "answer_rate_today": ("callbridge_answer_rate_today", "Answer rate today, answered/(answered+abandoned)."),
            "target": ("callbridge_answer_rate_target", "Answer-rate target of the hotline (0..1)."),
            "wait_avg_s": ("callbridge_wait_seconds_avg_today", "Average wait today."),
            "wait_p90_s": ("callbridge_wait_seconds_p90_today", "90th-percentile wait today."),
            "overflow_active": ("callbridge_overflow_active", "1 while overflow to remote seats is active."),
        }
        families = {k: GaugeMetricFamily(n, d, labels=["hotline"]) for k, (n, d) in gauges.items()}
        for tile in snap["hotlines"]:
            for key, family in families.items():
                value = tile[key]
                if value is not None:
                    family.add_metric([tile["hotline"]], float(value))
        yield from families.values()
        active = GaugeMetricFamily("callbridge_transfers_active", "Transfers in progress between hotlines.",
                                   labels=["from_hotline", "to_hotline"])  # fmt: skip
        for flow in snap["flows"]:
            active.add_metric([flow["from"], flow["to"]], flow["active"])
        yield active
        if self.writer is not None:
            w = self.writer
            yield GaugeMetricFamily("callbridge_records_queue_depth", "Events waiting to be recorded.", value=w.depth)
            yield GaugeMetricFamily("callbridge_records_queue_bound", "Bound of the records queue.", value=w.bound)
            yield CounterMetricFamily("callbridge_records_written", "Events recorded.", value=w.written)
            yield CounterMetricFamily("callbridge_records_dropped", "Events dropped (queue full).", value=w.dropped)
            yield CounterMetricFamily("callbridge_records_failed", "Events the database refused.", value=w.failed)


def build_registry(
    board: LiveBoard, writer: RecordWriter | None, clock: Callable[[], float]
) -> CollectorRegistry:
    """A fresh registry holding only callbridge's board metrics, read at the time ``clock`` gives (the
    server's: "today" on a scrape is the same day as on the wallboard and ``/api/kpi``)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(BoardCollector(board, writer, clock))
    return registry
