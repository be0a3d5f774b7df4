"""The crash proof of benchmark 2: ``kill -9`` of the daemon in the middle of a run loses nothing committed.

The daemon (``App``, as in :mod:`bench.e2e_mqtt`) runs in its own process (``python -m bench.e2e_kill
child AMI_PORT MQTT_PORT OUTBOX``). Once the C subscriber has seen ``kill_at`` messages it is killed with
SIGKILL — no stop, no final commit. The outbox file is then read as the crash left it: the rows not
acknowledged yet and the highest envelope ``seq`` committed. A new daemon process starts on the same
outbox (reading the AMI stream again from the start, as after a reconnect) and runs to the end.

Lost is then, counted from what ``mosquitto_sub`` received (topic and payload of every message):

* a row left in the outbox at the kill that never arrived (topic and envelope id), or
* an envelope ``seq`` up to the highest one received that never arrived: seqs are given out one per
  domain event, persisted in the same transaction as the rows, so a committed event leaves no gap.

What was not committed at the kill (the events of the loop iteration in progress) is not the outbox's
to keep; after the restart the daemon rebuilds its state from the PBX. Duplicates (the rows in flight
at the kill, published again after the restart with the same envelope id) are counted, not lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.amistream import END_CALL_ID
from bench.common import REPO, python_subprocess
from bench.csub import CSubCounter

SITE = "bench"
FILTERS = [f"callbridge/{SITE}/events/#", f"callbridge/{SITE}/calls/#"]


async def child(ami_port: int, mqtt_port: int, outbox: Path) -> None:
    from callbridge.app import App
    from callbridge.domain import DomainEvent
    from callbridge.settings import Settings

    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def sink(events: Any) -> None:
        for event in events:
            assert isinstance(event, DomainEvent)
            if event.call_id == END_CALL_ID and event.TYPE == "call.ended" and not done.done():
                done.set_result(None)

    settings = Settings.model_validate({
        "site_id": SITE,
        "ami": {"host": "127.0.0.1", "port": ami_port, "auth": "plain", "ping_interval": 3600},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "site": SITE, "outbox_path": str(outbox),
                 "outbox_max_rows": 1_000_000},
        "dialplan": {"path": str(REPO / "dialplans")},
    })
    app = App(settings, ami_secret="bench", event_sinks=[sink], enable_bus=True)
    await app.start()
    print("started", flush=True)
    try:
        await asyncio.wait_for(done, 900)
        assert app.publisher is not None
        await asyncio.wait_for(app.publisher.wait_drained(), 900)
    finally:
        await app.stop()
    print("done", flush=True)


def _spawn(ami_port: int, mqtt_port: int, outbox: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "bench.e2e_kill", "child", str(ami_port), str(mqtt_port),
                             str(outbox)], cwd=REPO, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "started":
        proc.kill()
        raise RuntimeError("bench daemon did not start")
    return proc


def left_in_outbox(path: Path) -> tuple[set[tuple[str, str]], int]:
    """(topic, envelope id) of every row the crash left, and the highest envelope seq committed."""
    db = sqlite3.connect(path)
    try:
        rows = {(topic, json.loads(bytes(payload))["id"]) for topic, payload in
                db.execute("SELECT topic, payload FROM outbox WHERE topic NOT LIKE '%/state/%'")}  # fmt: skip
        row = db.execute("SELECT value FROM meta WHERE key='event_seq'").fetchone()
    finally:
        db.close()
    return rows, int(row[0]) if row else 0


def kill9_proof(stream: Path, tmp: Path, mqtt_port: int, *, kill_at: int = 20_000, name: str = "kill9"
                ) -> dict[str, Any]:  # fmt: skip
    """Run, SIGKILL after ``kill_at`` messages arrived, restart on the same outbox, count what is lost."""
    work = tmp / name
    work.mkdir()
    outbox = work / "outbox.sqlite3"
    counter = CSubCounter(mqtt_port, FILTERS, work, idle=3.0, payloads=True)
    try:
        with python_subprocess("bench.ami_server", str(stream)) as (_, port_line):
            first = _spawn(int(port_line), mqtt_port, outbox)
            while counter.lines() < kill_at and first.poll() is None:
                time.sleep(0.02)
            if first.poll() is not None:
                raise RuntimeError(f"the bench daemon ended before {kill_at} messages: no kill -9 to prove")
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
            at_kill = counter.lines()
            left, committed = left_in_outbox(outbox)
            second = _spawn(int(port_line), mqtt_port, outbox)
            assert second.stdout is not None
            finished = second.stdout.readline().strip() == "done"
            second.wait(timeout=60)
        counter.wait(10**9)  # until nothing arrives for ``idle`` seconds
        records = counter.records()
    finally:
        counter.kill()
    received = {(topic, env["id"]) for topic, env in records}
    seqs = {env["seq"] for _, env in records}
    missing_rows = left - received
    missing_seqs = set(range(1, max(seqs, default=0) + 1)) - seqs
    return {
        "received_before_kill": at_kill, "left_in_outbox_at_kill": len(left), "committed_seq_at_kill": committed,
        "restart_finished": finished, "received": len(records), "distinct": len(received),
        "duplicates": len(records) - len(received), "highest_seq": max(seqs, default=0),
        "lost": len(missing_rows) + len(missing_seqs) + (0 if committed <= max(seqs, default=0) else 1),
    }


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "child":
        from bench.common import production_logging, run_async

        production_logging()
        run_async(child(int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])))
    else:
        sys.exit("usage: python -m bench.e2e_kill child AMI_PORT MQTT_PORT OUTBOX")
