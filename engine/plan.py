"""The plan format: pydantic models, parsing from YAML or JSON, and the hash that approvals bind to.

These models are the public contract. ``cloudops schema`` prints their JSON Schema, which is also what
the planner asks an LLM to produce.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.canonical import canonical_json
from engine.errors import PlanError
from engine.plan_syntax import load_json, load_yaml
from engine.risk import Risk

# Checked before any parsing; nesting is bounded while parsing (``engine.plan_syntax.MAX_PLAN_DEPTH``).
MAX_PLAN_TEXT_BYTES = 256 * 1024

CommandId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
]


class ExecutionMode(StrEnum):
    SEQUENTIAL = "sequential"
    PARALLEL = "parallel"
    DEPENDENCY_GRAPH = "dependency_graph"


class FailurePolicy(StrEnum):
    STOP = "stop"
    ROLLBACK = "rollback"
    CONTINUE = "continue"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SdkCall(_Strict):
    """One API call in botocore's terms: service ``ec2``, operation ``DescribeInstances``."""

    service: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    operation: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    params: dict[str, Any] = Field(default_factory=dict)


class CommandSpec(_Strict):
    """A runnable command in exactly one of two forms: an ``aws ...`` command line or an SDK call."""

    cli: Annotated[str, StringConstraints(min_length=1, max_length=8192)] | None = Field(
        default=None, description="An `aws ...` command line. Split with shell-like quoting, never run by a shell."
    )
    sdk: SdkCall | None = None

    @model_validator(mode="after")
    def _exactly_one_form(self) -> CommandSpec:
        if (self.cli is None) == (self.sdk is None):
            raise ValueError("a command needs exactly one of `cli` or `sdk`")
        return self

    @property
    def display(self) -> str:
        if self.cli is not None:
            return self.cli
        assert self.sdk is not None
        params = json.dumps(self.sdk.params, sort_keys=True, default=str)
        return f"{self.sdk.service}:{self.sdk.operation} {params}"


class PlanCommand(CommandSpec):
    id: CommandId
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    depends_on: list[CommandId] = Field(default_factory=list)
    rollback: list[CommandSpec] = Field(
        default_factory=list, description="One command or a list, run in order to undo this command."
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=24 * 3600)] | None = None

    @field_validator("rollback", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, (dict, str)):
            return [value if isinstance(value, dict) else {"cli": value}]
        if isinstance(value, list):
            return [{"cli": item} if isinstance(item, str) else item for item in value]
        return value


class Plan(_Strict):
    summary: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    mode: ExecutionMode = ExecutionMode.SEQUENTIAL
    on_failure: FailurePolicy = FailurePolicy.STOP
    risk: Risk | None = Field(default=None, description="May raise the computed risk, never lower it.")
    commands: list[PlanCommand] = Field(min_length=1)

    def canonical_json(self) -> str:
        """A stable text of the plan: what the hash covers and what an approval binds to."""
        return canonical_json(self.model_dump(mode="json", exclude_none=True))

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    @property
    def short_hash(self) -> str:
        return self.hash[:12]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_none=True, exclude_defaults=False), sort_keys=False)


def plan_json_schema() -> dict[str, Any]:
    return Plan.model_json_schema()


def parse_plan(text: str | bytes) -> Plan:
    """Read a plan from YAML or JSON text. Raises ``PlanError`` with every problem found."""
    # Every character is at least one byte, so the length alone refuses huge text without encoding it.
    if len(text) > MAX_PLAN_TEXT_BYTES or (isinstance(text, str) and len(text.encode("utf-8")) > MAX_PLAN_TEXT_BYTES):
        raise PlanError(f"plan is larger than {MAX_PLAN_TEXT_BYTES // 1024} KiB")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PlanError(f"plan is not UTF-8 text: {exc}") from None
    if not text.strip():
        raise PlanError("plan is empty")
    return plan_from_data(load_plan_data(text))


def load_plan_data(text: str) -> Any:
    """The data of plan text, read by the YAML loader of ``engine.plan_syntax`` (JSON included, so both get
    its rules); JSON that YAML cannot read (tabs between tokens) is read as JSON under the same rules."""
    try:
        return load_yaml(text)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        # PyYAML raises plain ValueError/OverflowError for out-of-range dates and numbers.
        problem = f"plan is not valid YAML or JSON: {_one_line(str(exc))}"
    except RecursionError:
        raise PlanError("plan is nested too deeply") from None
    if text.lstrip().startswith("{"):
        try:
            return load_json(text)
        except (ValueError, RecursionError):
            pass  # not JSON either: the YAML error says more
    raise PlanError(problem)


def plan_from_data(data: Any) -> Plan:
    if not isinstance(data, dict):
        raise PlanError("plan must be a mapping with `summary` and `commands`")
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(format_validation_error(exc)) from None
    except RecursionError:
        raise PlanError("plan is nested too deeply") from None


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in err["loc"]) or "plan"
        lines.append(f"{where}: {err['msg']}")
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(text.split())
