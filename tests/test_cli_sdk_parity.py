"""A CLI-form command that maps to one API operation means the same thing on both executors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from engine.commands import ResolvedCommand
from engine.config import ExecutorChoice
from engine.executors.base import ExecutionContext
from engine.executors.cli import CliExecutor
from engine.executors.sdk import SdkExecutor
from engine.executors.select import ExecutorSelector
from engine.results import CommandResult
from engine.risk import Risk
from engine.sinks import ListSink


def both_forms(service: str, operation: str, cli_args: list[str], params: dict[str, Any]) -> ResolvedCommand:
    """What the validator builds for a CLI command it could also express as an API request."""
    return ResolvedCommand(
        id="parity",
        form="cli",
        service=service,
        cli_service=cli_args[0],
        operation=operation,
        cli_operation=cli_args[1],
        cli_args=cli_args,
        params=params,
        risk=Risk.READ_ONLY,
        display="aws " + " ".join(cli_args),
    )


@pytest.fixture
def sdk() -> Iterator[SdkExecutor]:
    executor = SdkExecutor()
    yield executor
    executor.close()


async def run_both(command: ResolvedCommand, sdk: SdkExecutor, endpoint: str) -> tuple[CommandResult, CommandResult]:
    context = ExecutionContext(endpoint_url=endpoint)
    by_cli = await CliExecutor().run(command, context, ListSink())
    by_sdk = await sdk.run(command, context, ListSink())
    return by_cli, by_sdk


@pytest.mark.slow
async def test_list_buckets_gives_the_same_data(aws: str, sdk: SdkExecutor) -> None:
    s3 = boto3.client("s3")
    for name in ("parity-a", "parity-b"):
        s3.create_bucket(Bucket=name)

    by_cli, by_sdk = await run_both(both_forms("s3", "ListBuckets", ["s3api", "list-buckets"], {}), sdk, aws)

    assert by_cli.ok and by_sdk.ok
    assert [b["Name"] for b in by_cli.data["Buckets"]] == ["parity-a", "parity-b"]
    # Timestamps included: both keep them as the service sent them.
    assert by_cli.data == by_sdk.data
    assert by_cli.output == by_sdk.output


@pytest.mark.slow
async def test_describe_vpcs_gives_the_same_data(aws: str, sdk: SdkExecutor) -> None:
    boto3.client("ec2").create_vpc(CidrBlock="10.20.0.0/16")

    by_cli, by_sdk = await run_both(both_forms("ec2", "DescribeVpcs", ["ec2", "describe-vpcs"], {}), sdk, aws)

    assert by_cli.ok and by_sdk.ok
    assert {v["CidrBlock"] for v in by_cli.data["Vpcs"]} >= {"10.20.0.0/16"}
    assert by_cli.data == by_sdk.data


@pytest.mark.slow
async def test_own_page_size_gives_the_same_single_page(aws: str, sdk: SdkExecutor) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="parity-pages")
    for n in range(5):
        s3.put_object(Bucket="parity-pages", Key=f"k{n}", Body=b"x")
    command = both_forms(
        "s3",
        "ListObjectsV2",
        ["s3api", "list-objects-v2", "--bucket", "parity-pages", "--max-keys", "2"],
        {"Bucket": "parity-pages", "MaxKeys": 2},
    )

    by_cli, by_sdk = await run_both(command, sdk, aws)

    assert [o["Key"] for o in by_cli.data["Contents"]] == ["k0", "k1"]
    assert by_cli.data == by_sdk.data


@pytest.mark.slow
async def test_api_errors_get_the_same_code_and_message(aws: str, sdk: SdkExecutor) -> None:
    command = both_forms(
        "s3",
        "GetBucketLocation",
        ["s3api", "get-bucket-location", "--bucket", "no-such-bucket"],
        {"Bucket": "no-such-bucket"},
    )

    by_cli, by_sdk = await run_both(command, sdk, aws)

    assert not by_cli.ok and not by_sdk.ok
    assert (by_cli.error_code, by_cli.error_message, by_cli.retryable) == (
        by_sdk.error_code,
        by_sdk.error_message,
        by_sdk.retryable,
    )


@pytest.mark.slow
async def test_a_query_gives_the_same_output(aws: str, sdk: SdkExecutor) -> None:
    s3 = boto3.client("s3")
    for name in ("parity-a", "parity-b"):
        s3.create_bucket(Bucket=name)
    command = both_forms("s3", "ListBuckets", ["s3api", "list-buckets", "--query", "Buckets[].Name"], {})

    by_cli, by_sdk = await run_both(command, sdk, aws)

    assert by_cli.ok and by_sdk.ok
    assert by_cli.data == by_sdk.data == ["parity-a", "parity-b"]
    assert by_cli.output == by_sdk.output


@pytest.mark.slow
async def test_a_query_that_fails_on_the_response_fails_the_same_way(aws: str, sdk: SdkExecutor) -> None:
    boto3.client("s3").create_bucket(Bucket="parity-a")
    command = both_forms("s3", "ListBuckets", ["s3api", "list-buckets", "--query", "abs(Buckets[0].Name)"], {})

    by_cli, by_sdk = await run_both(command, sdk, aws)

    assert not by_cli.ok and not by_sdk.ok
    assert by_cli.error_code == by_sdk.error_code == "QueryFailed"
    assert by_cli.error_message == by_sdk.error_message
    assert not by_cli.retryable and not by_sdk.retryable


def test_selector_sends_a_command_where_the_setting_says(sdk: SdkExecutor) -> None:
    cli = CliExecutor()
    mapped = both_forms("s3", "ListBuckets", ["s3api", "list-buckets"], {})
    high_level = mapped.model_copy(
        update={"operation": None, "params": None, "high_level": True, "cli_args": ["s3", "ls"], "cli_service": "s3"}
    )
    sdk_form = mapped.model_copy(update={"form": "sdk", "cli_args": None})

    auto = ExecutorSelector(ExecutorChoice.AUTO, cli, sdk)
    assert auto.for_command(mapped) is sdk
    assert auto.for_command(high_level) is cli
    assert auto.for_command(sdk_form) is sdk

    prefer_sdk = ExecutorSelector(ExecutorChoice.SDK, cli, sdk)
    assert prefer_sdk.for_command(mapped) is sdk
    assert prefer_sdk.for_command(high_level) is cli
    assert prefer_sdk.for_command(sdk_form) is sdk

    prefer_cli = ExecutorSelector(ExecutorChoice.CLI, cli, sdk)
    assert prefer_cli.for_command(mapped) is cli
    assert prefer_cli.for_command(high_level) is cli
    assert prefer_cli.for_command(sdk_form) is sdk
