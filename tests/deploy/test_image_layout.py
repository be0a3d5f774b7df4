"""The Docker image starts as shipped: its files laid out as the Dockerfile puts them, its command run from its
empty working directory against the PBX simulator and a real mosquitto, until ``/readyz`` says ready.

No Docker daemon: :mod:`tests.deploy.dockerfile` reads the final stage (COPY, ENV, WORKDIR, CMD, …) and fails
on any instruction it does not model.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from callbridge.testing.mosquitto import Mosquitto, find_mosquitto
from callbridge.testing.ports import free_port
from tests.deploy.dockerfile import REPO, UnknownInstruction, final_stage, inside, map_paths

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(90)]


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_image_state_lives_in_its_volume_and_the_command_reads_the_copied_settings() -> None:
    image = final_stage()
    assert image.user != "root" and image.home == image.workdir, "the service user's home is the working dir"
    assert image.workdir in image.volumes and "/etc/callbridge" in image.volumes
    assert image.entrypoint == ["callbridge"] and image.cmd[0] == "run"
    config = image.cmd[image.cmd.index("--config") + 1]
    assert ("config/callbridge.yaml", config) in image.copies
    assert image.installs_package


def test_dockerfile_reader_refuses_what_it_does_not_model() -> None:
    with pytest.raises(UnknownInstruction, match="ADD"):
        final_stage("FROM a AS b\nFROM c\nADD x /y\n")
    with pytest.raises(UnknownInstruction, match="RUN"):
        final_stage("FROM c\nRUN mkdir /srv/dialplans\n")


def _wait_listening(proc: subprocess.Popen[str]) -> int:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "AMI listening on 127.0.0.1:" in line, line
    return int(line.rsplit(":", 1)[1])


def _get_json(port: int, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # /readyz answers 503 until the daemon is ready
        return exc.code, json.loads(exc.read())


def _wait_ready(port: int, proc: subprocess.Popen[bytes], deadline: float) -> dict[str, object]:
    last: object = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"callbridge run exited with {proc.returncode}"
        try:
            status, body = _get_json(port, "/readyz")
            if status == 200 and body.get("mqtt") is True:
                return body
            last = (status, body)
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"/readyz never ready with the broker connected: {last}")


@dataclass
class Run:
    """What one start of the image's command showed."""

    ready: dict[str, object]
    health: dict[str, object]
    healthcheck_rc: int
    returncode: int
    stderr: str
    state: set[str]
    etc_before: set[str]
    etc_after: set[str]


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    if find_mosquitto() is None:
        pytest.skip("mosquitto not installed (bash scripts/setup installs it)")
    tmp_path = tmp_path_factory.mktemp("image")
    image = final_stage()
    root = tmp_path / "root"
    image.lay_out(root)
    workdir = inside(root, image.workdir)
    assert not any(workdir.iterdir()), "the working directory starts empty"
    etc_before = files_under(inside(root, "/etc/callbridge"))

    ami_secret, mqtt_password = secrets.token_hex(12), secrets.token_hex(12)
    web_port = free_port()
    with Mosquitto(tmp_path / "broker", users={"callbridge": mqtt_password}) as broker:
        sim = subprocess.Popen(
            [sys.executable, "-m", "callbridge", "sim", "--config", str(REPO / "config" / "sim.yaml"), "--port", "0"],
            env={**os.environ, "CALLBRIDGE_SIM_SECRET": ami_secret}, stdout=subprocess.PIPE, text=True,
        )
        try:
            ami_port = _wait_listening(sim)
            # What `docker run -e …` would pass: where the PBX and the broker are, and the secrets.
            env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
            env.update({k: map_paths(root, [v])[0] for k, v in image.env.items()})
            env.update({
                "CALLBRIDGE_AMI__PORT": str(ami_port), "CALLBRIDGE_AMI_SECRET": ami_secret,
                "CALLBRIDGE_MQTT__PORT": str(broker.port), "CALLBRIDGE_MQTT__USERNAME": "callbridge",
                "CALLBRIDGE_MQTT_PASSWORD": mqtt_password, "CALLBRIDGE_WEB__PORT": str(web_port),
            })  # fmt: skip
            argv = [sys.executable, "-m", "callbridge", *map_paths(root, image.cmd)]
            run = subprocess.Popen(argv, cwd=workdir, env=env, stderr=subprocess.PIPE)
            try:
                ready = _wait_ready(web_port, run, time.monotonic() + 40)
                _, health = _get_json(web_port, "/healthz")
                check = image.healthcheck.replace(f":{image.expose[0]}/", f":{web_port}/")
                check_argv = shlex.split(check.replace("python ", f"{sys.executable} ", 1))
                healthcheck_rc = subprocess.run(check_argv, timeout=10, check=False).returncode
            finally:
                run.send_signal(signal.SIGTERM)
                try:
                    _, err = run.communicate(timeout=20)
                except subprocess.TimeoutExpired:
                    run.kill()
                    _, err = run.communicate()
        finally:
            sim.send_signal(signal.SIGTERM)
            sim.wait(10)
    return Run(ready, health, healthcheck_rc, run.returncode, err.decode(errors="replace"), files_under(workdir),
               etc_before, files_under(inside(root, "/etc/callbridge")))


def test_image_command_runs_from_its_empty_workdir_until_ready(image_run: Run) -> None:
    assert image_run.ready["ready"] is True and image_run.ready["ami"] is True, image_run.ready
    assert image_run.healthcheck_rc == 0, "the image's HEALTHCHECK command fails"
    assert image_run.returncode == 0, image_run.stderr[-3000:]  # SIGTERM = graceful stop
    # The state went to the volume (the working directory); nothing was written beside the settings.
    assert {"callbridge-records.sqlite3", "callbridge-outbox.sqlite3"} <= image_run.state, image_run.state
    assert image_run.etc_after == image_run.etc_before


def documented_example(path: str) -> dict[str, object]:
    """The JSON example given for *path* in the web server's table of docs/records.md."""
    text = (REPO / "docs" / "records.md").read_text(encoding="utf-8")
    row = re.search(rf"^\| `{re.escape(path)}` \|[^\n]*?`(\{{[^`]*\}})`", text, re.M)
    assert row, f"docs/records.md: the {path} row shows no JSON example"
    example: dict[str, object] = json.loads(row.group(1))
    return example


def shape(value: object) -> object:
    """The JSON kind of *value*, objects key by key (an example shows the kinds, not the values)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    return "number" if isinstance(value, int | float) else type(value).__name__


def test_documented_health_and_readiness_json_is_what_the_server_answers(image_run: Run) -> None:
    for path, body in (("/healthz", image_run.health), ("/readyz", image_run.ready)):
        example = documented_example(path)
        assert shape(example) == shape(body), f"{path}: docs/records.md shows {example}, the server answers {body}"
