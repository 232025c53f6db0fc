"""Reading plan text: YAML and JSON under rules that keep what a reviewer reads and what runs the same thing.

Refused, with ``RefusedPlanSyntax`` naming the line where the text has one:

* YAML anchors and aliases (and ``<<`` merge keys, which exist to use them). A reviewer would have to expand
  them in their head, and an 890-byte alias bomb expands to billions of nodes for whatever walks the data
  next. They are refused while the document is composed, before anything is built.
* A key given twice in one mapping or object. Both YAML and JSON parsers keep the last value silently, so
  ``cli: aws s3 ls`` followed by ``cli: aws s3 rb s3://prod --force`` would show the first and run the second.
* NaN and infinite numbers (``.nan``, ``.inf``, ``1.0e+999``; JSON's ``NaN``, ``Infinity``). No AWS
  parameter wants one, and NaN is not even equal to itself, which breaks comparing and hashing plans. A YAML
  plain scalar spelled like JSON's tokens is refused too, as JSON read through YAML would make it text.
* Nesting deeper than ``MAX_PLAN_DEPTH``, long before the recursive parsers, validators and dumpers that
  handle the data later would exhaust Python's stack.

Malformed text is not this module's concern: parsers' own errors (``yaml.YAMLError``, ``ValueError``,
``RecursionError``) pass through for the caller to report.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import math
import re
from collections.abc import Callable
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from engine.errors import RefusedPlanSyntax

# A plan is four levels above its SDK params (plan, commands, command, sdk); real params stay well under
# twenty. Python's default recursion limit would be reached somewhere past three hundred.
MAX_PLAN_DEPTH = 64

_MERGE_TAG = "tag:yaml.org,2002:merge"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"
_JSON_NON_FINITE = re.compile(r"[-+]?(?:NaN|Infinity)")


def load_yaml(text: str) -> Any:
    """The data of YAML (or JSON) text under the rules above."""
    loader = _PlanLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_json(text: str | bytes, *, max_depth: int = MAX_PLAN_DEPTH) -> Any:
    """The data of JSON text under the rules above; ``ValueError`` when it is not JSON at all."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        data = json.loads(
            text, object_pairs_hook=_unique_pairs, parse_constant=_refuse_constant, parse_float=_finite_float
        )
    except _DuplicateKey as duplicate:
        # Only now is the slower pure-Python scanner run, to say where the key is.
        _locate_duplicate(text)
        raise RefusedPlanSyntax(_duplicate_message(duplicate.key, None, None)) from None
    except RecursionError:
        raise RefusedPlanSyntax(_too_deep(max_depth)) from None
    if _deeper_than(data, max_depth):
        raise RefusedPlanSyntax(_too_deep(max_depth))
    return data


# ---------------------------------------------------------------------------------------------------------
# YAML


class _PlanLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _refused(event.start_mark, f"YAML aliases (`*{event.anchor}`) are not allowed; write the value out")
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _refused(event.start_mark, f"YAML anchors (`&{anchor}`) are not allowed; write each value out")
        if not isinstance(event, yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_PLAN_DEPTH:
                raise _refused(event.start_mark, _too_deep(MAX_PLAN_DEPTH))
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                raise _refused(key_node.start_mark, "YAML merge keys (`<<`) are not allowed; write each key out")
            key = self.construct_object(key_node, deep=deep)
            try:
                line = first.get(key)
            except TypeError:
                continue  # unhashable: the base class refuses it with its own message
            if line is not None:
                raise RefusedPlanSyntax(_duplicate_message(key, key_node.start_mark.line + 1, line))
            first[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_finite_float(self, node: ScalarNode) -> float:
        value = self.construct_yaml_float(node)
        if not math.isfinite(value):
            raise _refused(node.start_mark, _non_finite(node.value))
        return value

    def construct_plain_text(self, node: ScalarNode) -> str:
        value = self.construct_yaml_str(node)
        if node.style is None and _JSON_NON_FINITE.fullmatch(value):
            raise _refused(node.start_mark, _non_finite(value) + "; quote it if it is text")
        return value


_PlanLoader.add_constructor(_FLOAT_TAG, _PlanLoader.construct_finite_float)
_PlanLoader.add_constructor(_STR_TAG, _PlanLoader.construct_plain_text)


def _refused(mark: yaml.Mark, reason: str) -> RefusedPlanSyntax:
    return RefusedPlanSyntax(f"line {mark.line + 1}: {reason}")


# ---------------------------------------------------------------------------------------------------------
# JSON


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return data


def _refuse_constant(token: str) -> Any:
    raise RefusedPlanSyntax(_non_finite(token))


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise RefusedPlanSyntax(_non_finite(token))
    return value


def _locate_duplicate(text: str) -> None:
    """Raise the duplicate key error with its line, found by a scanner that knows where each value starts."""
    decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
    decoder.parse_object = _located_object  # type: ignore[assignment]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    decoder.decode(text)


def _located_object(
    s_and_end: tuple[str, int],
    strict: bool,
    scan_once: Callable[[str, int], tuple[Any, int]],
    object_hook: Any,
    object_pairs_hook: Any,
    memo: dict[str, str] | None = None,
) -> tuple[dict[str, Any], int]:
    text = s_and_end[0]
    starts: list[int] = []

    # JSONObject scans each value (never a key) through scan_once, in order, so starts[i] is where the
    # value of pair i begins; nested objects get a wrapper of their own.
    def scan_value(s: str, index: int) -> tuple[Any, int]:
        starts.append(index)
        return scan_once(s, index)

    def checked(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        first: dict[str, int] = {}
        for (key, _), start in zip(pairs, starts, strict=True):
            line = text.count("\n", 0, start) + 1
            if key in first:
                raise RefusedPlanSyntax(_duplicate_message(key, line, first[key]))
            first[key] = line
        return dict(pairs)

    return json.decoder.JSONObject(s_and_end, strict, scan_value, None, checked, memo)


def _deeper_than(data: Any, limit: int) -> bool:
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


# ---------------------------------------------------------------------------------------------------------


def _duplicate_message(key: Any, line: int | None, first_line: int | None) -> str:
    where = f"line {line}: " if line is not None else ""
    earlier = f" (first on line {first_line})" if first_line is not None else ""
    return (
        f"{where}key `{_short(key)}` appears twice in one mapping{earlier}; "
        "the later value would silently replace the earlier one"
    )


def _non_finite(token: str) -> str:
    return f"`{_short(token)}` is not allowed: plans hold no NaN or infinite numbers"


def _too_deep(limit: int) -> str:
    return f"the plan is nested more than {limit} levels deep"


def _short(value: Any, limit: int = 60) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
