"""The systemd unit passes ``systemd-analyze verify``, and the README's install steps create what it assumes."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from callbridge.settings import load_settings
from tests.deploy.dockerfile import REPO

UNIT = REPO / "config" / "systemd" / "callbridge.service"


def unit_values(key: str) -> list[str]:
    return re.findall(rf"^{key}=(.*)$", UNIT.read_text(encoding="utf-8"), re.M)


def install_steps() -> str:
    """The shell block of README's "Install as a service" section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Install as a service.*?(?=^## )", text, re.S | re.M)
    assert section, "README.md needs an '## Install as a service' section (the steps the unit assumes)"
    block = re.search(r"```bash\n(.*?)```", section.group(0), re.S)
    assert block, "the install section gives its steps in a ```bash block"
    return block.group(1)


def installed_binary(path: str) -> str:
    """This environment's console script standing in for the unit's ``/opt/callbridge/venv/bin/callbridge``."""
    found = Path(sys.executable).parent / Path(path).name
    return str(found) if found.exists() else shutil.which(Path(path).name) or sys.executable


def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        reason = "systemd-analyze not installed (apt-get install systemd): the unit is not verified here"
        print(reason)
        pytest.skip(reason)
    exec_start = unit_values("ExecStart")[0].split()[0]
    # verify insists that ExecStart's binary exists: point it at this environment's callbridge, nothing else changes
    text = UNIT.read_text(encoding="utf-8").replace(exec_start, installed_binary(exec_start))
    unit = tmp_path / UNIT.name
    unit.write_text(text, encoding="utf-8")
    res = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True,
                         timeout=60, check=False)
    if res.returncode != 0 and "Failed to initialize manager" in res.stderr + res.stdout:
        reason = f"systemd-analyze cannot run on this machine: {res.stderr.strip()[:300]}"
        print(reason)
        pytest.skip(reason)
    # warnings (unknown key, bad value "…, ignoring") keep the exit code 0: every line about the unit counts
    complaints = [line for line in (res.stdout + res.stderr).splitlines() if UNIT.name in line]
    assert res.returncode == 0 and not complaints, res.stdout + res.stderr


def test_readme_install_steps_create_what_the_unit_assumes() -> None:
    steps = install_steps()
    words = shlex.split(steps, comments=True)
    user = unit_values("User")[0]
    assert re.search(rf"useradd --system .*\b{user}\b", steps), f"the steps create the system user {user}"
    exec_start = shlex.split(unit_values("ExecStart")[0])
    venv = str(Path(exec_start[0]).parents[1])
    assert f"python3 -m venv {venv}" in steps and f"{venv}/bin/pip install" in steps
    config = exec_start[exec_start.index("--config") + 1]
    assert config in words, f"the steps install the settings at {config}"
    for credential in unit_values("LoadCredential"):
        source = credential.split(":", 1)[1]
        assert source in steps, f"the steps write the secret file {source} (LoadCredential)"
    assert "/etc/systemd/system/callbridge.service" in words
    state = "/var/lib/" + unit_values("StateDirectory")[0]
    assert unit_values("WorkingDirectory") == [state] and unit_values("ReadWritePaths") == [state]
    # the dialplans go where the shipped settings look for them once installed at `config`
    plan = load_settings(REPO / "config" / "callbridge.yaml", env={}).dialplan.path
    installed_plan = Path(config).parent / plan.relative_to(REPO / "config")
    assert str(installed_plan) in words, f"the steps copy the dialplans to {installed_plan}"
    doc = unit_values("Documentation")[0].removeprefix("file://")
    assert doc in words, f"the unit's Documentation= {doc} is installed by the steps"
