"""Run a command through an executor, repeating attempts that failed in a way worth repeating.

The executors make exactly one attempt each (botocore and the aws CLI are told not to retry), so every
attempt is seen, recorded and shown here. What counts as worth repeating is the executor's ``retryable``
flag; a timed-out or cancelled attempt never is, since it may have half done a change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
    wait_fixed,
    wait_incrementing,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from engine.commands import ResolvedCommand
from engine.config import RetrySettings, RetryStrategy
from engine.executors.base import ExecutionContext, Executor
from engine.results import Attempt, CommandResult
from engine.sinks import OutputSink, RetryScheduled

Sleep = Callable[[float], Awaitable[None]]


def wait_strategy(settings: RetrySettings) -> wait_base:
    """The tenacity wait between attempts for ``settings``."""
    base, cap = settings.base_delay_seconds, settings.max_delay_seconds
    if settings.strategy is RetryStrategy.FIXED:
        return wait_fixed(base)
    if settings.strategy is RetryStrategy.LINEAR:
        return wait_incrementing(start=base, increment=base, max=cap)
    if settings.jitter:
        # Full jitter: clients throttled together must not come back together.
        return wait_random_exponential(multiplier=base, max=cap)
    return wait_exponential(multiplier=base, max=cap)


def should_retry(result: CommandResult) -> bool:
    return not result.ok and result.retryable and not result.timed_out and not result.cancelled


async def run_with_retries(
    executor: Executor,
    command: ResolvedCommand,
    context: ExecutionContext,
    sink: OutputSink,
    settings: RetrySettings,
    *,
    sleep: Sleep = asyncio.sleep,
) -> CommandResult:
    """Run ``command`` until it succeeds, fails for good, or uses ``settings.max_attempts`` attempts.

    Returns the last attempt's result with every attempt in ``attempts`` and the total time in
    ``duration_seconds``. A ``RetryScheduled`` event reaches the sink before each wait. Cancellation
    propagates, during an attempt or a wait.
    """
    started = time.monotonic()
    attempts: list[Attempt] = []
    delay_before = 0.0

    async def attempt() -> CommandResult:
        begun = datetime.now(UTC)
        result = await executor.run(command, context, sink)
        attempts.append(
            Attempt(
                number=len(attempts) + 1,
                started_at=begun,
                finished_at=datetime.now(UTC),
                ok=result.ok,
                error_code=result.error_code,
                error_message=result.error_message,
                retryable=should_retry(result),
                delay_before_seconds=delay_before,
            )
        )
        return result

    async def wait(delay: float) -> None:
        nonlocal delay_before
        delay_before = delay
        last = attempts[-1]
        await sink.emit(
            RetryScheduled(
                command_id=command.id, attempt=last.number + 1, delay_seconds=delay, error_code=last.error_code
            )
        )
        await sleep(delay)

    def give_up(state: RetryCallState) -> CommandResult:
        # Out of attempts: the last failure is the answer, not tenacity's RetryError.
        assert state.outcome is not None
        return state.outcome.result()

    retrying = AsyncRetrying(
        stop=stop_after_attempt(settings.max_attempts),
        wait=wait_strategy(settings),
        retry=retry_if_result(should_retry),
        sleep=wait,
        retry_error_callback=give_up,
        reraise=True,
    )
    result: CommandResult = await retrying(attempt)
    return result.model_copy(update={"attempts": attempts, "duration_seconds": time.monotonic() - started})
