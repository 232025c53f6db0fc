"""The whole engine against a moto server: validation, both executors, the orchestrator, rollback, dry run."""

from __future__ import annotations

import boto3
import pytest

from engine.config import EngineSettings
from engine.plan import ExecutionMode
from engine.policy import Policy
from engine.results import RunState
from engine.runtime import build_orchestrator, execution_context
from engine.sinks import ListSink
from engine.validate import validate_text

pytestmark = pytest.mark.slow


def s3_ec2_plan(mode: ExecutionMode) -> str:
    """Bucket, tag, VPC and a listing. Tagging waits for the bucket except in parallel mode, which makes no
    promise of order, so there the tag step is left out."""
    bucket = f"reports-{mode.value.replace('_', '-')}"
    graph = mode is ExecutionMode.DEPENDENCY_GRAPH
    lines = [
        "summary: Reports bucket and a staging VPC",
        f"mode: {mode.value}",
        "on_failure: rollback",
        "commands:",
        "  - id: bucket",
        f"    cli: aws s3api create-bucket --bucket {bucket}",
        f"    rollback: aws s3api delete-bucket --bucket {bucket}",
    ]
    if mode is not ExecutionMode.PARALLEL:
        lines += [
            "  - id: tag",
            f"    cli: aws s3api put-bucket-tagging --bucket {bucket} --tagging 'TagSet=[{{Key=team,Value=ops}}]'",
            *(["    depends_on: [bucket]"] if graph else []),
        ]
    lines += [
        "  - id: vpc",
        "    sdk: {service: ec2, operation: CreateVpc, params: {CidrBlock: 10.20.0.0/16}}",
        "  - id: buckets",
        "    cli: aws s3 ls",
        *(["    depends_on: [tag]"] if graph else []),
    ]
    return "\n".join(lines)


def settings(**overrides) -> EngineSettings:
    base = {"retry": {"max_attempts": 2, "base_delay_seconds": 0.05}, "command_timeout_seconds": 60}
    base.update(overrides)
    return EngineSettings(**base)


async def run(text: str, *, dry_run: bool = False, **overrides):
    engine_settings = settings(**overrides)
    validated = validate_text(text, Policy())
    sink = ListSink()
    context = execution_context(engine_settings, dry_run=dry_run)
    result = await build_orchestrator(engine_settings).execute(validated, context, sink)
    return validated, result, sink


@pytest.mark.parametrize("mode", list(ExecutionMode))
async def test_s3_and_ec2_plan_runs_in_every_mode(aws: str, mode: ExecutionMode) -> None:
    _, result, sink = await run(s3_ec2_plan(mode))
    assert result.state is RunState.SUCCEEDED, [(c.id, c.state, c.result) for c in result.commands]
    s3 = boto3.client("s3")
    bucket = f"reports-{mode.value.replace('_', '-')}"
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    if mode != ExecutionMode.PARALLEL:
        assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "ops"}]
    vpcs = boto3.client("ec2").describe_vpcs(Filters=[{"Name": "cidr-block", "Values": ["10.20.0.0/16"]}])["Vpcs"]
    assert len(vpcs) == 1
    executors = {c.id: c.result.executor for c in result.commands}
    assert executors["buckets"] == "cli", "s3 ls is the CLI's own command"
    assert executors["vpc"] == "sdk"
    if mode is not ExecutionMode.PARALLEL:  # in parallel the listing may run before the bucket exists
        assert any(bucket in line for line in sink.lines("buckets"))


async def test_failing_plan_rolls_back_what_succeeded(aws: str) -> None:
    text = """
summary: Bucket, queue, then a tag on a bucket that does not exist
mode: sequential
on_failure: rollback
commands:
  - id: bucket
    cli: aws s3api create-bucket --bucket rollback-me
    rollback: aws s3api delete-bucket --bucket rollback-me
  - id: topic
    sdk: {service: sns, operation: CreateTopic, params: {Name: rollback-topic}}
    rollback:
      - sdk:
          service: sns
          operation: DeleteTopic
          params: {TopicArn: "arn:aws:sns:us-east-1:123456789012:rollback-topic"}
  - id: broken
    cli: aws s3api put-bucket-tagging --bucket no-such-bucket-here --tagging 'TagSet=[{Key=a,Value=b}]'
  - id: never
    cli: aws s3api create-bucket --bucket never-created
"""
    _, result, _ = await run(text)
    assert result.state is RunState.ROLLED_BACK
    assert result.command("broken").state is RunState.FAILED
    assert result.command("broken").result.error_code == "NoSuchBucket"
    assert result.command("never").state is RunState.SKIPPED
    assert result.command("bucket").state is RunState.ROLLED_BACK
    assert result.command("topic").state is RunState.ROLLED_BACK
    assert sorted(result.rolled_back) == ["bucket", "topic"]
    assert result.not_rolled_back == []
    names = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    assert "rollback-me" not in names and "never-created" not in names
    assert boto3.client("sns").list_topics()["Topics"] == []


async def test_dry_run_on_ec2_changes_nothing(aws: str) -> None:
    text = """
summary: Launch and tag, dry run
commands:
  - id: launch
    cli: aws ec2 run-instances --image-id ami-12c6146b --instance-type t3.micro --count 1
  - id: sdk-launch
    sdk: {service: ec2, operation: RunInstances, params: {ImageId: ami-12c6146b, MinCount: 1, MaxCount: 1}}
  - id: bucket
    cli: aws s3api create-bucket --bucket dry-run-bucket
"""
    _, result, _ = await run(text, dry_run=True)
    assert result.dry_run
    assert result.command("launch").state is RunState.SUCCEEDED
    assert result.command("launch").result.dry_run
    assert result.command("sdk-launch").state is RunState.SUCCEEDED
    assert result.command("bucket").state is RunState.SKIPPED
    assert "not run" in (result.command("bucket").skipped_reason or "")
    reservations = boto3.client("ec2").describe_instances()["Reservations"]
    assert reservations == []
    assert "dry-run-bucket" not in [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]


async def test_cli_form_command_runs_on_either_executor_with_the_same_effect(aws: str) -> None:
    text = """
summary: One bucket
commands:
  - id: bucket
    cli: aws s3api create-bucket --bucket parity-{executor}
"""
    for executor in ("cli", "sdk"):
        _, result, _ = await run(text.format(executor=executor), executor=executor)
        assert result.ok
        assert result.command("bucket").result.executor == executor
    names = {b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]}
    assert {"parity-cli", "parity-sdk"} <= names
