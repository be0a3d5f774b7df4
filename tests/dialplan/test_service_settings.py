"""Service settings: the repo file, env overrides, secrets from env or files, located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.errors import ConfigError, UnreadableConfigError
from callbridge.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "callbridge.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "callbridge.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_repo_settings_load_and_hold_no_secret() -> None:
    s = load_settings(CONFIG, env={})
    assert s.site_id == "city-a"
    assert s.mqtt.site == "city-a"  # one site id for the service
    assert (s.ami.host, s.ami.port, s.ami.auth) == ("127.0.0.1", 5038, "md5")
    assert s.ami.secret is None
    assert s.log.format == "console"
    assert s.dialplan.path == CONFIG.parent / "dialplans"  # beside the settings file, not in the cwd
    with pytest.raises(ConfigError, match="CALLBRIDGE_AMI_SECRET"):
        s.ami.secret_value()


def test_defaults_without_a_file() -> None:
    s = load_settings(None, env={})
    assert s.site_id == "default" and s.web.port == 8080 and s.store.postgres_dsn is None


def test_env_overrides_sections_and_keys() -> None:
    env = {
        "CALLBRIDGE_AMI__PORT": "5039",
        "CALLBRIDGE_LOG__FORMAT": "json",
        "CALLBRIDGE_SITE_ID": "city-b",
        "CALLBRIDGE_MQTT__TLS": "true",
        "CALLBRIDGE_TRACES": "/somewhere",  # another tool's variable: ignored
    }
    s = load_settings(CONFIG, env=env)
    assert s.ami.port == 5039
    assert s.log.format == "json"
    assert s.site_id == "city-b"
    assert s.mqtt.tls is True


def test_env_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(CONFIG, env={"CALLBRIDGE_AMI__PORT": "99999", "CALLBRIDGE_AMI__PROT": "1"})
    text = str(info.value)
    assert "env CALLBRIDGE_AMI__PORT" in text and "less than or equal to 65535" in text
    assert "env CALLBRIDGE_AMI__PROT" in text and "did you mean 'port'" in text


def test_secrets_from_env_are_secret_strings() -> None:
    s = load_settings(CONFIG, env={"CALLBRIDGE_AMI_SECRET": "s3cr3t", "CALLBRIDGE_WEB_TOKEN": "tok"})
    assert s.ami.secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(s) and "s3cr3t" not in str(s.model_dump())
    assert s.web.token is not None and s.web.token.get_secret_value() == "tok"


def test_secret_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "ami.secret"
    secret.write_text("from-file\n", encoding="utf-8")
    path = _write(tmp_path, f"ami:\n  secret_file: {secret}\n")
    assert load_settings(path, env={}).ami.secret_value() == "from-file"
    # the env var wins over the file; *_FILE env works too
    assert load_settings(path, env={"CALLBRIDGE_AMI_SECRET": "env"}).ami.secret_value() == "env"
    assert load_settings(None, env={"CALLBRIDGE_AMI_SECRET_FILE": str(secret)}).ami.secret_value() == "from-file"


def test_missing_secret_file_is_located(tmp_path: Path) -> None:
    path = _write(tmp_path, "site_id: x\nmqtt:\n  host: broker\n  password_file: /nonexistent/pw\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    [p] = info.value.problems
    assert (p.file, p.line, p.column, p.field) == (str(path), 4, 18, "mqtt.password_file")
    assert "cannot read secret file" in p.message


def test_secret_written_in_the_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "ami:\n  host: pbx\n  secret: hunter2\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    [p] = info.value.problems
    assert (p.line, p.column, p.field) == (3, 3, "ami.secret")
    assert "CALLBRIDGE_AMI_SECRET" in p.message and "hunter2" not in p.message


@pytest.mark.parametrize(
    ("text", "line", "column", "needle"),
    [
        ("ami:\n  port: http\n", 2, 9, "valid integer"),
        ("ami:\n  host: pbx\n  auth: sha1\n", 3, 9, "'plain' or 'md5'"),
        ("log:\n  format: xml\n", 2, 11, "'console' or 'json'"),
        ("site_id: 'city a'\n", 1, 10, "found 'city a'"),
        ("web:\n  port: 8080\n  tokn_file: /x\n", 3, 3, "unknown key 'tokn_file' (did you mean 'token_file'?)"),
        ("mqtt:\n  host: b\n  port: 0\n", 3, 9, "greater than or equal to 1"),
        ("dialplans:\n  path: x\n", 1, 1, "did you mean 'dialplan'"),
        ("ami: [1, 2]\n", 1, 6, "valid dictionary"),
        ("ami:\n  host: a\n   port: 1\n", 3, 4, "indented deeper than 'host' on line 2"),
    ],
)
def test_settings_errors_are_located(tmp_path: Path, text: str, line: int, column: int, needle: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert any(
        p.file == str(path) and p.line == line and p.column == column and needle in f"{p.field} {p.message}"
        for p in info.value.problems
    ), "\n".join(map(str, info.value.problems))


def test_missing_settings_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableConfigError):
        load_settings(tmp_path / "nope.yaml", env={})


def test_mqtt_url_shorthand(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, "mqtt:\n  url: mqtts://cb@broker.city:8884\n"), env={})
    assert (s.mqtt.host, s.mqtt.port, s.mqtt.tls, s.mqtt.username) == ("broker.city", 8884, True, "cb")
    s = load_settings(None, env={"CALLBRIDGE_MQTT__URL": "mqtt://10.0.0.9"})
    assert (s.mqtt.host, s.mqtt.port, s.mqtt.tls) == ("10.0.0.9", 1883, False)
    for bad, needle in (
        ("http://x", "expected mqtt://"),
        ("mqtt://u:pw@x", "password in the URL"),
        ("mqtt://x:99x", "port"),
    ):
        with pytest.raises(ConfigError) as info:
            load_settings(_write(tmp_path, f"site_id: a\nmqtt:\n  url: {bad}\n"), env={})
        [p] = info.value.problems
        assert (p.line, p.column, p.field) == (3, 8, "mqtt.url") and needle in p.message
