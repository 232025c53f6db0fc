"""Run a command with the real ``aws`` CLI as a subprocess, streaming its output line by line.

The process never sees a shell or the bot's own secrets: the argv comes from the validated command, the
environment is rebuilt from an allow list, and the process gets its own process group so a timeout or a
cancellation can stop it and anything it started.

Output, by kind of command:

* One API operation (``s3api list-buckets``, ``ssm get-parameter``): ``aws`` runs without the plan's
  ``--query`` and prints the whole response as JSON. Its stdout is kept, not streamed: the aws CLI prints
  an API response in one piece when the call is over anyway, and the raw text holds every secret the
  response has. When the process ends, the JSON is parsed, redacted by shape and queried
  (``engine.executors.response``), and that is what the sink, the result and its ``data`` get, exactly as
  from the SDK executor. Stdout that cannot be read as the response (cut at the size limit, not JSON) is
  passed on as text when the operation's output cannot hold a sensitive member, and withheld, with a line
  saying so, when it can: raw text of a secret-returning operation is never passed on.
* Anything else (``s3 cp``, ``s3 ls``, reviewed customizations): stdout is streamed line by line as it
  arrives, with the plan's ``--query`` left to the aws CLI; the redacting sink and ``redact_result`` apply.

Stderr is always streamed as it arrives: it is where errors are, and it never holds a response.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import tempfile
import time
from collections.abc import Mapping
from typing import Any, Literal

from engine import aws_errors
from engine.commands import ResolvedCommand
from engine.executors.base import ExecutionContext
from engine.executors.response import (
    QUERY_FAILED,
    QueryError,
    read_cli_response,
    shaped_by_cloudops,
    without_query,
)
from engine.results import CommandResult
from engine.sinks import OutputLine, OutputSink

# Variables copied from the engine's environment when set. Everything else is dropped, so tokens for
# Slack, LLM providers or the engine's own settings never reach a process the plan chose the arguments of.
_PASSTHROUGH = frozenset(
    {
        "PATH",
        "HOME",
        "LANG",
        "TZ",
        # Network settings the operator gave the whole process; boto3 in the SDK executor honours them too.
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        # Credentials and where to find them.
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CA_BUNDLE",
        "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_STS_REGIONAL_ENDPOINTS",
        "AWS_USE_FIPS_ENDPOINT",
        "AWS_USE_DUALSTACK_ENDPOINT",
        "AWS_METADATA_SERVICE_TIMEOUT",
        "AWS_METADATA_SERVICE_NUM_ATTEMPTS",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    }
)
_PASSTHROUGH_PREFIXES = ("LC_", "AWS_CONTAINER_", "AWS_EC2_METADATA_", "AWS_ENDPOINT_URL_")

# Defaults taken from the engine's environment when the context leaves them unset, which is what boto3
# does in the SDK executor: both executors then talk to the same account, region and endpoint.
_CONTEXT_DEFAULTS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")

_READ_CHUNK = 64 * 1024
_MAX_LINE_CHARS = 16 * 1024
_MAX_STDOUT_BYTES = 16 * 1024 * 1024
_MAX_STDERR_BYTES = 1024 * 1024
_MAX_ERROR_MESSAGE_CHARS = 4000


def build_cli_env(context: ExecutionContext, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The complete environment for an ``aws`` process: an allow list of ``environ`` plus the context."""
    source = os.environ if environ is None else environ
    env = {
        name: value
        for name, value in source.items()
        if name in _PASSTHROUGH or name.startswith(_PASSTHROUGH_PREFIXES) or name in _CONTEXT_DEFAULTS
    }
    if context.profile:
        env["AWS_PROFILE"] = context.profile
        env.pop("AWS_DEFAULT_PROFILE", None)
    if context.region:
        env["AWS_REGION"] = context.region
        env["AWS_DEFAULT_REGION"] = context.region
    if context.endpoint_url:
        env["AWS_ENDPOINT_URL"] = context.endpoint_url
    env["AWS_PAGER"] = ""
    _pin_aws_files(env, source)
    # Retries belong to the engine, which records every attempt; the CLI must make exactly one.
    env["AWS_MAX_ATTEMPTS"] = "1"
    env["AWS_RETRY_MODE"] = "standard"
    # No PYTHONUNBUFFERED: the commands that print as they go (s3 ls, cp, sync) write their lines out
    # themselves, the JSON of an API call is written at the end anyway, and unbuffered writes made every
    # run about 15% slower.
    return env


def _pin_aws_files(env: dict[str, str], source: Mapping[str, str]) -> None:
    """Keep the operator's AWS config and credentials files, but run ``aws`` with an empty home.

    aws CLI 1.x reads ``~/.aws/cli/alias``, where an alias can redefine a command or run a shell (``!``
    aliases); the validator never sees those, so the process must not either.
    """
    home = source.get("HOME") or os.path.expanduser("~")
    env.setdefault("AWS_CONFIG_FILE", os.path.join(home, ".aws", "config"))
    env.setdefault("AWS_SHARED_CREDENTIALS_FILE", os.path.join(home, ".aws", "credentials"))
    env["HOME"] = _empty_home()


@functools.cache
def _empty_home() -> str:
    return tempfile.mkdtemp(prefix="cloudops-aws-home-")


def build_cli_argv(aws_cli_path: str, command: ResolvedCommand, context: ExecutionContext) -> list[str]:
    """The argv for ``command``. Engine options come last so that they win over any in the command.

    A command that is one API operation runs without its ``--query``, which CloudOps applies itself.
    """
    if not command.cli_args:
        raise ValueError(f"command {command.id} has no aws CLI arguments")
    args = command.cli_args
    if shaped_by_cloudops(command):
        # The aws CLI would apply it to the unredacted response; CloudOps applies it after redaction.
        args = without_query(args)
    argv = [aws_cli_path, *args, "--output", "json"]
    # The environment carries these too; the options also beat any the plan's command line sets, since
    # where a command runs is the operator's choice.
    if context.profile:
        argv += ["--profile", context.profile]
    if context.region:
        argv += ["--region", context.region]
    if context.endpoint_url:
        # The aws CLI 1.x ignores AWS_ENDPOINT_URL for some services (sqs); the option always works.
        argv += ["--endpoint-url", context.endpoint_url]
    return argv


class _Capture:
    """Bytes of one stream kept up to a limit; the stream itself is always read to the end."""

    def __init__(self, limit: int):
        self._limit = limit
        self._data = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = self._limit - len(self._data)
        if len(chunk) > room:
            self.truncated = True
            chunk = chunk[: max(room, 0)]
        self._data += chunk

    def text(self) -> str:
        return self._data.decode("utf-8", errors="replace")


async def _pump(
    stream: asyncio.StreamReader,
    name: Literal["stdout", "stderr"],
    capture: _Capture,
    sink: OutputSink,
    command_id: str,
    *,
    live: bool = True,
) -> None:
    """Read ``stream`` to EOF, keeping its bytes and, when ``live``, sending each line to the sink as it
    completes."""

    async def emit(raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").removesuffix("\r")
        await sink.emit(OutputLine(command_id=command_id, stream=name, line=line))

    pending = b""
    while chunk := await stream.read(_READ_CHUNK):
        capture.add(chunk)
        if not live:
            continue
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            await emit(raw)
        # A line without an end (a huge JSON document on one line) must not grow without bound.
        while len(pending) > _MAX_LINE_CHARS:
            await emit(pending[:_MAX_LINE_CHARS])
            pending = pending[_MAX_LINE_CHARS:]
    if pending:
        await emit(pending)


async def _emit_text(sink: OutputSink, command_id: str, text: str) -> None:
    """Send kept stdout to the sink in the lines (and line-length cuts) ``_pump`` would have sent."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    for line in lines:
        line = line.removesuffix("\r")
        for start in range(0, max(len(line), 1), _MAX_LINE_CHARS):
            await sink.emit(
                OutputLine(command_id=command_id, stream="stdout", line=line[start : start + _MAX_LINE_CHARS])
            )


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class CliExecutor:
    """Runs CLI-form commands with the ``aws`` CLI. One call of ``run`` is one attempt."""

    name = "cli"

    def __init__(
        self,
        aws_cli_path: str = "aws",
        *,
        kill_grace_seconds: float = 2.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.aws_cli_path = aws_cli_path
        self.kill_grace_seconds = kill_grace_seconds
        # None means the engine's environment as it is at each run, not as it was at construction.
        self._environ = environ

    async def run(self, command: ResolvedCommand, context: ExecutionContext, sink: OutputSink) -> CommandResult:
        started = time.monotonic()
        if not command.cli_args:
            return _failure(
                "NotCliRunnable", f"command {command.id} has no aws command line (an SDK-form command)", started
            )
        argv = build_cli_argv(self.aws_cli_path, command, context)
        shaped = shaped_by_cloudops(command)
        env = build_cli_env(context, self._environ)
        timeout = context.timeout_for(command)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except FileNotFoundError:
            return _failure("CliNotFound", f"the aws CLI was not found at {self.aws_cli_path!r}", started)
        except OSError as exc:
            return _failure("CliSpawnError", f"could not start the aws CLI: {exc}", started)

        assert proc.stdout is not None and proc.stderr is not None
        out = _Capture(_MAX_STDOUT_BYTES)
        err = _Capture(_MAX_STDERR_BYTES)
        readers = [
            asyncio.create_task(_pump(proc.stdout, "stdout", out, sink, command.id, live=not shaped)),
            asyncio.create_task(_pump(proc.stderr, "stderr", err, sink, command.id)),
        ]
        waiter = asyncio.create_task(proc.wait())
        tasks = [*readers, waiter]
        timed_out = False
        try:
            # asyncio.wait leaves the tasks running on timeout, so output read so far is kept.
            done, pending = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and (error := task.exception()) is not None:
                    raise error
            if pending:
                timed_out = True
                await self._terminate(proc)
                # Output already written to the pipes is still worth showing; a grandchild that escaped
                # the group could hold them open, so the wait is bounded.
                await asyncio.wait(readers, timeout=self.kill_grace_seconds)
        except BaseException:
            # Cancellation (or a failing sink): stop the process before letting the error through.
            await self._terminate(proc)
            await _cancel(tasks)
            raise
        await _cancel(tasks)
        returncode = proc.returncode
        duration = time.monotonic() - started
        stdout, stderr = out.text(), err.text()
        data: Any = None
        if shaped:
            # Only now that the process is over does anything of its stdout reach the sink or the result.
            complete = returncode == 0 and not timed_out
            try:
                stdout, data = await asyncio.to_thread(read_cli_response, command, stdout, out.truncated, complete)
            except QueryError as exc:
                await sink.emit(OutputLine(command_id=command.id, stream="stderr", line=str(exc)))
                return CommandResult(
                    ok=False,
                    executor=self.name,
                    exit_code=returncode,
                    error_code=QUERY_FAILED,
                    error_message=str(exc),
                    duration_seconds=duration,
                )
            await _emit_text(sink, command.id, stdout)
        elif returncode == 0 and not out.truncated:
            data = _parse_json(stdout, command)

        if timed_out:
            return CommandResult(
                ok=False,
                executor=self.name,
                output=stdout,
                exit_code=returncode,
                error_code=aws_errors.TIMEOUT,
                error_message=f"no answer within {timeout:g} s; the aws process was stopped",
                timed_out=True,
                retryable=False,
                duration_seconds=duration,
            )
        if returncode == 0:
            return CommandResult(
                ok=True, executor=self.name, output=stdout, exit_code=0, duration_seconds=duration, data=data
            )
        code, message = aws_errors.parse_cli_error(stderr)
        if code is None:
            # Exit status 2 is argparse refusing the arguments; anything else is a failure we cannot name.
            code = aws_errors.CLI_USAGE_ERROR if returncode in (2, 252) else aws_errors.CLI_ERROR
            message = stderr.strip() or f"aws exited with status {returncode}"
        message = _clip(message or "")
        if code == aws_errors.DRY_RUN_OPERATION:
            return CommandResult(
                ok=True,
                executor=self.name,
                output=stdout,
                exit_code=returncode,
                dry_run=True,
                not_run_reason=message,
                duration_seconds=duration,
            )
        return CommandResult(
            ok=False,
            executor=self.name,
            output=stdout,
            exit_code=returncode,
            error_code=code,
            error_message=message,
            retryable=aws_errors.is_safe_to_retry(code, command.risk),
            duration_seconds=duration,
        )

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM to the process group, SIGKILL after the grace period; returns once the leader is gone."""
        if proc.returncode is not None:
            # The aws process is gone; anything it started in its group may not be, and may hold the pipes.
            _signal_group(proc.pid, signal.SIGKILL)
            return
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.kill_grace_seconds)
        except TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
        except asyncio.CancelledError:
            # Cancelled again while waiting for a polite exit: do not leave the process behind.
            _signal_group(proc.pid, signal.SIGKILL)
            raise


async def _cancel(tasks: list[asyncio.Task[object]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _parse_json(stdout: str, command: ResolvedCommand) -> object:
    if not stdout.strip():
        # The CLI prints nothing for an empty API response; say so in the same terms the SDK executor does.
        return None if command.high_level else {}
    try:
        return json.loads(stdout)
    except ValueError:
        return None


def _clip(text: str) -> str:
    if len(text) <= _MAX_ERROR_MESSAGE_CHARS:
        return text
    return text[: _MAX_ERROR_MESSAGE_CHARS - 1] + "…"


def _failure(code: str, message: str, started: float) -> CommandResult:
    return CommandResult(
        ok=False,
        executor=CliExecutor.name,
        error_code=code,
        error_message=message,
        duration_seconds=time.monotonic() - started,
    )
