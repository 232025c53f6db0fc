"""Validation is bounded before it works: max_commands counts rollback steps and is checked before any command
is resolved, and a plan gets a fixed time to validate."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from engine import validate
from engine.errors import PlanValidationError
from engine.policy import Policy
from engine.validate import validate_text
from tests.hostile_plans import one_word_commands, read_only_commands


def problems(text: str, policy: Policy) -> list[str]:
    with pytest.raises(PlanValidationError) as caught:
        validate_text(text, policy)
    return caught.value.problems


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Ids of the commands and rollback steps validation resolved."""
    ids: list[str] = []
    real = validate.resolve_command

    def counting(*args: Any, **kwargs: Any) -> Any:
        ids.append(kwargs["command_id"])
        return real(*args, **kwargs)

    monkeypatch.setattr(validate, "resolve_command", counting)
    return ids


def test_rollback_steps_count_toward_max_commands(resolved: list[str]) -> None:
    plan = {
        "summary": "one command, thousands of undos",
        "commands": [{"id": "a", "cli": "aws s3 ls", "rollback": ["aws s3 ls"] * 5_900}],
    }
    assert problems(yaml.safe_dump(plan), Policy(max_commands=50)) == [
        "plan: 5901 steps (1 command, 5900 rollback steps, which count too) are more than the policy's limit of 50"
    ]
    assert resolved == []


def test_commands_and_rollback_steps_within_max_commands_are_accepted() -> None:
    plan = {
        "summary": "two commands, two undos",
        "commands": [
            {"id": f"c{n}", "cli": f"aws s3 mb s3://b{n}", "rollback": f"aws s3 rb s3://b{n}"} for n in range(2)
        ],
    }
    assert len(validate_text(yaml.safe_dump(plan), Policy(max_commands=4)).commands) == 2
    assert "rollback steps, which count too" in problems(yaml.safe_dump(plan), Policy(max_commands=3))[0]


def test_a_plan_over_max_commands_is_refused_before_any_command_is_resolved(resolved: list[str]) -> None:
    text = one_word_commands(5_000)
    started = time.perf_counter()
    assert problems(text, Policy(max_commands=50)) == ["plan: 5000 commands is more than the policy's limit of 50"]
    elapsed = time.perf_counter() - started
    assert resolved == []
    # Reading 5,000 commands of YAML is all the time it takes (resolving them took over 20 s).
    assert elapsed < 5, elapsed


def test_validation_stops_when_it_runs_past_its_time_budget(
    monkeypatch: pytest.MonkeyPatch, resolved: list[str]
) -> None:
    monkeypatch.setattr(validate, "VALIDATION_TIME_BUDGET_SECONDS", 0.2)
    real = validate.resolve_command

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.05)
        return real(*args, **kwargs)

    monkeypatch.setattr(validate, "resolve_command", slow)
    started = time.perf_counter()
    found = problems(read_only_commands(40), Policy())
    elapsed = time.perf_counter() - started

    [problem] = found
    assert problem.startswith("plan: validation took longer than 0.2 s and stopped before command `c")
    assert 3 <= len(resolved) < 10, resolved
    assert elapsed < 1, elapsed


def test_a_plan_validated_within_its_budget_is_unaffected(resolved: list[str]) -> None:
    validated = validate_text(read_only_commands(50), Policy())
    assert len(validated.commands) == 50 and len(resolved) == 50
