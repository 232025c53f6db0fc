"""Plan text is read under rules that keep what a reviewer reads and what runs the same: no aliases, no key
given twice, no NaN or infinity, bounded size and nesting; for YAML, JSON, and JSON read by the bot."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml

from bot.plan_text import extract_plan_text
from bot.planner import PlannerError, _answer_from_completion
from engine.errors import PlanError, RefusedPlanSyntax
from engine.plan import MAX_PLAN_TEXT_BYTES, parse_plan
from engine.plan_syntax import MAX_PLAN_DEPTH, load_json, load_yaml
from tests.hostile_plans import ALIAS_BOMB_BYTES, alias_bomb


def refusal(text: str | bytes) -> str:
    with pytest.raises(PlanError) as caught:
        parse_plan(text)
    return str(caught.value)


def nested(depth: int) -> Any:
    """A value ``depth`` collections deep."""
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def plan_with_params(params: dict[str, Any]) -> dict[str, Any]:
    # The plan, its commands, a command, sdk and params: five levels above what params hold.
    return {"summary": "s", "commands": [{"id": "a", "sdk": {"service": "s3", "operation": "X", "params": params}}]}


# ---------------------------------------------------------------------------------------------------------
# Aliases and anchors


def test_an_alias_bomb_is_refused_in_milliseconds() -> None:
    bomb = alias_bomb()
    assert len(bomb.encode()) == ALIAS_BOMB_BYTES
    started = time.perf_counter()
    with pytest.raises(RefusedPlanSyntax, match=r"line 8: YAML anchors \(`&l0`\) are not allowed"):
        parse_plan(bomb)
    assert time.perf_counter() - started < 0.05


def test_an_alias_bomb_in_a_chat_message_reaches_the_engine_which_refuses_it() -> None:
    text = extract_plan_text(f"please\n```yaml\n{alias_bomb()}```")
    assert text is not None
    assert "anchors" in refusal(text)


def test_an_alias_is_refused_even_without_its_anchor() -> None:
    assert (
        refusal("summary: s\ncommands: *cmds\n")
        == "line 2: YAML aliases (`*cmds`) are not allowed; write the value out"
    )


def test_merge_keys_are_refused() -> None:
    text = "summary: s\ncommands:\n  - <<: {cli: aws s3 ls}\n    id: a\n    cli: aws s3 rb s3://prod --force\n"
    assert refusal(text) == "line 3: YAML merge keys (`<<`) are not allowed; write each key out"


# ---------------------------------------------------------------------------------------------------------
# Duplicate keys


def test_a_key_given_twice_in_yaml_is_refused_naming_the_key_and_line() -> None:
    text = "summary: s\ncommands:\n  - id: a\n    cli: aws s3 ls\n    cli: aws s3 rb s3://prod --force\n"
    assert refusal(text) == (
        "line 5: key `cli` appears twice in one mapping (first on line 4); "
        "the later value would silently replace the earlier one"
    )


def test_a_key_given_twice_in_json_is_refused_naming_the_key_and_line() -> None:
    text = '{"summary": "s",\n "commands": [{"id": "a",\n  "cli": "aws s3 ls",\n  "cli": "aws s3 rb s3://prod"}]}'
    expected = "line 4: key `cli` appears twice in one mapping (first on line 3)"
    assert refusal(text).startswith(expected)
    with pytest.raises(RefusedPlanSyntax) as caught:
        load_json(text)
    assert str(caught.value).startswith(expected)
    # JSON that YAML cannot read (a tab between tokens) is read as JSON, under the same rule.
    assert refusal(text.replace("\n ", "\n\t")).startswith(expected)


def test_a_duplicate_in_a_fenced_json_plan_reaches_the_engine_which_refuses_it() -> None:
    block = '{"summary": "s", "commands": [{"id": "a", "cli": "aws s3 ls", "cli": "aws s3 rb s3://prod"}]}'
    for message in (f"```json\n{block}\n```", f"```json\n{block.replace(', ', ',' + chr(9))}\n```"):
        text = extract_plan_text(message)
        assert text is not None
        assert "key `cli` appears twice" in refusal(text)


def test_keys_given_once_in_different_mappings_are_fine() -> None:
    plan = parse_plan("summary: s\ncommands:\n  - id: a\n    cli: aws s3 ls\n  - id: b\n    cli: aws s3 ls\n")
    assert [c.id for c in plan.commands] == ["a", "b"]


# ---------------------------------------------------------------------------------------------------------
# NaN and infinity


@pytest.mark.parametrize(
    "value", [".nan", ".NaN", ".inf", "-.Inf", "+.INF", "1.0e+999", "NaN", "Infinity", "-Infinity"]
)
@pytest.mark.parametrize("where", ["timeout", "params", "description"])
def test_nan_and_infinity_are_refused_anywhere_in_a_yaml_plan(value: str, where: str) -> None:
    command = {
        "timeout": f"    timeout_seconds: {value}\n    cli: aws s3 ls\n",
        "params": f"    sdk: {{service: s3, operation: ListBuckets, params: {{a: [1, {{b: {value}}}]}}}}\n",
        "description": f"    description: {value}\n    cli: aws s3 ls\n",
    }[where]
    assert "plans hold no NaN or infinite numbers" in refusal(f"summary: s\ncommands:\n  - id: a\n{command}")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", "-1E400"])
def test_nan_and_infinity_are_refused_in_json(value: str) -> None:
    text = (
        '{"summary": "s", "commands": [{"id": "a", "sdk": {"service": "s3", "operation": "X", "params": {"a": %s}}}]}'
    )
    with pytest.raises(RefusedPlanSyntax, match="plans hold no NaN or infinite numbers"):
        load_json(text % value)
    if value in ("NaN", "Infinity", "-Infinity"):
        # Read through YAML, the usual path, JSON's tokens are refused too (`1e999` is mere text to YAML).
        assert "plans hold no NaN or infinite numbers" in refusal(text % value)
    # JSON that YAML cannot read (a tab between tokens) is read as JSON.
    assert "plans hold no NaN or infinite numbers" in refusal(text.replace(", ", ",\t") % value)


def test_quoted_nan_is_text_and_allowed() -> None:
    plan = parse_plan("summary: s\ncommands:\n  - id: a\n    description: 'NaN'\n    cli: aws s3 ls\n")
    assert plan.commands[0].description == "NaN"


def test_ordinary_numbers_are_read_as_before() -> None:
    data = load_yaml("a: 1.5\nb: 10\nc: -2.0e+3\nd: 0.1\n")
    assert data == {"a": 1.5, "b": 10, "c": -2000.0, "d": 0.1}


# ---------------------------------------------------------------------------------------------------------
# Size and nesting


@pytest.mark.parametrize(
    "text",
    [
        "x" * (MAX_PLAN_TEXT_BYTES + 1),
        b"x" * (MAX_PLAN_TEXT_BYTES + 1),
        # Fewer characters than the limit, more bytes.
        "é" * (MAX_PLAN_TEXT_BYTES // 2 + 1),
    ],
    ids=["text", "bytes", "multibyte"],
)
def test_plan_text_over_the_size_limit_is_refused(text: str | bytes) -> None:
    assert refusal(text) == f"plan is larger than {MAX_PLAN_TEXT_BYTES // 1024} KiB"


def test_huge_plan_text_is_refused_without_being_read() -> None:
    text = "summary: s\n" + "x" * (64 * 1024 * 1024)
    started = time.perf_counter()
    assert refusal(text).startswith("plan is larger than")
    assert time.perf_counter() - started < 0.05


def test_a_plan_at_the_size_limit_is_read() -> None:
    head = "summary: s\ncommands:\n  - id: a\n    cli: aws s3 ls\n"
    text = head + "#" * (MAX_PLAN_TEXT_BYTES - len(head) - 1) + "\n"
    assert len(text.encode()) == MAX_PLAN_TEXT_BYTES
    assert parse_plan(text).commands[0].cli == "aws s3 ls"


def test_nesting_up_to_the_limit_is_read_and_deeper_is_refused() -> None:
    inside = MAX_PLAN_DEPTH - 5  # the plan's own five levels, then these
    for dump in (json.dumps, yaml.safe_dump):
        assert parse_plan(dump(plan_with_params({"a": nested(inside)}))).commands[0].sdk is not None
        assert refusal(dump(plan_with_params({"a": nested(inside + 1)}))).endswith(
            f"the plan is nested more than {MAX_PLAN_DEPTH} levels deep"
        )
    with pytest.raises(RefusedPlanSyntax, match="nested more than"):
        load_json(json.dumps(plan_with_params({"a": nested(inside + 1)})))


@pytest.mark.parametrize("text", ["[" * 100_000, "{" * 100_000, "a:\n" + "  - " * 5_000 + "x\n"])
def test_pathological_nesting_is_refused_not_crashed(text: str) -> None:
    assert "nested" in refusal(text)


# ---------------------------------------------------------------------------------------------------------
# The planner's answers get the same rules


def completion(arguments: str) -> bytes:
    call = {"type": "function", "function": {"name": "propose_plan", "arguments": arguments}}
    return json.dumps({"choices": [{"message": {"content": None, "tool_calls": [call]}}]}).encode()


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ('{"summary": "s", "commands": [{"id": "a", "cli": "aws s3 ls", "cli": "aws s3 rb s3://x"}]}', "twice"),
        ('{"summary": "s", "commands": [{"id": "a", "cli": "aws s3 ls", "timeout_seconds": NaN}]}', "NaN"),
    ],
)
def test_planner_answers_with_a_duplicate_key_or_nan_are_refused(arguments: str, reason: str) -> None:
    with pytest.raises(PlannerError, match=reason):
        _answer_from_completion(completion(arguments))
    content = json.dumps({"choices": [{"message": {"content": arguments}}]}).encode()
    with pytest.raises(PlannerError, match=reason):
        _answer_from_completion(content)
