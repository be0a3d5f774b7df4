"""Packaging: README's two commands, CI entry, Dockerfile, config kit."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- setup-commands -->\s*```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert block, "README.md must have the two set-up commands in a fenced block after <!-- setup-commands -->"
    lines = [line.split(" #", 1)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    demo, tests = readme_commands()
    assert "demo" in demo
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci, f"CI must run the README test command {tests!r}"


def test_pyproject_pins_the_design_card_packages() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    deps = " ".join(meta["project"]["dependencies"])
    for name in ("panoramisk", "aiomqtt>=2.5,<3", "pydantic", "structlog", "uvloop", "ruamel.yaml"):
        assert name in deps
    assert meta["project"]["scripts"]["callbridge"] == "callbridge.cli:main"


def test_dockerfile_is_multistage_non_root_with_healthcheck() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert "VOLUME" in text
    assert not re.search(r"(?i)(secret|password)\s*[:=]\s*\S+", text.replace("SECRET_FILE", ""))


def test_no_secret_in_repo_config_files() -> None:
    for path in (REPO / "config").rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            for line in text.splitlines():
                m = re.match(r"\s*(secret|password)\s*[:=]\s*(\S+)", line, re.I)
                assert not m or m.group(2).startswith(("${", "<", "#", "null", "~", '""')), f"{path}: {line}"


def test_systemd_unit_restarts_and_is_hardened() -> None:
    text = (REPO / "config" / "systemd" / "callbridge.service").read_text(encoding="utf-8")
    for key in ("Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict", "ExecReload=/bin/kill -HUP"):
        assert key in text


@pytest.mark.slow
def test_docker_image_builds_and_answers_help() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on this machine: image build not tested here")
    info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0:
        pytest.skip("docker client present but no Docker engine running: image build not tested here")
    build = subprocess.run([docker, "build", "-t", "callbridge:test", str(REPO)], capture_output=True, text=True,
                           timeout=900)
    assert build.returncode == 0, build.stderr[-2000:]
    run = subprocess.run([docker, "run", "--rm", "callbridge:test", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and "render-asterisk" in run.stdout
