"""ReconnectPolicy: jittered exponential backoff with a cap, a long pause after a refused login."""

from __future__ import annotations

import random

import pytest

from callbridge.ami.client import ConnState, ReconnectPolicy


def test_backoff_grows_exponentially_within_jitter_and_is_capped() -> None:
    policy = ReconnectPolicy(initial=0.5, maximum=8.0, multiplier=2.0, jitter=0.2, rng=random.Random(7))
    delays = [policy.failed() for _ in range(8)]
    bases = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    for delay, base in zip(delays, bases, strict=True):
        assert base * 0.8 <= delay <= base * 1.2
    assert policy.state is ConnState.BACKING_OFF


def test_jitter_spreads_instances() -> None:
    firsts = {ReconnectPolicy(rng=random.Random(seed)).failed() for seed in range(20)}
    assert len(firsts) > 10


def state(policy: ReconnectPolicy) -> ConnState:
    # A call, so mypy does not keep the narrowed type of ``policy.state`` across method calls.
    return policy.state


def test_success_resets_backoff_and_states_follow_the_session() -> None:
    policy = ReconnectPolicy(initial=1.0, jitter=0.0)
    assert state(policy) is ConnState.IDLE
    assert policy.connecting() == 1
    assert state(policy) is ConnState.CONNECTING
    assert [policy.failed() for _ in range(3)] == [1.0, 2.0, 4.0]
    policy.connecting()
    policy.resyncing()
    assert state(policy) is ConnState.RESYNCING
    policy.connected()
    assert state(policy) is ConnState.CONNECTED
    assert policy.failed() == 1.0
    assert policy.attempts == 2
    policy.closed()
    assert state(policy) is ConnState.CLOSED


def test_login_failure_waits_the_long_interval() -> None:
    policy = ReconnectPolicy(initial=0.01, login_retry=60.0, jitter=0.1)
    delay = policy.login_failed()
    assert policy.state is ConnState.LOGIN_FAILED
    assert delay == pytest.approx(60.0, rel=0.1)
