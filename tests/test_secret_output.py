"""Secret-returning reads against moto, on both executors: no ``--query`` brings a sensitive member back.

The reproductions of issue 10: ``ssm get-parameter --with-decryption`` with ``--query 'Parameter.*'``,
``'values(Parameter)'``, ``'Parameter."\\u0056alue"'`` (a JMESPath unicode escape), ``Parameter.Value`` and
none; ``secretsmanager get-secret-value``; ``lambda get-function-configuration`` of a function with
environment variables. Each is checked twice: straight from the executor into a plain sink (the executor
alone must keep the secret back), and through the orchestrator (what sinks and the plan result get).
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from engine.config import EngineSettings, ExecutorChoice
from engine.executors.base import ExecutionContext, Executor
from engine.executors.cli import CliExecutor
from engine.executors.sdk import SdkExecutor
from engine.policy import Policy
from engine.results import CommandResult, RunState
from engine.runtime import build_orchestrator, execution_context
from engine.sensitive import REDACTED
from engine.sinks import ListSink, OutputLine
from engine.validate import validate_text

pytestmark = pytest.mark.slow

PARAMETER_SECRET = f"tulip-{uuid.uuid4().hex[:10]}-meadow"
SECRET_STRING = f"harbour-{uuid.uuid4().hex[:10]}-lantern"
ENVIRONMENT_SECRET = f"pebble-{uuid.uuid4().hex[:10]}-orchard"
SECRETS = (PARAMETER_SECRET, SECRET_STRING, ENVIRONMENT_SECRET)

# id -> (command line, what its output must be: a check of the redacted and queried data)
READS: dict[str, tuple[str, Any]] = {
    "param-plain": (
        "aws ssm get-parameter --name /x --with-decryption",
        lambda data: data["Parameter"]["Name"] == "/x" and data["Parameter"]["Value"] == REDACTED,
    ),
    "param-star": (
        "aws ssm get-parameter --name /x --with-decryption --query 'Parameter.*'",
        lambda data: "/x" in data and "SecureString" in data and REDACTED in data,
    ),
    "param-values": (
        "aws ssm get-parameter --name /x --with-decryption --query 'values(Parameter)'",
        lambda data: "/x" in data and REDACTED in data,
    ),
    "param-escaped": (
        """aws ssm get-parameter --name /x --with-decryption --query 'Parameter."\\u0056alue"'""",
        lambda data: data == REDACTED,
    ),
    "param-value": (
        "aws ssm get-parameter --name /x --with-decryption --query Parameter.Value",
        lambda data: data == REDACTED,
    ),
    "secret-plain": (
        "aws secretsmanager get-secret-value --secret-id db",
        lambda data: data["Name"] == "db" and data["SecretString"] == REDACTED,
    ),
    "secret-query": (
        "aws secretsmanager get-secret-value --secret-id db --query '[Name, SecretString]'",
        lambda data: data == ["db", REDACTED],
    ),
    "function-plain": (
        "aws lambda get-function-configuration --function-name reports",
        lambda data: data["FunctionName"] == "reports" and ENVIRONMENT_SECRET not in json.dumps(data),
    ),
    "function-query": (
        "aws lambda get-function-configuration --function-name reports --query 'Environment.Variables.*'",
        lambda data: data is None,
    ),
}


def plan_text(*, with_put: bool) -> str:
    lines = ["summary: secret-returning reads", "mode: dependency_graph", "commands:"]
    if with_put:
        lines += [
            "  - id: put",
            f"    cli: aws ssm put-parameter --name /x --type SecureString --value {PARAMETER_SECRET}",
        ]
    for command_id, (cli, _) in READS.items():
        lines += [f"  - id: {command_id}", f"    cli: {json.dumps(cli)}"]
        if with_put and command_id.startswith("param-"):
            lines.append("    depends_on: [put]")
    return "\n".join(lines) + "\n"


def make_secrets(*, parameter: bool = True) -> None:
    if parameter:
        boto3.client("ssm").put_parameter(Name="/x", Type="SecureString", Value=PARAMETER_SECRET)
    boto3.client("secretsmanager").create_secret(Name="db", SecretString=SECRET_STRING)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = boto3.client("iam").create_role(RoleName="reports", AssumeRolePolicyDocument=json.dumps(trust))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return 1\n")
    boto3.client("lambda").create_function(
        FunctionName="reports",
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": {"DB_PASSWORD": ENVIRONMENT_SECRET, "MODE": "prod"}},
    )


def assert_no_secret(*texts: str) -> None:
    leaked = [secret for secret in SECRETS if any(secret in text for text in texts)]
    assert not leaked, f"leaked: {leaked}"


@pytest.fixture
def sdk() -> Iterator[SdkExecutor]:
    executor = SdkExecutor()
    yield executor
    executor.close()


@pytest.mark.parametrize("choice", ["cli", "sdk"])
async def test_no_query_gets_a_secret_out_of_either_executor(aws: str, sdk: SdkExecutor, choice: str) -> None:
    make_secrets()
    executor: Executor = CliExecutor() if choice == "cli" else sdk
    validated = validate_text(plan_text(with_put=False), Policy())
    context = ExecutionContext(endpoint_url=aws)
    sinks = {c.id: ListSink() for c in validated.commands}

    results: list[CommandResult] = await asyncio.gather(
        *(executor.run(c.command, context, sinks[c.id]) for c in validated.commands)
    )

    for validated_command, result in zip(validated.commands, results, strict=True):
        command_id = validated_command.id
        # A plain sink: nothing after the executor redacted anything.
        events = sinks[command_id].events
        assert_no_secret(result.model_dump_json(), *(e.model_dump_json() for e in events))
        assert result.ok, (command_id, result.error_code, result.error_message)
        assert result.executor == choice
        assert READS[command_id][1](result.data), (command_id, result.data)
        stdout = [e.line for e in events if isinstance(e, OutputLine) and e.stream == "stdout"]
        assert stdout == result.output.splitlines()
        assert result.data == (json.loads(result.output) if result.output else {})


async def test_both_executors_print_the_same_for_every_query(aws: str, sdk: SdkExecutor) -> None:
    make_secrets()
    validated = validate_text(plan_text(with_put=False), Policy())
    context = ExecutionContext(endpoint_url=aws)

    for validated_command in validated.commands:
        by_cli = await CliExecutor().run(validated_command.command, context, ListSink())
        by_sdk = await sdk.run(validated_command.command, context, ListSink())
        assert (by_cli.output, by_cli.data) == (by_sdk.output, by_sdk.data), validated_command.id


@pytest.mark.parametrize("choice", [ExecutorChoice.CLI, ExecutorChoice.AUTO])
async def test_a_plan_of_secret_reads_gives_sinks_and_the_result_no_secret(aws: str, choice: ExecutorChoice) -> None:
    make_secrets(parameter=False)
    settings = EngineSettings(executor=choice, command_timeout_seconds=60, retry={"max_attempts": 1})
    validated = validate_text(plan_text(with_put=True), Policy())
    sink = ListSink()

    result = await build_orchestrator(settings).execute(validated, execution_context(settings), sink)

    assert_no_secret(result.model_dump_json(), *(e.model_dump_json() for e in sink.events))
    assert result.state is RunState.SUCCEEDED, [(c.id, c.state, c.result) for c in result.commands]
    assert boto3.client("ssm").get_parameter(Name="/x", WithDecryption=True)["Parameter"]["Value"] == PARAMETER_SECRET
    expected_executor = "cli" if choice is ExecutorChoice.CLI else "sdk"
    for command_id, (_, check) in READS.items():
        outcome = result.command(command_id)
        assert outcome.result is not None and outcome.result.executor == expected_executor
        assert check(outcome.result.data), (command_id, outcome.result.data)
        assert sink.lines(command_id), f"{command_id} printed nothing"


STACK_SECRET = f"lantern-{uuid.uuid4().hex[:10]}-harbour"
# cloudformation's model does not mark ParameterValue sensitive: only its neighbour, the key `DbPassword`,
# says what it is, and a query can strip that neighbour off.
STACK_QUERIES = {
    "Stacks[0].Parameters[?ParameterKey=='DbPassword'].ParameterValue | [0]": REDACTED,
    "reverse(Stacks[0].Parameters[?ParameterKey=='DbPassword'].ParameterValue | [0])": REDACTED[::-1],
    "Stacks[0].Parameters[?starts_with(ParameterValue, 'lantern')].ParameterKey": [],
    "Stacks[0].Parameters[?ParameterKey=='Mode'].ParameterValue": ["prod"],
}


@pytest.mark.parametrize("choice", ["cli", "sdk"])
async def test_a_query_cannot_reach_a_secret_known_only_by_its_key(aws: str, sdk: SdkExecutor, choice: str) -> None:
    template = {
        "Parameters": {"DbPassword": {"Type": "String"}, "Mode": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    }
    boto3.client("cloudformation").create_stack(
        StackName="web",
        TemplateBody=json.dumps(template),
        Parameters=[
            {"ParameterKey": "DbPassword", "ParameterValue": STACK_SECRET},
            {"ParameterKey": "Mode", "ParameterValue": "prod"},
        ],
    )
    lines = ["summary: stack reads", "commands:"]
    for n, query in enumerate(STACK_QUERIES):
        cli = f'aws cloudformation describe-stacks --stack-name web --query "{query}"'
        lines += [f"  - id: q{n}", f"    cli: {json.dumps(cli)}"]
    validated = validate_text("\n".join(lines) + "\n", Policy())
    executor: Executor = CliExecutor() if choice == "cli" else sdk
    sink = ListSink()

    results = [await executor.run(c.command, ExecutionContext(endpoint_url=aws), sink) for c in validated.commands]

    texts = [r.model_dump_json() for r in results] + [e.model_dump_json() for e in sink.events]
    assert not any(STACK_SECRET in text or STACK_SECRET[::-1] in text for text in texts)
    assert [r.data for r in results] == list(STACK_QUERIES.values())
