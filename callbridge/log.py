"""structlog set-up: console lines for humans, JSON lines for production, call context from contextvars.

Code that handles one call binds its context once (``bind_call(call_id=..., hotline=...)``) and every log
line written while handling it carries those keys, without passing a logger around.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import structlog

LogFormat = Literal["console", "json"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(format: LogFormat = "console", level: str = "info", stream: TextIO | None = None) -> None:  # noqa: A002
    """Configure structlog (and route stdlib logging, e.g. panoramisk's, through the same renderer)."""
    numeric = _LEVELS.get(level.lower())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(_LEVELS)}")
    out = stream if stream is not None else sys.stderr
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if format == "json":
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
        shared.append(structlog.processors.format_exc_info)
    elif format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    else:
        raise ValueError(f"unknown log format {format!r}; expected console or json")
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(processors=[*_strip_meta(), renderer], foreign_pre_chain=shared)
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)


def _strip_meta() -> list[Any]:
    return [structlog.stdlib.ProcessorFormatter.remove_processors_meta]


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name) if name else structlog.get_logger()


def bind_call(**context: Any) -> None:
    """Bind call context (``call_id``, ``hotline``, ``transfer_id`` …) for the current task."""
    structlog.contextvars.bind_contextvars(**context)


def unbind_call(*keys: str) -> None:
    structlog.contextvars.unbind_contextvars(*keys)


@contextmanager
def call_context(**context: Any) -> Iterator[None]:
    """``with call_context(call_id=...):`` binds for the block and restores what was bound before."""
    with structlog.contextvars.bound_contextvars(**context):
        yield
