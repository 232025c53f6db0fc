"""The aws CLI executor against moto: real subprocesses, real aws CLI, real wire protocols."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest

from engine import aws_errors
from engine.commands import ResolvedCommand
from engine.executors.base import ExecutionContext, Executor
from engine.executors.cli import CliExecutor, build_cli_argv, build_cli_env
from engine.risk import Risk
from engine.sinks import Event, ListSink, OutputLine
from tests.throttle_proxy import ThrottleProxy, hanging_server


def cli_command(
    args: list[str],
    *,
    service: str = "s3",
    operation: str | None = None,
    params: dict | None = None,
    risk: Risk = Risk.READ_ONLY,
    high_level: bool = False,
    timeout_seconds: float | None = None,
) -> ResolvedCommand:
    return ResolvedCommand(
        id="cmd-1",
        form="cli",
        service=service,
        cli_service=args[0],
        operation=operation,
        cli_operation=args[1] if len(args) > 1 else args[0],
        cli_args=args,
        params=params,
        high_level=high_level,
        risk=risk,
        display="aws " + " ".join(args),
        timeout_seconds=timeout_seconds,
    )


class TimedSink(ListSink):
    """Keeps each event with the monotonic time it arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    async def emit(self, event: Event) -> None:
        self.times.append(time.monotonic())
        await super().emit(event)

    def stream_lines(self, stream: str) -> list[tuple[float, str]]:
        return [
            (at, e.line)
            for at, e in zip(self.times, self.events, strict=True)
            if isinstance(e, OutputLine) and e.stream == stream
        ]


def pids_running(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker`` (zombies have an empty one)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry.name))
    return found


def test_cli_executor_fits_the_executor_protocol() -> None:
    assert isinstance(CliExecutor(), Executor)
    assert CliExecutor().name == "cli"


# --- environment and argv ---------------------------------------------------------------------------------


def test_env_keeps_aws_settings_and_drops_everything_else() -> None:
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/home/ops",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "AWS_ACCESS_KEY_ID": "AKIA",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_SESSION_TOKEN": "token",
        "AWS_CONFIG_FILE": "/etc/aws/config",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials",
        "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token",
        "AWS_MAX_ATTEMPTS": "10",
        "AWS_DEFAULT_OUTPUT": "table",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "CLOUDOPS_POLICY": "/etc/policy.yaml",
        "OPENAI_API_KEY": "sk-1",
        "PYTHONPATH": "/evil",
        "LD_PRELOAD": "/evil.so",
    }
    env = build_cli_env(ExecutionContext(), environ)

    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "CLOUDOPS_POLICY", "OPENAI_API_KEY"):
        assert name not in env
    for name in ("PYTHONPATH", "LD_PRELOAD", "AWS_DEFAULT_OUTPUT"):
        assert name not in env
    for name in ("PATH", "LANG", "LC_ALL", "TZ", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[name] == environ[name]
    assert env["HOME"] != environ["HOME"], "aws runs with an empty home (no CLI aliases)"
    assert env["AWS_CONFIG_FILE"] == "/etc/aws/config"
    assert env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] == "/v2/credentials"
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == "/var/run/token"
    # The engine's own retry settings win over the environment's.
    assert env["AWS_MAX_ATTEMPTS"] == "1"
    assert env["AWS_RETRY_MODE"] == "standard"
    assert env["AWS_PAGER"] == ""


def test_env_takes_profile_region_and_endpoint_from_the_context_over_the_environment() -> None:
    environ = {"AWS_PROFILE": "dev", "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://old"}
    context = ExecutionContext(profile="prod", region="eu-west-1", endpoint_url="http://127.0.0.1:9")
    env = build_cli_env(context, environ)
    assert env["AWS_PROFILE"] == "prod"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"

    inherited = build_cli_env(ExecutionContext(), environ)
    assert inherited["AWS_PROFILE"] == "dev"
    assert inherited["AWS_REGION"] == "us-east-1"


def test_argv_ends_with_engine_options_so_they_override_the_commands() -> None:
    command = cli_command(["sqs", "list-queues", "--output", "text", "--region", "us-west-2"], service="sqs")
    context = ExecutionContext(profile="ops", region="eu-west-1", endpoint_url="http://127.0.0.1:9")
    argv = build_cli_argv("/opt/aws", command, context)
    # The aws CLI takes the last of repeated options.
    assert argv == [
        "/opt/aws",
        *command.cli_args,
        "--output",
        "json",
        "--profile",
        "ops",
        "--region",
        "eu-west-1",
        "--endpoint-url",
        "http://127.0.0.1:9",
    ]
    assert build_cli_argv("aws", command, ExecutionContext()) == ["aws", *command.cli_args, "--output", "json"]


async def test_child_process_sees_only_the_allowed_environment(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The executor starts whatever program it is configured with; a Python one can show its environment.
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-must-not-leak")
    monkeypatch.setenv("CLOUDOPS_DATABASE_PASSWORD", "hunter2")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    executor = CliExecutor(aws_cli_path=sys.executable)
    command = cli_command(["-c", "import json, os, sys; json.dump(dict(os.environ), sys.stdout)"])
    context = ExecutionContext(profile="ops", region="eu-west-1", endpoint_url=aws)

    result = await executor.run(command, context, ListSink())

    assert result.ok, result.error_message
    env = result.data
    assert not {"SLACK_BOT_TOKEN", "CLOUDOPS_DATABASE_PASSWORD", "OPENAI_API_KEY"} & set(env)
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_PROFILE"] == "ops"
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["AWS_ENDPOINT_URL"] == aws
    assert env["AWS_MAX_ATTEMPTS"] == "1"


# --- stderr parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stderr", "code", "message"),
    [
        (
            "\nAn error occurred (NoSuchBucket) when calling the GetBucketLocation operation: "
            "The specified bucket does not exist\n",
            "NoSuchBucket",
            "The specified bucket does not exist",
        ),
        (
            "An error occurred (Throttling) when calling the DescribeStacks operation (reached max retries: 4): "
            "Rate exceeded\n",
            "Throttling",
            "Rate exceeded",
        ),
        ("\nAn error occurred (404) when calling the HeadBucket operation: Not Found\n", "404", "Not Found"),
        (
            '\nParameter validation failed:\nInvalid bucket name "a b": Bucket name must match the regex\n',
            aws_errors.PARAM_VALIDATION,
            'Invalid bucket name "a b": Bucket name must match the regex',
        ),
        (
            "usage: aws [options] <command> <subcommand>\naws: error: argument --content-length: invalid int value\n",
            aws_errors.CLI_USAGE_ERROR,
            "aws: error: argument --content-length: invalid int value",
        ),
        ('\nCould not connect to the endpoint URL: "http://127.0.0.1:1/"\n', aws_errors.CONNECTION_ERROR, None),
        ('\nRead timeout on endpoint URL: "https://ec2.amazonaws.com/"\n', aws_errors.READ_TIMEOUT, None),
        (
            '\nUnable to locate credentials. You can configure credentials by running "aws configure".\n',
            aws_errors.NO_CREDENTIALS,
            None,
        ),
        ("\nThe config profile (prod) could not be found\n", aws_errors.PROFILE_NOT_FOUND, None),
        ("Traceback (most recent call last):\n  boom\n", None, None),
    ],
)
def test_cli_stderr_is_parsed_into_code_and_message(stderr: str, code: str | None, message: str | None) -> None:
    parsed_code, parsed_message = aws_errors.parse_cli_error(stderr)
    assert parsed_code == code
    if message is not None:
        assert parsed_message == message
    elif code is not None:
        assert parsed_message and parsed_message in stderr


# --- real aws CLI runs ------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_create_bucket_then_list_buckets_shows_it(aws: str) -> None:
    executor = CliExecutor()
    context = ExecutionContext(endpoint_url=aws)
    create = cli_command(["s3api", "create-bucket", "--bucket", "cli-made"], risk=Risk.MODIFY)
    sink = ListSink()

    created = await executor.run(create, context, sink)

    assert created.ok, created.error_message
    assert created.executor == "cli"
    assert created.exit_code == 0
    assert created.data == {"Location": "/cli-made"}
    boto3.client("s3").head_bucket(Bucket="cli-made")  # raises if moto does not have it

    listed = await executor.run(cli_command(["s3api", "list-buckets"]), context, sink)

    assert listed.ok
    assert [b["Name"] for b in listed.data["Buckets"]] == ["cli-made"]
    # Every stdout line went to the sink as well as into the output.
    assert [e.line for e in sink.events if isinstance(e, OutputLine) and e.stream == "stdout"] == (
        created.output + listed.output
    ).splitlines()


@pytest.mark.slow
async def test_api_error_code_and_message_come_from_stderr(aws: str) -> None:
    sink = ListSink()
    command = cli_command(["s3api", "get-bucket-location", "--bucket", "no-such-bucket"])

    result = await CliExecutor().run(command, ExecutionContext(endpoint_url=aws), sink)

    assert not result.ok
    assert result.error_code == "NoSuchBucket"
    assert result.error_message == "The specified bucket does not exist"
    assert result.exit_code == 255
    assert not result.retryable
    assert any(isinstance(e, OutputLine) and e.stream == "stderr" and "NoSuchBucket" in e.line for e in sink.events)


@pytest.mark.slow
async def test_arguments_the_cli_refuses_are_a_usage_error(aws: str) -> None:
    command = cli_command(["s3api", "list-buckets", "--no-such-option"])

    result = await CliExecutor().run(command, ExecutionContext(endpoint_url=aws), ListSink())

    assert not result.ok
    assert result.error_code == aws_errors.CLI_USAGE_ERROR
    assert "--no-such-option" in (result.error_message or "")
    assert not result.retryable


async def test_a_missing_aws_binary_is_a_failed_result(aws: str) -> None:
    executor = CliExecutor(aws_cli_path="/nonexistent/aws")

    result = await executor.run(cli_command(["s3api", "list-buckets"]), ExecutionContext(), ListSink())

    assert not result.ok
    assert result.error_code == "CliNotFound"


@pytest.mark.slow
async def test_lines_reach_the_sink_while_the_process_is_still_running(aws: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="many-pages")
    for n in range(25):
        s3.put_object(Bucket="many-pages", Key=f"key-{n:02d}", Body=b"x")
    sink = TimedSink()
    # `s3 ls` prints each page as it arrives; the proxy holds every request, so pages come apart in time.
    async with ThrottleProxy(aws, delay_seconds=0.4) as proxy:
        command = cli_command(["s3", "ls", "s3://many-pages", "--page-size", "10"], high_level=True)
        result = await CliExecutor().run(command, ExecutionContext(endpoint_url=proxy.url), sink)
        finished = time.monotonic()

    assert result.ok, result.error_message
    lines = sink.stream_lines("stdout")
    assert len(lines) == 25
    assert len(proxy.seen) == 3
    first_at, last_at = lines[0][0], lines[-1][0]
    # The first page was on the sink while two more delayed requests were still to come.
    assert last_at - first_at > 0.6
    assert finished - first_at > 0.6


@pytest.mark.slow
async def test_timeout_stops_the_process_and_is_not_retryable(aws: str) -> None:
    marker = f"timeout-{uuid.uuid4().hex[:12]}"
    # Long enough for the aws CLI to start and connect on a loaded machine.
    command = cli_command(["s3api", "head-bucket", "--bucket", marker], timeout_seconds=4)
    async with hanging_server() as hang:
        context = ExecutionContext(endpoint_url=hang.url)
        started = time.monotonic()
        result = await CliExecutor(kill_grace_seconds=1).run(command, context, ListSink())
        elapsed = time.monotonic() - started
        assert hang.connections >= 1  # it really was waiting on an answer

    assert not result.ok
    assert result.timed_out
    assert result.error_code == aws_errors.TIMEOUT
    assert not result.retryable
    assert 4 <= elapsed < 7
    assert pids_running(marker) == []


@pytest.mark.slow
async def test_cancelling_the_task_kills_the_process_and_propagates(aws: str) -> None:
    marker = f"cancel-{uuid.uuid4().hex[:12]}"
    command = cli_command(["s3api", "head-bucket", "--bucket", marker])
    async with hanging_server() as hang:
        context = ExecutionContext(endpoint_url=hang.url, default_timeout_seconds=60)
        task = asyncio.create_task(CliExecutor().run(command, context, ListSink()))
        await asyncio.wait_for(hang.connected.wait(), timeout=30)
        pids = pids_running(marker)
        assert pids, "the aws process should be running"

        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert all(not os.path.exists(f"/proc/{pid}") for pid in pids)
    assert pids_running(marker) == []


@pytest.mark.slow
async def test_endpoint_url_from_the_context_reaches_sqs(aws: str) -> None:
    # The aws CLI 1.x ignores AWS_ENDPOINT_URL for sqs; only the injected option gets it to moto.
    command = cli_command(["sqs", "create-queue", "--queue-name", "cli-queue"], service="sqs", risk=Risk.MODIFY)

    result = await CliExecutor().run(command, ExecutionContext(endpoint_url=aws), ListSink())

    assert result.ok, result.error_message
    assert result.data["QueueUrl"].endswith("/cli-queue")
    assert any(url.endswith("/cli-queue") for url in boto3.client("sqs").list_queues()["QueueUrls"])


@pytest.mark.slow
async def test_dry_run_operation_counts_as_success_and_runs_nothing(aws: str) -> None:
    command = cli_command(
        [
            "ec2",
            "run-instances",
            "--image-id",
            "ami-12345678",
            "--count",
            "1",
            "--instance-type",
            "t2.micro",
            "--dry-run",
        ],
        service="ec2",
        risk=Risk.MODIFY,
    )

    result = await CliExecutor().run(command, ExecutionContext(endpoint_url=aws, dry_run=True), ListSink())

    assert result.ok
    assert result.dry_run
    assert result.error_code is None
    assert "DryRun flag is set" in (result.not_run_reason or "")
    assert boto3.client("ec2").describe_instances()["Reservations"] == []


def test_aws_runs_with_an_empty_home_so_cli_aliases_cannot_redefine_commands(tmp_path) -> None:
    home = tmp_path / "operator"
    alias = home / ".aws" / "cli" / "alias"
    alias.parent.mkdir(parents=True)
    alias.write_text("[toplevel]\nwhoami = !touch /tmp/pwned\n")
    env = build_cli_env(ExecutionContext(), {"HOME": str(home), "PATH": "/usr/bin"})
    assert env["HOME"] != str(home)
    assert not (Path(env["HOME"]) / ".aws").exists()
    assert env["AWS_CONFIG_FILE"] == str(home / ".aws" / "config")
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == str(home / ".aws" / "credentials")


# --- API responses: redacted by shape, queried by CloudOps, never streamed raw ---------------------------

BARE_SECRET = "tulip-meadow-lantern-4417"


def fake_aws(code: str, **kwargs: object) -> tuple[CliExecutor, ResolvedCommand]:
    """An executor whose ``aws`` is this Python, running ``code`` as if it were the operation's aws CLI."""
    kwargs.setdefault("service", "ssm")
    kwargs.setdefault("operation", "GetParameter")
    query = kwargs.pop("query", None)
    args = ["-c", code, *(["--query", query] if query else [])]
    return CliExecutor(aws_cli_path=sys.executable), cli_command(args, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kept"),
    [
        (["ssm", "get-parameter", "--name", "/x", "--query", "Parameter.*"], ["ssm", "get-parameter", "--name", "/x"]),
        (["ssm", "get-parameter", "--query=Parameter.Value", "--name", "/x"], ["ssm", "get-parameter", "--name", "/x"]),
        # The aws CLI reads any unique prefix of a global option, and the last of repeated ones.
        (
            ["ssm", "get-parameter", "--quer", "a", "--name", "/x", "--query", "b"],
            ["ssm", "get-parameter", "--name", "/x"],
        ),
        (["ssm", "get-parameter", "--name", "--queue"], ["ssm", "get-parameter", "--name", "--queue"]),
    ],
)
def test_an_api_operation_runs_without_its_query(args: list[str], kept: list[str]) -> None:
    command = cli_command(args, service="ssm", operation="GetParameter")
    assert build_cli_argv("aws", command, ExecutionContext()) == ["aws", *kept, "--output", "json"]


def test_a_command_that_is_not_one_api_operation_keeps_its_query_for_the_aws_cli() -> None:
    command = cli_command(["s3", "ls", "--query", "x"], high_level=True)
    assert build_cli_argv("aws", command, ExecutionContext()) == ["aws", "s3", "ls", "--query", "x", "--output", "json"]


async def test_a_secret_returning_response_is_redacted_and_queried_before_the_sink_sees_it() -> None:
    response = {"Parameter": {"Name": "/x", "Type": "SecureString", "Value": BARE_SECRET, "Version": 1}}
    executor, command = fake_aws(f"import json; print(json.dumps({response!r}, indent=4))", query="Parameter.*")
    sink = ListSink()

    result = await executor.run(command, ExecutionContext(), sink)

    assert result.ok, result.error_message
    assert result.data == ["/x", "SecureString", "[REDACTED]", 1]
    assert sink.lines() == result.output.splitlines() == json.dumps(result.data, indent=4).splitlines()
    assert BARE_SECRET not in result.model_dump_json() + "".join(e.model_dump_json() for e in sink.events)


async def test_an_api_operations_stdout_reaches_the_sink_only_once_the_process_is_over(tmp_path: Path) -> None:
    done = tmp_path / "done"
    code = (
        "import pathlib, sys, time\n"
        "print('{'); sys.stdout.flush(); time.sleep(1)\n"
        'print(\'"Parameter": {"Name": "/x"}}\'); sys.stdout.flush()\n'
        f"pathlib.Path({str(done)!r}).touch()\n"
    )
    executor, command = fake_aws(code)
    seen_running: list[bool] = []

    class Watching(ListSink):
        async def emit(self, event: Event) -> None:
            if isinstance(event, OutputLine) and event.stream == "stdout":
                seen_running.append(not done.exists())
            await super().emit(event)

    result = await executor.run(command, ExecutionContext(), Watching())

    assert result.ok and result.data == {"Parameter": {"Name": "/x"}}
    assert seen_running and not any(seen_running)


async def test_unreadable_output_of_a_secret_returning_operation_is_withheld() -> None:
    executor, command = fake_aws(f"print('Value: {BARE_SECRET}'); print('this is not JSON')")
    sink = ListSink()

    result = await executor.run(command, ExecutionContext(), sink)

    assert result.ok
    assert result.data is None
    assert "withheld" in result.output and "returns secrets" in result.output
    assert sink.lines() == result.output.splitlines()
    assert BARE_SECRET not in result.model_dump_json() + "".join(e.model_dump_json() for e in sink.events)


async def test_unreadable_output_of_an_ordinary_operation_is_passed_on_as_text() -> None:
    executor, command = fake_aws("print('not JSON'); print('either')", service="s3", operation="ListBuckets")
    sink = ListSink()

    result = await executor.run(command, ExecutionContext(), sink)

    assert result.ok
    assert result.output == "not JSON\neither\n"
    assert sink.lines() == ["not JSON", "either"]


async def test_a_query_that_fails_on_the_response_fails_the_command_and_says_the_call_was_made() -> None:
    executor, command = fake_aws('print(\'{"Parameter": {"Version": 1}}\')', query="length(Parameter.Version)")
    sink = ListSink()

    result = await executor.run(command, ExecutionContext(), sink)

    assert not result.ok
    assert result.error_code == "QueryFailed"
    assert not result.retryable
    assert "GetParameter call succeeded" in (result.error_message or "")
    assert [e.stream for e in sink.events if isinstance(e, OutputLine)] == ["stderr"]
