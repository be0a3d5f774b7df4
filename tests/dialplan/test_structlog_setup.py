"""structlog set-up: JSON lines carry the bound call context; console lines are readable."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from callbridge.log import bind_call, call_context, configure_logging, get_logger, unbind_call


@pytest.fixture(autouse=True)
def _reset() -> object:
    structlog.contextvars.clear_contextvars()
    yield None
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def test_json_lines_carry_call_context() -> None:
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    bind_call(call_id="1700000000.42", hotline="12345")
    get_logger("test").info("transfer.requested", rule="r-12345-110-police", caller="13800138000")
    with call_context(transfer_id="x1"):
        get_logger().warning("line.failed", line=1)
    unbind_call("call_id")
    get_logger().info("after")
    first, second, third = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["event"] == "transfer.requested" and first["call_id"] == "1700000000.42"
    assert first["hotline"] == "12345" and first["level"] == "info" and "timestamp" in first
    assert second["transfer_id"] == "x1" and second["level"] == "warning"
    assert "transfer_id" not in third and "call_id" not in third and third["hotline"] == "12345"


def test_level_filters_and_stdlib_logging_is_routed() -> None:
    out = io.StringIO()
    configure_logging("json", "warning", stream=out)
    get_logger().info("hidden")
    logging.getLogger("panoramisk").warning("from stdlib %s", "lib")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["from stdlib lib"]


def test_console_format_is_human_readable() -> None:
    out = io.StringIO()
    configure_logging("console", "debug", stream=out)
    bind_call(call_id="c1")
    get_logger().debug("queued", queue="q-110")
    text = out.getvalue()
    assert "queued" in text and "call_id=c1" in text and "queue=q-110" in text
    assert "\x1b[" not in text  # no colours when not a terminal


def test_bad_format_or_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log level"):
        configure_logging("json", "loud")
    with pytest.raises(ValueError, match="log format"):
        configure_logging("xml", "info")  # type: ignore[arg-type]
