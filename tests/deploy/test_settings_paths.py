"""Relative paths written in a settings file mean paths beside that file, whatever the working directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from callbridge.settings import load_settings


def test_relative_paths_in_the_file_resolve_beside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    etc = tmp_path / "etc" / "callbridge"
    (etc / "secrets").mkdir(parents=True)
    (etc / "secrets" / "ami").write_text("beside-the-settings\n", encoding="utf-8")
    settings_file = etc / "callbridge.yaml"
    settings_file.write_text(
        "dialplan: {path: dialplans}\n"
        "ami: {secret_file: secrets/ami}\n"
        "store: {path: ../../var/records.sqlite3}\n"
        "mqtt: {outbox_path: /abs/outbox.sqlite3}\n",
        encoding="utf-8",
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    relative_to_cwd = Path(os.path.relpath(settings_file, elsewhere))  # ../etc/callbridge/callbridge.yaml
    s = load_settings(relative_to_cwd, env={})
    assert s.dialplan.path == etc / "dialplans"
    assert s.ami.secret_value() == "beside-the-settings"  # read from etc/callbridge/secrets/ami
    assert s.store.path == etc / "../../var/records.sqlite3"
    assert s.mqtt.outbox_path == Path("/abs/outbox.sqlite3")


def test_env_overrides_and_defaults_stay_relative_to_the_working_directory(tmp_path: Path) -> None:
    settings_file = tmp_path / "callbridge.yaml"
    settings_file.write_text("site_id: a\n", encoding="utf-8")
    s = load_settings(settings_file, env={"CALLBRIDGE_DIALPLAN__PATH": "plans"})
    assert s.dialplan.path == Path("plans")  # typed by the operator like a command-line path
    assert s.store.path == Path("callbridge-records.sqlite3")  # state defaults to the working directory
    assert s.mqtt.outbox_path == Path("callbridge-outbox.sqlite3")
