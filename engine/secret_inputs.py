"""Secret inputs withheld from every stored plan, and kept for the run in this process's memory only.

A plan may carry values botocore's models mark sensitive (``iam create-login-profile --password``,
``secretsmanager put-secret-value --secret-string``). The executor needs them; nothing else may keep them.
So the plan that is stored, hashed, approved, shown and sent anywhere is the *stored plan*: every sensitive
input value in it is replaced by a marker ``[[withheld-secret:<id>]]``, and the values stay in this
process's memory, keyed by marker, until the plan is validated again to run.

The marker's id is an HMAC of the value under a key made when the process starts: the same plan seals to the
same stored plan (so proposals stay idempotent and approvals bind to its hash) while nobody holding the store
can test guesses of the value. After a restart, or in another process, the values are gone: a plan that
needs them is refused with a clear reason and must be proposed again. Failing closed is the point.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import shlex
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from engine.commands import ResolvedCommand
from engine.plan import CommandSpec, Plan, PlanCommand
from engine.redact import register_secret
from engine.sensitive import sensitive_input_values

MARKER = re.compile(r"\[\[withheld-secret:([0-9a-f]{20})\]\]")
# Values kept at once; the oldest go first (their plans then need proposing again).
MAX_KEPT = 10_000

_key = secrets.token_bytes(32)
_lock = threading.Lock()
_kept: OrderedDict[str, str] = OrderedDict()


def marker_for(value: str) -> str:
    digest = hmac.new(_key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:20]
    return f"[[withheld-secret:{digest}]]"


def keep(value: str) -> str:
    """Keep ``value`` for this process and return its marker; redact it from all text from now on."""
    marker = marker_for(value)
    with _lock:
        _kept[marker] = value
        _kept.move_to_end(marker)
        while len(_kept) > MAX_KEPT:
            _kept.popitem(last=False)
    register_secret(value)
    return marker


def forget_all() -> None:
    """Drop every kept value, as a restart does."""
    with _lock:
        _kept.clear()


def unseal_text(text: str) -> tuple[str, list[str]]:
    """``text`` with every marker replaced by its value; the markers whose value is not kept are listed."""
    missing: list[str] = []

    def value(match: re.Match[str]) -> str:
        with _lock:
            kept = _kept.get(match.group(0))
        if kept is None:
            missing.append(match.group(0))
            return match.group(0)
        return kept

    if "[[withheld-secret:" not in text:
        return text, []
    # A CLI command's value sits inside one shell word: replace in the words, then quote them again.
    if _is_command_line(text):
        words = shlex.split(text)
        return shlex.join(MARKER.sub(value, word) for word in words), missing
    return MARKER.sub(value, text), missing


def unseal_plan(plan: Plan) -> tuple[Plan, list[str]]:
    """The plan with its withheld values put back; the markers with no kept value are listed."""
    missing: list[str] = []

    def text(value: str) -> str:
        unsealed, lost = unseal_text(value)
        missing.extend(lost)
        return unsealed

    return _map_plan(plan, text, _walk_strings(text)), sorted(set(missing))


def seal_plan(plan: Plan, resolved: dict[str, list[ResolvedCommand]]) -> Plan:
    """``plan`` with every sensitive input value of its commands and rollback steps withheld and kept.

    ``resolved`` holds, by command id, the command and then its rollback steps as validation resolved
    them: their params name the sensitive values by the operation's model.
    """
    values = sorted(
        {
            value
            for steps in resolved.values()
            for step in steps
            for value in sensitive_input_values(step.service, step.operation, step.params)
            if value
        },
        key=len,
        reverse=True,
    )
    if not values:
        return plan
    markers = {value: keep(value) for value in values}

    def seal(text: str) -> str:
        if not any(value in text for value in values):
            return text
        if _is_command_line(text):
            return shlex.join(_replace_all(word, markers) for word in shlex.split(text))
        return _replace_all(text, markers)

    return _map_plan(plan, seal, _walk_strings(seal))


def _replace_all(text: str, markers: dict[str, str]) -> str:
    # Longest first, so a value that contains another is withheld whole.
    for value, marker in markers.items():
        text = text.replace(value, marker)
    return text


def _is_command_line(text: str) -> bool:
    try:
        words = shlex.split(text)
    except ValueError:
        return False
    return bool(words) and words[0] == "aws"


def _walk_strings(fn: Callable[[str], str]) -> Callable[[Any], Any]:
    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return fn(value)
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk


def _map_spec(spec: CommandSpec, text: Callable[[str], str], data: Callable[[Any], Any]) -> dict[str, Any]:
    if spec.cli is not None:
        return {"cli": text(spec.cli)}
    assert spec.sdk is not None
    return {"sdk": spec.sdk.model_copy(update={"params": data(spec.sdk.params)})}


def _map_plan(plan: Plan, text: Callable[[str], str], data: Callable[[Any], Any]) -> Plan:
    commands: list[PlanCommand] = []
    for command in plan.commands:
        update = _map_spec(command, text, data)
        update["rollback"] = [step.model_copy(update=_map_spec(step, text, data)) for step in command.rollback]
        commands.append(command.model_copy(update=update))
    return plan.model_copy(update={"commands": commands})
