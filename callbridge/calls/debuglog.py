"""Whether the tracker's debug lines would be written, asked once (the ingest path changes call states often).

Why once: a filtered ``log.debug(...)`` through structlog's lazy proxy still binds a logger per call, and
asking structlog per call (``structlog.get_config()`` builds a dict) costs about as much; the tracker asks when
it is built and keeps the answer, so logging must be configured before (``callbridge.log``, the CLI).
"""

from __future__ import annotations

import logging
from typing import Any


def debug_enabled(logger: Any) -> bool:
    """Whether ``logger`` (a structlog logger or lazy proxy) writes debug lines under the configuration now.

    structlog's filtering bound loggers (and its stdlib one) answer ``is_enabled_for``; a wrapper class that
    cannot tell is taken to log everything (its debug lines then keep being written)."""
    bound = logger.bind()
    is_enabled_for = getattr(bound, "is_enabled_for", None)
    return True if is_enabled_for is None else bool(is_enabled_for(logging.DEBUG))
