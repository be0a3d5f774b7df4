"""Shared fixtures: where the recorded Asterisk traces live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def traces_dir() -> Path:
    """The real Asterisk 22 traces: ``$CALLBRIDGE_TRACES`` or ``../shared/traces/asterisk-22``."""
    env = os.environ.get("CALLBRIDGE_TRACES")
    return Path(env) if env else REPO.parent / "shared" / "traces" / "asterisk-22"


@pytest.fixture(scope="session")
def traces() -> Path:
    path = traces_dir()
    if not path.is_dir():
        pytest.fail(f"recorded traces not found at {path} (set CALLBRIDGE_TRACES)")
    return path
