"""The live-PBX suite: callbridge against a private, real Asterisk 22 (``../shared/asterisk``).

One session builds one lab (:func:`livelab.open_lab`, about 15 s; again if its Asterisk died: see
:class:`SessionLab`): the configuration ``render-asterisk`` writes from ``dialplans/`` and the live site
file (ports chosen free now), ``#include``d into a stock-like Asterisk configuration (:mod:`livepbx`);
SIPp user agents for the agents' phones and the hotline trunks; mosquitto; ``callbridge run`` as a
subprocess behind a recording AMI proxy; ``mosquitto_sub`` recording every event. A scenario places a
call with a SIPp caller and reads three views: the SIP messages at the trunk, the MQTT events, and
Asterisk's own CLI (``core show channels``, ``queue show``, ``confbridge list``).

Where Asterisk cannot run (no ``../shared/asterisk/install.sh`` beside the repository, not root, a build
this CPU cannot execute, ``CALLBRIDGE_LIVE=0``) every live test is skipped with the reason, printed by ``-ra``.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator

import pytest
from livelab import CALLER, Lab, open_lab
from livepbx import CannotRun, Sipp, live_unavailable

__all__ = ["CALLER", "Lab", "header", "never_bye"]


class SessionLab:
    """The session's one lab, opened again when its Asterisk died: the test during which it died fails
    (``livepbx.PbxGone`` says how it ended), the next ones get a fresh PBX instead of failing in cascade."""

    def __init__(self, tmp: pytest.TempPathFactory) -> None:
        self.tmp = tmp
        self.stack = contextlib.ExitStack()
        self.lab = self._open()

    def _open(self) -> Lab:
        return self.stack.enter_context(open_lab(self.tmp.mktemp("live")))

    def current(self) -> Lab:
        if not self.lab.pbx.running():
            gone = self.lab.pbx.gone_reason()
            self.close()  # stops what is left of that lab: callbridge, SIPp, mosquitto, the recorder
            self.stack = contextlib.ExitStack()
            self.lab = self._open()
            warnings.warn(f"the live lab's Asterisk had died; a fresh lab runs in {self.lab.root}. {gone}",
                          stacklevel=1)  # fmt: skip
        return self.lab

    def close(self) -> None:
        self.stack.close()


@pytest.fixture(scope="session")
def live_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionLab]:
    reason = live_unavailable()
    if reason:
        pytest.skip(f"live-PBX suite skipped: {reason}")
    try:
        session = SessionLab(tmp_path_factory)
    except CannotRun as exc:  # a probe passed but the full start did not (cannot happen twice: cached)
        pytest.skip(f"live-PBX suite skipped: {exc}")
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def lab(live_session: SessionLab) -> Lab:
    """The session's lab (:class:`SessionLab`): a fresh one if the last test left its Asterisk dead."""
    return live_session.current()


@pytest.fixture
def clean(lab: Lab, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """Each scenario starts and ends with no channel on the PBX; with ``$CALLBRIDGE_LIVE_RECORD`` set, its
    span of callbridge's AMI session is saved there as ``live_<test name>`` (unless it saved its own)."""
    name = "live_" + re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name.removeprefix("test_")).strip("_")
    doc = " ".join((request.node.function.__doc__ or "").split())[:300]
    with lab.recording(name, f"{request.node.nodeid}: {doc}", unless_saved_inside=True):
        yield lab
        lab.hang_up_everything()


def header(message: str, name: str) -> str:
    for line in message.splitlines():
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def never_bye(caller: Sipp) -> bool:
    return not [m for m in caller.received() if m.lstrip().startswith("BYE ")]
