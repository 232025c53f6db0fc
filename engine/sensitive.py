"""What botocore's service models mark ``sensitive``, and redaction driven by it.

botocore marks shapes that hold secrets with the ``sensitive`` trait: passwords, secret strings, key
material, ``Parameter.Value``, a Lambda function's environment variables, session credentials. That is the
first rule for structured data, and it is data, not a list kept by hand:

* ``returns_secrets(service, operation)``: the operation's output can hold a sensitive member, so its
  output is a secret-returning operation's output (shown withheld, approved as the policy says);
* ``redact_output`` replaces every sensitive member of a response (an SDK result, or the aws CLI's JSON
  output, which has the same shape) before anything else sees it;
* ``redact_input`` does the same for a request's parameters, for everything that shows or stores a
  command: only the executor ever holds the real values, in memory.

Values are walked along the shape, so a sensitive member is found wherever it sits (a list of structures, a
map's values) without guessing from key names; the free-text rules in ``engine.redact`` still run after.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from botocore.exceptions import UnknownServiceError
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from engine import awscli_model

REDACTED = "[REDACTED]"


def returns_secrets(service: str, operation: str | None) -> bool:
    """Whether ``operation``'s output can hold a member botocore's model marks sensitive."""
    model = _operation(service, operation)
    return model is not None and model.output_shape is not None and _holds_sensitive(model.output_shape)


def takes_secrets(service: str, operation: str | None) -> bool:
    """Whether ``operation``'s input can hold a member botocore's model marks sensitive."""
    model = _operation(service, operation)
    return model is not None and model.input_shape is not None and _holds_sensitive(model.input_shape)


def redact_output(service: str, operation: str | None, data: Any) -> Any:
    """``data`` (a response of ``operation``) with every sensitive member replaced; other values as they are."""
    model = _operation(service, operation)
    if model is None or model.output_shape is None:
        return data
    return _redact(data, model.output_shape)


def redact_input(service: str, operation: str | None, params: Any) -> Any:
    """``params`` (a request of ``operation``) with every sensitive member replaced."""
    model = _operation(service, operation)
    if model is None or model.input_shape is None:
        return params
    return _redact(params, model.input_shape)


def sensitive_input_values(service: str, operation: str | None, params: Any) -> list[str]:
    """The text of every sensitive value in ``params``: what must never be shown where the command is."""
    model = _operation(service, operation)
    if model is None or model.input_shape is None:
        return []
    found: list[str] = []
    _collect(params, model.input_shape, found)
    return found


@lru_cache(maxsize=4096)
def _operation(service: str, operation: str | None) -> OperationModel | None:
    if operation is None:
        return None
    try:
        model = awscli_model.service_model(service)
    except UnknownServiceError:
        return None
    if operation not in model.operation_names:
        return None
    return model.operation_model(operation)


def _is_sensitive(shape: Shape) -> bool:
    return bool(shape.metadata.get("sensitive"))


@lru_cache(maxsize=16384)
def _holds_sensitive(shape: Shape) -> bool:
    # Shapes can be recursive (DynamoDB's AttributeValue): walk each named shape once.
    seen: set[str] = set()
    pending = [shape]
    while pending:
        current = pending.pop()
        if _is_sensitive(current):
            return True
        if current.name in seen:
            continue
        seen.add(current.name)
        pending.extend(_children(current))
    return False


def _children(shape: Shape) -> list[Shape]:
    if isinstance(shape, StructureShape):
        return list(shape.members.values())
    if isinstance(shape, ListShape):
        return [shape.member]
    if isinstance(shape, MapShape):
        return [shape.key, shape.value]
    return []


def _redact(value: Any, shape: Shape) -> Any:
    if value is None:
        return None
    if _is_sensitive(shape):
        return REDACTED
    if not _holds_sensitive(shape):
        return value
    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        return {
            key: (_redact(item, shape.members[key]) if key in shape.members else item) for key, item in value.items()
        }
    if isinstance(shape, ListShape) and isinstance(value, list | tuple):
        return [_redact(item, shape.member) for item in value]
    if isinstance(shape, MapShape) and isinstance(value, Mapping):
        if _is_sensitive(shape.key):
            return {REDACTED: REDACTED} if value else {}
        return {key: _redact(item, shape.value) for key, item in value.items()}
    # The value does not have the shape's form (a projection, a changed API): withhold what could be secret.
    return REDACTED


def _collect(value: Any, shape: Shape, found: list[str]) -> None:
    if value is None:
        return
    if _is_sensitive(shape):
        found.extend(_leaves(value))
        return
    if not _holds_sensitive(shape):
        return
    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        for key, item in value.items():
            if key in shape.members:
                _collect(item, shape.members[key], found)
    elif isinstance(shape, ListShape) and isinstance(value, list | tuple):
        for item in value:
            _collect(item, shape.member, found)
    elif isinstance(shape, MapShape) and isinstance(value, Mapping):
        for key, item in value.items():
            if _is_sensitive(shape.key):
                found.append(str(key))
            _collect(item, shape.value, found)
    else:
        found.extend(_leaves(value))


def _leaves(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [leaf for key, item in value.items() for leaf in (str(key), *_leaves(item))]
    if isinstance(value, list | tuple):
        return [leaf for item in value for leaf in _leaves(item)]
    if isinstance(value, bytes | bytearray):
        return [value.decode("utf-8", "replace")]
    return [str(value)]
