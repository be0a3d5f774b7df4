"""Two centres end to end (issue 21): the 12345 side learns from the link whether a 110 agent really answered
the hand-over (the 110 PBX answers the trunk before it queues the caller: the local transfer.answered is not
that), or the caller gave up in the 110 queue — two daemons, two simulators, two bridged mosquitto brokers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.e2e.test_two_centres import report, transfer_to_110, until_rows
from tests.e2e.two_centres_lab import open_two_centres

pytestmark = pytest.mark.mosquitto


async def test_the_12345_records_and_report_say_which_110_agent_answered_and_after_how_long(tmp_path: Path) -> None:
    async with open_two_centres(tmp_path) as pair:
        a, b = pair.c12345.lab, pair.c110.lab
        b.sim.set_agent("agent2101", "answer", answer_after=1.0)  # the 110 agent takes a moment
        xfer, citizen = await transfer_to_110(pair, caller="13700000101")
        await a.event("transfer.answered", timeout=10, transfer_id=xfer)  # the 110 PBX picked up: local, as before
        answered = await b.event("handover.answered", timeout=15, transfer_id=xfer)
        d = answered.data()
        assert (d["answered_agent"], d["ticket"], d["agent"], d["match"]) == ("agent2101", "GD-2026-0001", "agent1001",
                                                                          "header")  # fmt: skip
        assert 0.5 <= d["wait_s"] < 10.0  # the 110 caller's wait, from its arrival at the 110 PBX
        [row] = await until_rows(pair.c12345, "SELECT data FROM events WHERE type = 'handover.answered'"
                                              " AND transfer_id = ?", xfer)  # fmt: skip
        assert '"answered_agent":"agent2101"' in row["data"].replace(" ", "")
        a.sim.caller_hangup(citizen)
        await a.event("transfer.completed", timeout=10, transfer_id=xfer)
        assert b.of_type("handover.abandoned") == []
        for centre in (pair.c12345, pair.c110):
            await centre.records_of("SELECT 1")
            [line] = [r for r in csv.DictReader(io.StringIO(report(centre, "csv"))) if r["transfer_id"] == xfer]
            assert (line["reached"], line["answered_agent"]) == ("answered", "agent2101")
            assert float(line["wait_s"]) == d["wait_s"]
            assert line["at_receiver"].startswith("answered at 110 by agent2101 after ")
        assert "answered at 110 by agent2101 after" in report(pair.c12345, "markdown")


async def test_a_caller_who_gives_up_in_the_110_queue_shows_as_abandoned_at_12345(tmp_path: Path) -> None:
    async with open_two_centres(tmp_path) as pair:
        a, b = pair.c12345.lab, pair.c110.lab
        b.sim.set_agent("agent2101", "noanswer")  # nobody at 110 picks up
        xfer, citizen = await transfer_to_110(pair, caller="13700000111")
        await a.event("transfer.answered", timeout=10, transfer_id=xfer)  # yet the 110 PBX answered the trunk
        await b.event("handover.bound", timeout=15, transfer_id=xfer)
        a.sim.caller_hangup(citizen)  # the citizen gives up while waiting in the 110 queue
        abandoned = await b.event("handover.abandoned", timeout=15, transfer_id=xfer)
        assert abandoned.data()["reason"] == "abandoned_in_queue" and abandoned.data()["wait_s"] > 0
        assert b.of_type("handover.answered") == []
        await until_rows(pair.c12345, "SELECT 1 FROM events WHERE type = 'handover.abandoned'"
                                      " AND transfer_id = ?", xfer)  # fmt: skip
        [line] = [r for r in csv.DictReader(io.StringIO(report(pair.c12345, "csv"))) if r["transfer_id"] == xfer]
        assert (line["received"], line["reached"], line["answered_agent"]) == ("bound", "abandoned", "")
        assert line["at_receiver"].startswith("abandoned at 110 after ") and "abandoned_in_queue" in line["at_receiver"]
