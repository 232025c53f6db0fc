"""The retry layer over both executors, with real throttling answers from a proxy in front of moto."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import pytest
from botocore import exceptions as boto_exc

from engine import aws_errors
from engine.commands import ResolvedCommand
from engine.config import RetrySettings, RetryStrategy
from engine.executors.base import ExecutionContext
from engine.executors.cli import CliExecutor
from engine.executors.sdk import SdkExecutor
from engine.retry import run_with_retries
from engine.risk import Risk
from engine.sinks import ListSink, RetryScheduled
from tests.throttle_proxy import ThrottleProxy, hanging_server


def command(
    service: str,
    operation: str,
    params: dict[str, Any] | None = None,
    *,
    cli_args: list[str] | None = None,
    risk: Risk = Risk.READ_ONLY,
    timeout_seconds: float | None = None,
) -> ResolvedCommand:
    params = {} if params is None else params
    return ResolvedCommand(
        id="cmd-1",
        form="cli" if cli_args else "sdk",
        service=service,
        cli_service=cli_args[0] if cli_args else service,
        operation=operation,
        cli_operation=cli_args[1] if cli_args else operation,
        cli_args=cli_args,
        params=params,
        risk=risk,
        display=f"{service}:{operation} {json.dumps(params)}",
        timeout_seconds=timeout_seconds,
    )


def settings(
    strategy: RetryStrategy = RetryStrategy.FIXED,
    *,
    max_attempts: int = 4,
    base: float = 0.05,
    cap: float = 1.0,
    jitter: bool = False,
) -> RetrySettings:
    return RetrySettings(
        strategy=strategy, max_attempts=max_attempts, base_delay_seconds=base, max_delay_seconds=cap, jitter=jitter
    )


class RecordingSleep:
    """Sleeps for real, and keeps each delay with how many RetryScheduled events the sink had by then."""

    def __init__(self, sink: ListSink) -> None:
        self.sink = sink
        self.delays: list[float] = []
        self.announced_before: list[int] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.announced_before.append(sum(isinstance(e, RetryScheduled) for e in self.sink.events))
        await asyncio.sleep(delay)


@pytest.fixture
async def proxy(aws: str) -> AsyncIterator[ThrottleProxy]:
    async with ThrottleProxy(aws) as running:
        yield running


@pytest.fixture
def sdk() -> Iterator[SdkExecutor]:
    executor = SdkExecutor()
    yield executor
    executor.close()


# --- success after throttling -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "operation", "throttle_code"),
    [
        ("ec2", "DescribeVpcs", "RequestLimitExceeded"),  # EC2 query protocol, HTTP 503
        ("s3", "ListBuckets", "SlowDown"),  # S3 REST-XML, HTTP 503
        ("dynamodb", "ListTables", "ThrottlingException"),  # awsJson, HTTP 400
        ("sns", "ListTopics", "Throttling"),  # query protocol, HTTP 400
    ],
)
async def test_sdk_succeeds_after_throttling_in_each_wire_protocol(
    proxy: ThrottleProxy, sdk: SdkExecutor, service: str, operation: str, throttle_code: str
) -> None:
    proxy.configure(failures=2)
    sink = ListSink()

    result = await run_with_retries(
        sdk, command(service, operation), ExecutionContext(endpoint_url=proxy.url), sink, settings(base=0.01)
    )

    assert result.ok, result.error_message
    assert [a.error_code for a in result.attempts] == [throttle_code, throttle_code, None]
    assert [a.ok for a in result.attempts] == [False, False, True]
    assert all(a.retryable for a in result.attempts[:2])
    assert [a.number for a in result.attempts] == [1, 2, 3]
    # botocore made exactly one request per attempt: the retries are the engine's alone.
    assert (len(proxy.seen), proxy.rejected) == (3, 2)


@pytest.mark.slow
async def test_cli_succeeds_after_throttling_with_one_request_per_attempt(proxy: ThrottleProxy) -> None:
    proxy.configure(failures=2)
    sink = ListSink()
    describe = command("ec2", "DescribeVpcs", cli_args=["ec2", "describe-vpcs"])

    result = await run_with_retries(
        CliExecutor(), describe, ExecutionContext(endpoint_url=proxy.url), sink, settings(base=0.01)
    )

    assert result.ok, result.error_message
    assert result.executor == "cli"
    assert [a.error_code for a in result.attempts] == ["RequestLimitExceeded", "RequestLimitExceeded", None]
    assert result.data["Vpcs"], "the last attempt reached moto"
    # AWS_MAX_ATTEMPTS=1 held: the aws CLI did not retry on its own.
    assert (len(proxy.seen), proxy.rejected) == (3, 2)


# --- wait strategies --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "cap", "expected"),
    [
        (RetryStrategy.EXPONENTIAL, 1.0, [0.05, 0.1, 0.2]),
        (RetryStrategy.EXPONENTIAL, 0.08, [0.05, 0.08, 0.08]),
        (RetryStrategy.FIXED, 1.0, [0.05, 0.05, 0.05]),
        (RetryStrategy.LINEAR, 1.0, [0.05, 0.1, 0.15]),
        (RetryStrategy.LINEAR, 0.12, [0.05, 0.1, 0.12]),
    ],
)
async def test_delays_follow_the_configured_strategy(
    proxy: ThrottleProxy, sdk: SdkExecutor, strategy: RetryStrategy, cap: float, expected: list[float]
) -> None:
    proxy.configure(failures=3)
    sink = ListSink()
    sleep = RecordingSleep(sink)

    result = await run_with_retries(
        sdk,
        command("s3", "ListBuckets"),
        ExecutionContext(endpoint_url=proxy.url),
        sink,
        settings(strategy, cap=cap),
        sleep=sleep,
    )

    assert result.ok
    assert sleep.delays == pytest.approx(expected)
    assert [a.delay_before_seconds for a in result.attempts] == pytest.approx([0.0, *expected])
    assert result.duration_seconds >= sum(expected)


async def test_jittered_exponential_delays_stay_under_the_growing_ceiling(
    proxy: ThrottleProxy, sdk: SdkExecutor
) -> None:
    proxy.configure(failures=4)
    sink = ListSink()
    sleep = RecordingSleep(sink)

    result = await run_with_retries(
        sdk,
        command("dynamodb", "ListTables"),
        ExecutionContext(endpoint_url=proxy.url),
        sink,
        settings(RetryStrategy.EXPONENTIAL, max_attempts=5, base=0.02, cap=0.1, jitter=True),
        sleep=sleep,
    )

    assert result.ok
    ceilings = [0.02, 0.04, 0.08, 0.1]
    assert len(sleep.delays) == 4
    assert all(0 <= delay <= ceiling for delay, ceiling in zip(sleep.delays, ceilings, strict=True))


# --- when not to retry -------------------------------------------------------------------------------------


async def test_max_attempts_bounds_the_attempts_and_keeps_the_last_failure(
    proxy: ThrottleProxy, sdk: SdkExecutor
) -> None:
    proxy.configure(failures=10)
    sink = ListSink()

    result = await run_with_retries(
        sdk, command("s3", "ListBuckets"), ExecutionContext(endpoint_url=proxy.url), sink, settings(max_attempts=3)
    )

    assert not result.ok
    assert result.error_code == "SlowDown"
    assert result.retryable
    assert len(result.attempts) == 3
    assert len(proxy.seen) == 3
    assert sum(isinstance(e, RetryScheduled) for e in sink.events) == 2


async def test_a_missing_bucket_is_not_retried(proxy: ThrottleProxy, sdk: SdkExecutor) -> None:
    sink = ListSink()

    result = await run_with_retries(
        sdk,
        command("s3", "GetBucketLocation", {"Bucket": "no-such-bucket"}),
        ExecutionContext(endpoint_url=proxy.url),
        sink,
        settings(),
    )

    assert result.error_code == "NoSuchBucket"
    assert len(result.attempts) == 1
    assert not result.attempts[0].retryable
    assert len(proxy.seen) == 1
    assert not any(isinstance(e, RetryScheduled) for e in sink.events)


@pytest.mark.parametrize(("code", "status"), [("AccessDenied", 403), ("UnauthorizedOperation", 403)])
async def test_permission_errors_are_not_retried(
    proxy: ThrottleProxy, sdk: SdkExecutor, code: str, status: int
) -> None:
    proxy.configure(failures=5, code=code, status=status)

    result = await run_with_retries(
        sdk, command("ec2", "DescribeVpcs"), ExecutionContext(endpoint_url=proxy.url), ListSink(), settings()
    )

    assert result.error_code == code
    assert len(result.attempts) == 1
    assert len(proxy.seen) == 1


async def test_a_timed_out_attempt_is_never_retried(sdk: SdkExecutor, aws: str) -> None:
    async with hanging_server() as hang:
        context = ExecutionContext(endpoint_url=hang.url)
        # Made beforehand, so the short timeout is spent waiting on the server, not loading the s3 model.
        sdk.client_for("s3", context)
        result = await run_with_retries(
            sdk, command("s3", "ListBuckets", timeout_seconds=0.5), context, ListSink(), settings()
        )
        assert hang.connections == 1

    assert result.timed_out
    assert len(result.attempts) == 1


async def test_a_lost_answer_is_retried_for_reads_but_not_for_changes(aws: str) -> None:
    executor = SdkExecutor(read_timeout_seconds=0.3)
    try:
        async with hanging_server() as hang:
            context = ExecutionContext(endpoint_url=hang.url)
            read = await run_with_retries(
                executor, command("s3", "ListBuckets"), context, ListSink(), settings(max_attempts=2, base=0.01)
            )
            change = await run_with_retries(
                executor,
                command("s3", "CreateBucket", {"Bucket": "maybe-made"}, risk=Risk.MODIFY),
                context,
                ListSink(),
                settings(max_attempts=2, base=0.01),
            )
    finally:
        executor.close()

    assert [a.error_code for a in read.attempts] == [aws_errors.READ_TIMEOUT] * 2
    # The request was sent; AWS may have made the bucket. Repeating it is the operator's call.
    assert [a.error_code for a in change.attempts] == [aws_errors.READ_TIMEOUT]
    assert not change.retryable


async def test_cancellation_during_a_wait_propagates(proxy: ThrottleProxy, sdk: SdkExecutor) -> None:
    proxy.configure(failures=5)
    waiting = asyncio.Event()

    async def endless_sleep(delay: float) -> None:
        waiting.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(
        run_with_retries(
            sdk,
            command("s3", "ListBuckets"),
            ExecutionContext(endpoint_url=proxy.url),
            ListSink(),
            settings(),
            sleep=endless_sleep,
        )
    )
    await asyncio.wait_for(waiting.wait(), timeout=10)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(proxy.seen) == 1


# --- what the sink and the result show --------------------------------------------------------------------


async def test_retry_scheduled_is_announced_before_each_wait(proxy: ThrottleProxy, sdk: SdkExecutor) -> None:
    proxy.configure(failures=2)
    sink = ListSink()
    sleep = RecordingSleep(sink)

    result = await run_with_retries(
        sdk,
        command("s3", "ListBuckets"),
        ExecutionContext(endpoint_url=proxy.url),
        sink,
        settings(RetryStrategy.EXPONENTIAL),
        sleep=sleep,
    )

    scheduled = [e for e in sink.events if isinstance(e, RetryScheduled)]
    assert [(e.attempt, e.error_code, e.command_id) for e in scheduled] == [
        (2, "SlowDown", "cmd-1"),
        (3, "SlowDown", "cmd-1"),
    ]
    assert [e.delay_seconds for e in scheduled] == sleep.delays
    assert sleep.announced_before == [1, 2]
    # Each failed attempt's stderr line comes before the announcement of the next attempt.
    kinds = [type(e).__name__ if isinstance(e, RetryScheduled) else e.stream for e in sink.events]
    assert kinds[:4] == ["stderr", "RetryScheduled", "stderr", "RetryScheduled"]
    assert set(kinds[4:]) == {"stdout"}
    assert result.attempts[-1].started_at >= result.attempts[-2].finished_at


async def test_attempts_record_times_and_messages(proxy: ThrottleProxy, sdk: SdkExecutor) -> None:
    proxy.configure(failures=1)
    boto3.client("s3").create_bucket(Bucket="listed")

    result = await run_with_retries(
        sdk, command("s3", "ListBuckets"), ExecutionContext(endpoint_url=proxy.url), ListSink(), settings()
    )

    first, second = result.attempts
    assert first.error_message == "Rate exceeded"
    assert first.started_at <= first.finished_at <= second.started_at <= second.finished_at
    assert second.delay_before_seconds == pytest.approx(0.05)
    assert [b["Name"] for b in result.data["Buckets"]] == ["listed"]


# --- error classification ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "ProvisionedThroughputExceededException",
        "TooManyRequestsException",
        "503",
        aws_errors.CONNECTION_ERROR,
        aws_errors.CONNECT_TIMEOUT,
        aws_errors.READ_TIMEOUT,
    ],
)
def test_transient_codes_are_retryable(code: str) -> None:
    assert aws_errors.is_retryable(code)


@pytest.mark.parametrize(
    "code",
    [
        None,
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "NoSuchBucket",
        "ResourceNotFoundException",
        "InvalidInstanceID.NotFound",
        "ValidationException",
        "ValidationError",
        "InvalidParameterValue",
        "InvalidParameterCombination",
        "DryRunOperation",
        "LimitExceededException",
        aws_errors.TIMEOUT,
        aws_errors.PARAM_VALIDATION,
        aws_errors.CLI_USAGE_ERROR,
        aws_errors.NO_CREDENTIALS,
    ],
)
def test_permanent_codes_are_not_retryable(code: str | None) -> None:
    assert not aws_errors.is_retryable(code)


def test_only_reads_are_retried_after_a_lost_answer() -> None:
    assert aws_errors.is_safe_to_retry(aws_errors.READ_TIMEOUT, Risk.READ_ONLY)
    assert not aws_errors.is_safe_to_retry(aws_errors.READ_TIMEOUT, Risk.MODIFY)
    assert not aws_errors.is_safe_to_retry(aws_errors.CONNECTION_CLOSED, Risk.DESTRUCTIVE)
    # A refused or unsent request may be repeated whatever it does.
    assert aws_errors.is_safe_to_retry("Throttling", Risk.DESTRUCTIVE)
    assert aws_errors.is_safe_to_retry(aws_errors.CONNECTION_ERROR, Risk.MODIFY)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (boto_exc.EndpointConnectionError(endpoint_url="http://x"), aws_errors.CONNECTION_ERROR),
        (boto_exc.ConnectTimeoutError(endpoint_url="http://x"), aws_errors.CONNECT_TIMEOUT),
        (boto_exc.ReadTimeoutError(endpoint_url="http://x"), aws_errors.READ_TIMEOUT),
        (boto_exc.ConnectionClosedError(endpoint_url="http://x"), aws_errors.CONNECTION_CLOSED),
        (boto_exc.SSLError(endpoint_url="http://x", error="bad cert"), aws_errors.SSL_ERROR),
        (boto_exc.NoCredentialsError(), aws_errors.NO_CREDENTIALS),
        (boto_exc.NoRegionError(), aws_errors.NO_REGION),
        (boto_exc.ProfileNotFound(profile="p"), aws_errors.PROFILE_NOT_FOUND),
        (boto_exc.ParamValidationError(report="bad"), aws_errors.PARAM_VALIDATION),
    ],
)
def test_botocore_failures_get_the_same_codes_as_the_cli_reports(exc: BaseException, code: str) -> None:
    assert aws_errors.code_for_botocore_error(exc) == code
    # The aws CLI prints these exceptions' own text; parsing that text gives back the same code.
    assert aws_errors.parse_cli_error(f"\n{exc}\n")[0] == code
