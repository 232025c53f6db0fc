"""Redaction of parsed JSON and boto3 results, of finished results, and of events on their way to a sink."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.redaction.keys import (
    PAIR_NAME_KEYS,
    PAIR_VALUE_KEYS,
    is_enum_value,
    is_sensitive_key,
    names_secret,
    normalize,
)
from engine.redaction.shapes import REDACTED
from engine.redaction.stream import StreamRedactor, redact_text, user_data_has_secret
from engine.results import CommandOutcome, CommandResult, PlanResult, RollbackOutcome, RunState
from engine.sinks import CommandStateChanged, Event, OutputLine, OutputSink, PlanStateChanged

# --- parsed JSON and boto3 results ------------------------------------------------------------------------


def redact_data(obj: Any) -> Any:
    """A redacted copy of parsed JSON or a boto3 result.

    Strings and bytes under secret keys are replaced; every other string is redacted as text; booleans,
    numbers and None stay (``"ManageMasterUserPassword": true`` is a setting, not a password). Containers
    are always new, so the caller's object is never shared with or changed by the copy.
    """
    return _redact_node(obj, secret=False)


def _redact_node(obj: Any, *, secret: bool) -> Any:
    if isinstance(obj, Mapping):
        return _redact_mapping(obj)
    if isinstance(obj, list | tuple):
        if not secret and obj and all(isinstance(item, str) for item in obj):
            # A list of lines (a file's, a log's) is read as one text: a key block or a CSV table may span
            # its items.
            redactor = StreamRedactor()
            items = [redactor.feed(item) for item in obj]
        else:
            items = [_redact_node(item, secret=secret) for item in obj]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, str):
        return (REDACTED if obj else obj) if secret else redact_text(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        # Binary under a non-secret key is ciphertext or payload: nothing readable to redact.
        return REDACTED if secret else obj
    return obj


def _redact_mapping(mapping: Mapping[Any, Any]) -> dict[Any, Any]:
    pair_secret = any(
        isinstance(value, str)
        and (
            (normalize(str(key)) in PAIR_NAME_KEYS and names_secret(value))
            or (normalize(str(key)) == "type" and value == "SecureString")
        )
        for key, value in mapping.items()
    )
    redacted: dict[Any, Any] = {}
    for key, value in mapping.items():
        name = str(key)
        norm = normalize(name)
        if norm == "userdata":
            redacted[key] = _redact_user_data(value)
        elif pair_secret and norm in PAIR_VALUE_KEYS:
            redacted[key] = _redact_node(value, secret=True)
        elif isinstance(value, str) and is_enum_value(name, value):
            redacted[key] = value
        else:
            redacted[key] = _redact_node(value, secret=is_sensitive_key(name))
    return redacted


def _redact_user_data(value: Any) -> Any:
    if isinstance(value, Mapping):
        # describe-instance-attribute wraps it: {"UserData": {"Value": "<base64>"}}
        return {k: (_redact_user_data(v) if normalize(str(k)) == "value" else redact_data(v)) for k, v in value.items()}
    if isinstance(value, str):
        return REDACTED if user_data_has_secret(value) else redact_text(value)
    return redact_data(value)


# --- results and events ------------------------------------------------------------------------------------


def _redact_optional(text: str | None) -> str | None:
    return None if text is None else redact_text(text)


def redact_result(result: CommandResult) -> CommandResult:
    """A redacted copy of ``result``: output, error messages (of the result and of every attempt), the
    dry-run reason and the parsed data."""
    return result.model_copy(
        update={
            "output": redact_text(result.output),
            "error_message": _redact_optional(result.error_message),
            "not_run_reason": _redact_optional(result.not_run_reason),
            "attempts": [
                attempt.model_copy(update={"error_message": _redact_optional(attempt.error_message)})
                for attempt in result.attempts
            ],
            "data": redact_data(result.data),
        }
    )


def _redact_rollback(outcome: RollbackOutcome) -> RollbackOutcome:
    return outcome.model_copy(
        update={
            "display": redact_text(outcome.display),
            "result": None if outcome.result is None else redact_result(outcome.result),
        }
    )


def _redact_outcome(outcome: CommandOutcome) -> CommandOutcome:
    return outcome.model_copy(
        update={
            "display": redact_text(outcome.display),
            "skipped_reason": _redact_optional(outcome.skipped_reason),
            "result": None if outcome.result is None else redact_result(outcome.result),
            "rollback": [_redact_rollback(step) for step in outcome.rollback],
        }
    )


def redact_plan_result(result: PlanResult) -> PlanResult:
    """A redacted copy of ``result``: every command's result and every rollback step's result."""
    return result.model_copy(update={"commands": [_redact_outcome(outcome) for outcome in result.commands]})


class RedactingSink:
    """An ``OutputSink`` that redacts each event and forwards the redacted copy to ``inner``.

    Lines are redacted with one ``StreamRedactor`` per (command, stream), so state such as an open PEM
    block never leaks between commands or between stdout and stderr. The state is dropped when a command
    starts an attempt or finishes, so a timed-out attempt cut inside a PEM block does not blank the next.
    """

    def __init__(self, inner: OutputSink) -> None:
        self._inner = inner
        self._streams: dict[tuple[str, str], StreamRedactor] = {}
        self._secret_output: set[str] = set()

    def mark_secret_output(self, command_id: str) -> None:
        """Redact every line this command prints: its output is a bare secret (``prints_bare_secret``)."""
        self._secret_output.add(command_id)
        for (cid, _stream), redactor in self._streams.items():
            if cid == command_id:
                redactor.redact_all = True

    async def emit(self, event: Event) -> None:
        await self._inner.emit(self.redact_event(event))

    def redact_event(self, event: Event) -> Event:
        if isinstance(event, OutputLine):
            return event.model_copy(update={"line": self._stream(event.command_id, event.stream).feed(event.line)})
        if isinstance(event, CommandStateChanged):
            if event.state is RunState.RUNNING or event.state.finished:
                self._forget(event.command_id, finished=event.state.finished)
            return event.model_copy(
                update={
                    "display": redact_text(event.display),
                    "reason": _redact_optional(event.reason),
                    "result": None if event.result is None else redact_result(event.result),
                }
            )
        if isinstance(event, PlanStateChanged):
            return event.model_copy(
                update={"result": None if event.result is None else redact_plan_result(event.result)}
            )
        return event.model_copy()

    def _stream(self, command_id: str, stream: str) -> StreamRedactor:
        key = (command_id, stream)
        redactor = self._streams.get(key)
        if redactor is None:
            redactor = StreamRedactor(redact_all=command_id in self._secret_output)
            self._streams[key] = redactor
        return redactor

    def _forget(self, command_id: str, *, finished: bool) -> None:
        for key in [key for key in self._streams if key[0] == command_id]:
            del self._streams[key]
        if finished:
            self._secret_output.discard(command_id)
