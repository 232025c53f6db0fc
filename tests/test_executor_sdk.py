"""The boto3 executor against moto: real clients, real wire protocols, no stubbed responses."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from engine import aws_errors
from engine.commands import ResolvedCommand
from engine.executors.base import ExecutionContext, Executor
from engine.executors.sdk import SdkExecutor
from engine.risk import Risk
from engine.sinks import ListSink, OutputLine
from tests.aws_env import free_port
from tests.throttle_proxy import hanging_server


def sdk_command(
    service: str,
    operation: str,
    params: dict[str, Any] | None = None,
    *,
    form: str = "sdk",
    risk: Risk = Risk.READ_ONLY,
    timeout_seconds: float | None = None,
) -> ResolvedCommand:
    params = {} if params is None else params
    return ResolvedCommand(
        id="cmd-1",
        form=form,  # type: ignore[arg-type]
        service=service,
        cli_service=service,
        operation=operation,
        cli_operation=operation,
        cli_args=[service, operation] if form == "cli" else None,
        params=params,
        risk=risk,
        display=f"{service}:{operation} {json.dumps(params)}",
        timeout_seconds=timeout_seconds,
    )


@pytest.fixture
def executor() -> Iterator[SdkExecutor]:
    sdk = SdkExecutor()
    yield sdk
    sdk.close()


def test_sdk_executor_fits_the_executor_protocol(executor: SdkExecutor) -> None:
    assert isinstance(executor, Executor)
    assert executor.name == "sdk"


def test_supports_only_commands_with_an_operation_and_params() -> None:
    assert SdkExecutor.supports(sdk_command("s3", "ListBuckets"))
    high_level = ResolvedCommand(
        id="cp",
        form="cli",
        service="s3",
        cli_service="s3",
        operation=None,
        cli_operation="cp",
        cli_args=["s3", "cp", "a", "s3://b/a"],
        high_level=True,
        risk=Risk.MODIFY,
        display="aws s3 cp a s3://b/a",
    )
    assert not SdkExecutor.supports(high_level)


async def test_unsupported_command_is_a_failed_result_not_an_exception(executor: SdkExecutor, aws: str) -> None:
    command = sdk_command("s3", "ListBuckets").model_copy(update={"params": None})
    result = await executor.run(command, ExecutionContext(endpoint_url=aws), ListSink())
    assert not result.ok
    assert result.error_code == "NotSdkRunnable"


async def test_create_bucket_then_list_buckets_shows_it(executor: SdkExecutor, aws: str) -> None:
    context = ExecutionContext(endpoint_url=aws)
    sink = ListSink()

    created = await executor.run(
        sdk_command("s3", "CreateBucket", {"Bucket": "sdk-made"}, risk=Risk.MODIFY), context, sink
    )

    assert created.ok, created.error_message
    assert created.executor == "sdk"
    assert created.data == {"Location": "/sdk-made"}
    boto3.client("s3").head_bucket(Bucket="sdk-made")

    listed = await executor.run(sdk_command("s3", "ListBuckets"), context, sink)

    assert listed.ok
    assert [b["Name"] for b in listed.data["Buckets"]] == ["sdk-made"]
    assert "ResponseMetadata" not in listed.data
    # Pretty-printed like the aws CLI's JSON, and every line also went to the sink.
    assert json.loads(listed.output) == listed.data
    assert listed.output.startswith('{\n    "Buckets"')
    assert sink.lines() == (created.output + listed.output).splitlines()


async def test_the_command_lines_query_is_applied_to_the_result(executor: SdkExecutor, aws: str) -> None:
    s3 = boto3.client("s3")
    for name in ("query-a", "query-b"):
        s3.create_bucket(Bucket=name)
    command = sdk_command("s3", "ListBuckets", form="cli").model_copy(
        update={"cli_args": ["s3api", "list-buckets", "--query", "Buckets[].Name"]}
    )
    sink = ListSink()

    result = await executor.run(command, ExecutionContext(endpoint_url=aws), sink)

    assert result.ok, result.error_message
    assert result.data == ["query-a", "query-b"]
    assert result.output == json.dumps(["query-a", "query-b"], indent=4) + "\n"
    assert sink.lines() == result.output.splitlines()


async def test_a_secret_in_a_result_is_redacted_before_the_query_and_the_sink(executor: SdkExecutor, aws: str) -> None:
    secret = "tulip-meadow-lantern-4417"
    boto3.client("ssm").put_parameter(Name="/db", Type="SecureString", Value=secret)
    command = sdk_command("ssm", "GetParameter", {"Name": "/db", "WithDecryption": True}, form="cli").model_copy(
        update={"cli_args": ["ssm", "get-parameter", "--name", "/db", "--with-decryption", "--query", "Parameter.*"]}
    )
    sink = ListSink()

    result = await executor.run(command, ExecutionContext(endpoint_url=aws), sink)

    assert result.ok, result.error_message
    assert "/db" in result.data and "[REDACTED]" in result.data
    assert secret not in result.model_dump_json() + "".join(e.model_dump_json() for e in sink.events)


async def test_paginated_sdk_call_returns_every_page(executor: SdkExecutor, aws: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="paged")
    for n in range(30):
        s3.put_object(Bucket="paged", Key=f"key-{n:02d}", Body=b"x")

    result = await executor.run(
        sdk_command("s3", "ListObjectsV2", {"Bucket": "paged", "MaxKeys": 10}),
        ExecutionContext(endpoint_url=aws),
        ListSink(),
    )

    assert result.ok, result.error_message
    assert [o["Key"] for o in result.data["Contents"]] == [f"key-{n:02d}" for n in range(30)]


async def test_cli_form_with_its_own_page_size_gets_one_page_as_the_aws_cli_does(
    executor: SdkExecutor, aws: str
) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="paged")
    for n in range(30):
        s3.put_object(Bucket="paged", Key=f"key-{n:02d}", Body=b"x")
    # `aws s3api list-objects-v2 --max-keys 10` turns the CLI's automatic pagination off.
    command = sdk_command("s3", "ListObjectsV2", {"Bucket": "paged", "MaxKeys": 10}, form="cli")

    result = await executor.run(command, ExecutionContext(endpoint_url=aws), ListSink())

    assert result.ok
    assert len(result.data["Contents"]) == 10
    assert result.data["IsTruncated"] is True


async def test_pagination_config_caps_the_items_of_an_sdk_call(executor: SdkExecutor, aws: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="paged")
    for n in range(30):
        s3.put_object(Bucket="paged", Key=f"key-{n:02d}", Body=b"x")
    params = {"Bucket": "paged", "PaginationConfig": {"MaxItems": 15, "PageSize": 10}}

    result = await executor.run(
        sdk_command("s3", "ListObjectsV2", params), ExecutionContext(endpoint_url=aws), ListSink()
    )

    assert result.ok, result.error_message
    assert len(result.data["Contents"]) == 15
    assert "NextToken" in result.data


def test_clients_are_cached_per_profile_region_service_and_endpoint(executor: SdkExecutor, aws: str) -> None:
    context = ExecutionContext(region="us-east-1", endpoint_url=aws)
    s3 = executor.client_for("s3", context)

    assert executor.client_for("s3", context) is s3
    assert executor.client_for("s3", ExecutionContext(region="us-east-1", endpoint_url=aws)) is s3
    assert executor.client_for("s3", ExecutionContext(region="eu-west-1", endpoint_url=aws)) is not s3
    assert executor.client_for("s3", ExecutionContext(region="us-east-1")) is not s3
    assert executor.client_for("ec2", context) is not s3
    assert executor.client_for("s3", context).meta.region_name == "us-east-1"


def test_concurrent_first_use_makes_one_client(executor: SdkExecutor, aws: str) -> None:
    context = ExecutionContext(region="us-east-1", endpoint_url=aws)
    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda _: executor.client_for("dynamodb", context), range(16)))
    assert len({id(c) for c in clients}) == 1


async def test_client_error_gives_code_and_message(executor: SdkExecutor, aws: str) -> None:
    sink = ListSink()

    result = await executor.run(
        sdk_command("s3", "GetBucketLocation", {"Bucket": "no-such-bucket"}), ExecutionContext(endpoint_url=aws), sink
    )

    assert not result.ok
    assert result.error_code == "NoSuchBucket"
    assert result.error_message == "The specified bucket does not exist"
    assert not result.retryable
    assert [e.stream for e in sink.events if isinstance(e, OutputLine)] == ["stderr"]
    assert "(NoSuchBucket)" in sink.lines()[0]


async def test_invalid_params_are_a_param_validation_error(executor: SdkExecutor, aws: str) -> None:
    result = await executor.run(
        sdk_command("s3", "ListObjectsV2", {"Bucket": "b", "NoSuchParam": 1}),
        ExecutionContext(endpoint_url=aws),
        ListSink(),
    )
    assert not result.ok
    assert result.error_code == aws_errors.PARAM_VALIDATION
    assert "NoSuchParam" in (result.error_message or "")
    assert not result.retryable


async def test_unknown_operation_and_service_are_failed_results(executor: SdkExecutor, aws: str) -> None:
    context = ExecutionContext(endpoint_url=aws)
    unknown_op = await executor.run(sdk_command("s3", "DestroyEverything"), context, ListSink())
    unknown_service = await executor.run(sdk_command("nosuchservice", "ListThings"), context, ListSink())
    assert unknown_op.error_code == aws_errors.UNKNOWN_OPERATION
    assert unknown_service.error_code == aws_errors.UNKNOWN_SERVICE


async def test_refused_connection_is_a_retryable_connection_error(executor: SdkExecutor, aws: str) -> None:
    context = ExecutionContext(endpoint_url=f"http://127.0.0.1:{free_port()}")
    result = await executor.run(sdk_command("s3", "ListBuckets"), context, ListSink())
    assert not result.ok
    assert result.error_code == aws_errors.CONNECTION_ERROR
    assert result.retryable


async def test_dry_run_operation_counts_as_success_and_runs_nothing(executor: SdkExecutor, aws: str) -> None:
    params = {"ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 1, "InstanceType": "t2.micro", "DryRun": True}

    result = await executor.run(
        sdk_command("ec2", "RunInstances", params, risk=Risk.MODIFY),
        ExecutionContext(endpoint_url=aws, dry_run=True),
        ListSink(),
    )

    assert result.ok
    assert result.dry_run
    assert "DryRun flag is set" in (result.not_run_reason or "")
    assert boto3.client("ec2").describe_instances()["Reservations"] == []


async def test_streamed_body_is_read_into_the_result(executor: SdkExecutor, aws: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="bodies")
    s3.put_object(Bucket="bodies", Key="note.txt", Body="héllo\n".encode())
    s3.put_object(Bucket="bodies", Key="blob.bin", Body=bytes(range(255, -1, -1)))
    s3.put_object(Bucket="bodies", Key="big.txt", Body=b"a" * 100)
    small = SdkExecutor(max_body_bytes=64)
    context = ExecutionContext(endpoint_url=aws)
    try:
        text = await small.run(
            sdk_command("s3", "GetObject", {"Bucket": "bodies", "Key": "note.txt"}), context, ListSink()
        )
        blob = await small.run(
            sdk_command("s3", "GetObject", {"Bucket": "bodies", "Key": "blob.bin"}), context, ListSink()
        )
        big = await small.run(
            sdk_command("s3", "GetObject", {"Bucket": "bodies", "Key": "big.txt"}), context, ListSink()
        )
    finally:
        small.close()

    assert (text.data["Body"], text.data["BodyEncoding"], text.data["BodyTruncated"]) == ("héllo\n", "utf-8", False)
    assert blob.data["BodyEncoding"] == "base64"
    assert blob.data["BodyTruncated"] is True
    assert (big.data["Body"], big.data["BodyTruncated"]) == ("a" * 64, True)
    assert text.data["ContentLength"] == len("héllo\n".encode())


async def test_timeout_returns_promptly_and_is_not_retryable(aws: str) -> None:
    executor = SdkExecutor(read_timeout_seconds=5)
    try:
        async with hanging_server() as hang:
            context = ExecutionContext(endpoint_url=hang.url)
            # Made beforehand, so the short timeout is spent waiting on the server, not loading the s3 model.
            executor.client_for("s3", context)
            started = time.monotonic()
            result = await executor.run(sdk_command("s3", "ListBuckets", timeout_seconds=0.5), context, ListSink())
            elapsed = time.monotonic() - started
            assert hang.connections == 1
    finally:
        executor.close()

    assert not result.ok
    assert result.timed_out
    assert result.error_code == aws_errors.TIMEOUT
    assert not result.retryable
    assert 0.5 <= elapsed < 2


async def test_cancellation_propagates(executor: SdkExecutor, aws: str) -> None:
    async with hanging_server() as hang:
        context = ExecutionContext(endpoint_url=hang.url, default_timeout_seconds=60)
        task = asyncio.create_task(executor.run(sdk_command("s3", "ListBuckets"), context, ListSink()))
        await asyncio.wait_for(hang.connected.wait(), timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
