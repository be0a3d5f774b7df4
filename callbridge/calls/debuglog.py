"""Whether the tracker's debug lines would be written, asked cheaply (the ingest path asks on every state change)."""

from __future__ import annotations

import logging
from typing import Any

import structlog
import structlog._config

# What a filtering logger above DEBUG has as its ``debug`` method (a shared no-op function).
_FILTERED_DEBUG = structlog.make_filtering_bound_logger(logging.INFO).debug


# structlog.get_config() builds a dict on every call (~1 µs, paid on every state change of the ingest path); the
# wrapper class it returns is this private attribute, which configure()/reset_defaults() assign: read it
# directly, with the public call as the fallback should structlog ever move it.
_STRUCTLOG_CONFIG: Any = getattr(structlog._config, "_CONFIG", None)


def debug_enabled() -> bool:
    """Whether a debug line would be written under the current structlog configuration (cheap to ask)."""
    wrapper = getattr(_STRUCTLOG_CONFIG, "default_wrapper_class", None) or structlog.get_config()["wrapper_class"]
    return getattr(wrapper, "debug", None) is not _FILTERED_DEBUG
