"""Fixtures of the tracker tests: quiet logging."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _quiet_tracker_logs() -> Iterator[None]:
    """The tracker logs every odd event; partial-attach tests would print thousands of lines."""
    old = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    yield
    structlog.configure(**old)
