"""Run a command as one boto3 API call (all pages of a paginated one), off the event loop.

Results are parsed the way the aws CLI parses them (timestamps and blobs as they came over the wire), so a
command gives the same ``data`` whichever executor runs it. In the worker thread, before the sink, the
result or a log sees it, every response is redacted by its shape and then queried with the command line's
``--query`` (``engine.executors.response``), as the CLI executor does with the aws CLI's output.

A thread cannot be killed: when a call times out or its task is cancelled, the HTTP request finishes in its
worker thread (bounded by the client's read timeout) and its result is thrown away.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import boto3
import botocore.session
from botocore import xform_name
from botocore.client import BaseClient
from botocore.config import Config
from botocore.eventstream import EventStream
from botocore.exceptions import BotoCoreError, ClientError
from botocore.paginate import Paginator
from botocore.response import StreamingBody

from engine import aws_errors
from engine.commands import ResolvedCommand
from engine.executors.base import ExecutionContext
from engine.executors.response import QUERY_FAILED, QueryError, render_json, shape_response
from engine.results import CommandResult
from engine.sinks import OutputLine, OutputSink

ClientKey = tuple[str | None, str | None, str, str | None]


@dataclass(frozen=True)
class _Outcome:
    """What a call in the worker thread produced; exceptions never cross back to the event loop."""

    data: Any = None
    error_code: str | None = None
    error_message: str | None = None


class SdkExecutor:
    """Runs commands that map to one API operation with boto3. One call of ``run`` is one attempt."""

    name = "sdk"

    def __init__(
        self,
        *,
        connect_timeout_seconds: float = 10.0,
        read_timeout_seconds: float = 60.0,
        max_body_bytes: int = 1024 * 1024,
        max_workers: int = 16,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self._config = Config(
            # Retries belong to the engine, which records every attempt; botocore must make exactly one.
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=connect_timeout_seconds,
            read_timeout=read_timeout_seconds,
            max_pool_connections=max_workers,
            user_agent_extra="cloudops",
        )
        # boto3 sessions, and making clients from them, are not thread-safe; the clients themselves are.
        self._lock = threading.Lock()
        self._sessions: dict[str | None, tuple[boto3.Session, botocore.session.Session]] = {}
        self._clients: dict[ClientKey, BaseClient] = {}
        # botocore builds a new paginator class on every get_paginator(); a paginator is immutable once made.
        self._paginators: dict[tuple[ClientKey, str], Paginator] = {}
        self._paging_params: dict[tuple[str, str], frozenset[str]] = {}
        # Its own pool: calls abandoned after a timeout must not starve the loop's default executor.
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="cloudops-sdk")

    @staticmethod
    def supports(command: ResolvedCommand) -> bool:
        """Whether ``command`` names one API operation with its request parameters."""
        return command.sdk_runnable

    def client_for(self, service: str, context: ExecutionContext) -> BaseClient:
        """The cached client for ``service`` in the context's profile, region and endpoint."""
        return self._client(_client_key(service, context))

    def _client(self, key: ClientKey) -> BaseClient:
        profile, region, service, endpoint_url = key
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                session, _ = self._session_for(profile)
                client = session.client(service, region_name=region, endpoint_url=endpoint_url, config=self._config)
                self._clients[key] = client
            return client

    def close(self) -> None:
        """Release the worker threads and connection pools. Calls still running finish on their own."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
            self._paginators.clear()

    async def run(self, command: ResolvedCommand, context: ExecutionContext, sink: OutputSink) -> CommandResult:
        started = time.monotonic()
        if not self.supports(command):
            return CommandResult(
                ok=False,
                executor=self.name,
                error_code="NotSdkRunnable",
                error_message=f"command {command.id} does not map to one API operation with parameters",
            )
        timeout = context.timeout_for(command)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, self._call, command, context)
        try:
            outcome = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return CommandResult(
                ok=False,
                executor=self.name,
                error_code=aws_errors.TIMEOUT,
                error_message=f"no answer within {timeout:g} s; the call was abandoned",
                timed_out=True,
                retryable=False,
                duration_seconds=time.monotonic() - started,
            )
        duration = time.monotonic() - started

        if outcome.error_code is None:
            output = render_json(outcome.data)
            await _emit_lines(sink, command.id, "stdout", output)
            return CommandResult(
                ok=True, executor=self.name, output=output, duration_seconds=duration, data=outcome.data
            )
        if outcome.error_code == QUERY_FAILED:
            # The call was made and only its --query failed, as it fails on the aws CLI; repeating the call
            # cannot fix the query, so it is not retryable.
            await _emit_lines(sink, command.id, "stderr", outcome.error_message or "")
            return CommandResult(
                ok=False,
                executor=self.name,
                error_code=QUERY_FAILED,
                error_message=outcome.error_message,
                duration_seconds=duration,
            )

        await _emit_lines(
            sink,
            command.id,
            "stderr",
            f"An error occurred ({outcome.error_code}) when calling the {command.operation} operation: "
            f"{outcome.error_message}",
        )
        if outcome.error_code == aws_errors.DRY_RUN_OPERATION:
            return CommandResult(
                ok=True,
                executor=self.name,
                dry_run=True,
                not_run_reason=outcome.error_message,
                duration_seconds=duration,
            )
        return CommandResult(
            ok=False,
            executor=self.name,
            error_code=outcome.error_code,
            error_message=outcome.error_message,
            retryable=aws_errors.is_safe_to_retry(outcome.error_code, command.risk),
            duration_seconds=duration,
        )

    # Everything below runs in a worker thread.

    def _session_for(self, profile: str | None) -> tuple[boto3.Session, botocore.session.Session]:
        # Called with the lock held.
        found = self._sessions.get(profile)
        if found is None:
            core = botocore.session.get_session()
            # What the aws CLI does: keep timestamps and blobs as sent, so both executors return equal data.
            core.get_component("response_parser_factory").set_parser_defaults(
                timestamp_parser=_identity, blob_parser=_identity
            )
            found = (boto3.Session(botocore_session=core, profile_name=profile), core)
            self._sessions[profile] = found
        return found

    def _call(self, command: ResolvedCommand, context: ExecutionContext) -> _Outcome:
        assert command.operation is not None and command.params is not None
        try:
            key = _client_key(command.service, context)
            client = self._client(key)
            if command.operation not in client.meta.service_model.operation_names:
                return _Outcome(
                    error_code=aws_errors.UNKNOWN_OPERATION,
                    error_message=f"{command.service} has no operation {command.operation}",
                )
            py_name = xform_name(command.operation)
            params = dict(command.params)
            if client.can_paginate(py_name) and self._should_paginate(command, context, params):
                paginator = self._paginators.get((key, py_name))
                if paginator is None:
                    paginator = self._paginators.setdefault((key, py_name), client.get_paginator(py_name))
                response = paginator.paginate(**params).build_full_result()
            else:
                params.pop("PaginationConfig", None)
                response = getattr(client, py_name)(**params)
            response.pop("ResponseMetadata", None)
            # Here, in the worker thread, so that a large response is walked off the event loop.
            return _Outcome(data=shape_response(command, self._jsonable_response(response)))
        except QueryError as exc:
            return _Outcome(error_code=QUERY_FAILED, error_message=str(exc))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            return _Outcome(
                error_code=str(error.get("Code") or "Unknown"),
                error_message=str(error.get("Message") or exc),
            )
        except BotoCoreError as exc:
            code = aws_errors.code_for_botocore_error(exc)
            message = str(exc)
            if code == aws_errors.PARAM_VALIDATION:
                # The aws CLI prints the same text after this heading; keep the two alike.
                message = message.removeprefix("Parameter validation failed:").strip()
            return _Outcome(error_code=code, error_message=message)
        except Exception as exc:
            # An executor reports failures, it does not raise them; the type tells a bug from an outage.
            return _Outcome(error_code="SdkError", error_message=f"{type(exc).__name__}: {exc}")

    def _should_paginate(self, command: ResolvedCommand, context: ExecutionContext, params: dict[str, Any]) -> bool:
        """All pages, except where the aws CLI itself would make a single call.

        The aws CLI turns its automatic pagination off when a command sets the operation's own paging
        parameters (``--max-keys``, ``--next-token``...). A CLI-form command must mean the same on both
        executors; an SDK-form command always gets every page, its limit parameter being the page size
        (``PaginationConfig`` caps the total).
        """
        if command.form != "cli":
            return True
        assert command.operation is not None
        names = self._paging_params.get((command.service, command.operation))
        if names is None:
            with self._lock:
                _, core = self._session_for(context.profile)
            model = core.get_paginator_model(command.service).get_paginator(command.operation)
            tokens = model.get("input_token", [])
            found = {tokens} if isinstance(tokens, str) else set(tokens)
            if model.get("limit_key"):
                found.add(model["limit_key"])
            names = self._paging_params.setdefault((command.service, command.operation), frozenset(found))
        return names.isdisjoint(params)

    def _jsonable_response(self, response: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, value in response.items():
            if isinstance(value, StreamingBody):
                data.update(self._read_body(key, value))
            elif isinstance(value, EventStream):
                value.close()
                data[key] = "(event stream not read)"
            else:
                data[key] = _jsonable(value)
        return data

    def _read_body(self, key: str, body: StreamingBody) -> dict[str, Any]:
        """A streamed payload (s3 GetObject's Body), read up to a limit: text when it is UTF-8, else base64."""
        try:
            raw = body.read(self.max_body_bytes + 1)
        finally:
            body.close()
        truncated = len(raw) > self.max_body_bytes
        raw = raw[: self.max_body_bytes]
        text = _utf8(raw, truncated)
        if text is None:
            return {
                key: base64.b64encode(raw).decode("ascii"),
                f"{key}Encoding": "base64",
                f"{key}Truncated": truncated,
            }
        return {key: text, f"{key}Encoding": "utf-8", f"{key}Truncated": truncated}


def _client_key(service: str, context: ExecutionContext) -> ClientKey:
    return (context.profile, context.region, service, context.endpoint_url)


def _utf8(raw: bytes, truncated: bool) -> str | None:
    # A cut at the limit may split the last character; the text before it is still text.
    for cut in range(4 if truncated else 1):
        try:
            return raw[: len(raw) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def _identity(value: Any) -> Any:
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        # As the aws CLI's JSON output renders bytes.
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


async def _emit_lines(sink: OutputSink, command_id: str, stream: Literal["stdout", "stderr"], text: str) -> None:
    for line in text.splitlines():
        await sink.emit(OutputLine(command_id=command_id, stream=stream, line=line))
