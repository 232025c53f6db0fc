"""What running a plan produces: states, per-attempt records, per-command and per-plan results."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class RunState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    ROLLED_BACK = "rolled_back"

    @property
    def finished(self) -> bool:
        return self not in (RunState.PENDING, RunState.RUNNING)


class Attempt(BaseModel):
    number: int
    started_at: datetime
    finished_at: datetime
    ok: bool
    error_code: str | None = None
    error_message: str | None = None
    retryable: bool = False
    delay_before_seconds: float = 0.0


class CommandResult(BaseModel):
    """The outcome of one command (all of its attempts) as an executor or the retry layer reports it."""

    ok: bool
    executor: str
    output: str = ""
    exit_code: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    dry_run: bool = False
    not_run_reason: str | None = Field(default=None, description="Set when a dry run validated but did not run.")
    timed_out: bool = False
    cancelled: bool = False
    retryable: bool = False
    attempts: list[Attempt] = Field(default_factory=list)
    duration_seconds: float = 0.0
    data: Any = Field(default=None, description="Parsed JSON result when the output was JSON.")


class RollbackOutcome(BaseModel):
    command_id: str
    step: int
    display: str
    state: RunState
    result: CommandResult | None = None


class CommandOutcome(BaseModel):
    id: str
    display: str
    state: RunState = RunState.PENDING
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    result: CommandResult | None = None
    skipped_reason: str | None = None
    rollback: list[RollbackOutcome] = Field(default_factory=list)


class PlanResult(BaseModel):
    plan_hash: str
    state: RunState
    dry_run: bool = False
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    commands: list[CommandOutcome]
    rolled_back: list[str] = Field(default_factory=list, description="Ids whose rollback succeeded.")
    not_rolled_back: list[str] = Field(
        default_factory=list,
        description="Ids that succeeded but could not be rolled back, with no rollback or a failed one.",
    )
    cancelled_by: str | None = None

    @property
    def ok(self) -> bool:
        return self.state is RunState.SUCCEEDED

    def command(self, command_id: str) -> CommandOutcome:
        for outcome in self.commands:
            if outcome.id == command_id:
                return outcome
        raise KeyError(command_id)
