"""service.start_eagerly: the first step runs in the caller's iteration, as the new task; the rest like any task."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from callbridge.engine.service import start_eagerly

TIMEOUT = 5.0
VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="outer")


async def test_the_first_step_runs_before_start_returns_and_the_rest_as_a_task() -> None:
    steps: list[str] = []
    gate = asyncio.get_running_loop().create_future()

    async def body() -> str:
        steps.append("first")
        await gate
        steps.append("rest")
        return "done"

    task = start_eagerly(body())
    assert steps == ["first"]  # no await happened in this test between the call and here
    gate.set_result(None)
    async with asyncio.timeout(TIMEOUT):
        assert await task == "done"
    assert steps == ["first", "rest"]


async def test_in_the_first_step_the_current_task_is_the_new_task_not_the_caller() -> None:
    caller = asyncio.current_task()
    seen: list[asyncio.Task[object] | None] = []

    async def body() -> None:
        seen.append(asyncio.current_task())
        await asyncio.sleep(0)
        seen.append(asyncio.current_task())

    task = start_eagerly(body())
    assert asyncio.current_task() is caller  # restored after the first step
    async with asyncio.timeout(TIMEOUT):
        await task
    assert seen == [task, task]


async def test_a_timeout_entered_in_the_first_step_cancels_the_new_task_never_the_caller() -> None:
    # the AMI client enters asyncio.timeout right after writing, i.e. in the batch's first step
    never = asyncio.get_running_loop().create_future()

    async def waits_for_a_reply() -> str:
        try:
            async with asyncio.timeout(0.01):
                await never
        except TimeoutError:
            return "timed out"
        return "replied"

    task = start_eagerly(waits_for_a_reply())
    async with asyncio.timeout(TIMEOUT):
        assert await task == "timed out"
    await asyncio.sleep(0.03)  # a timeout bound to the caller (this test's task) would cancel it here
    caller = asyncio.current_task()
    assert caller is not None and caller.cancelling() == 0


async def test_a_coroutine_that_finishes_or_fails_in_its_first_step() -> None:
    async def returns() -> int:
        return 7

    async def fails() -> None:
        raise ValueError("at once")

    done, failed = start_eagerly(returns()), start_eagerly(fails())
    async with asyncio.timeout(TIMEOUT):
        assert await done == 7
        with pytest.raises(ValueError, match="at once"):
            await failed


async def test_a_cancel_before_the_task_ran_reaches_the_coroutine_at_its_await() -> None:
    cleaned: list[str] = []
    never = asyncio.get_running_loop().create_future()

    async def body() -> None:
        try:
            await never
        except asyncio.CancelledError:
            cleaned.append("cancelled at the await")
            raise

    task = start_eagerly(body())
    task.cancel()
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert cleaned == ["cancelled at the await"] and task.cancelled()


async def test_the_first_step_sets_context_variables_in_the_task_context_only() -> None:
    async def body() -> str:
        VAR.set("task")
        await asyncio.sleep(0)
        return VAR.get()

    task = start_eagerly(body())
    assert VAR.get() == "outer"
    async with asyncio.timeout(TIMEOUT):
        assert await task == "task"


async def test_started_from_a_plain_callback_with_no_current_task() -> None:
    loop = asyncio.get_running_loop()
    started: asyncio.Future[asyncio.Task[str]] = loop.create_future()
    seen: list[object] = []

    async def body() -> str:
        seen.append(asyncio.current_task())
        await asyncio.sleep(0)
        return "ok"

    loop.call_soon(lambda: started.set_result(start_eagerly(body())))
    async with asyncio.timeout(TIMEOUT):
        task = await started
        assert await task == "ok"
    assert seen == [task]
