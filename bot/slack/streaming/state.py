"""What the Slack sink knows about a run: the plan's commands, each step's state and output, the plan's result.

The sink updates these from events; the renderers draw messages from them. Times are ``time.monotonic()``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from bot.slack.streaming.output import OutputBuffer
from engine.commands import ValidatedPlan
from engine.redact import redact_text
from engine.results import CommandResult, PlanResult, RunState

_ROLLBACK_ID = re.compile(r"^(?P<parent>.+)\.rollback\.(?P<step>[1-9][0-9]*)$")


def rollback_parent(command_id: str) -> tuple[str, int] | None:
    """``("a", 2)`` for ``a.rollback.2``, the id the orchestrator gives a rollback step; None otherwise."""
    match = _ROLLBACK_ID.match(command_id)
    return None if match is None else (match["parent"], int(match["step"]))


@dataclass(frozen=True)
class StreamCommand:
    """A command as the sink shows it before it runs: its id, its (redacted) command line, its rollback steps."""

    id: str
    display: str = ""
    rollback: tuple[str, ...] = ()


@dataclass(frozen=True)
class StreamPlan:
    """The light description of a plan the sink needs; ``from_validated`` builds it from a ``ValidatedPlan``."""

    commands: tuple[StreamCommand, ...] = ()
    summary: str | None = None
    plan_hash: str | None = None

    @classmethod
    def from_validated(cls, plan: ValidatedPlan) -> StreamPlan:
        # A validated plan still holds the command lines as written, secrets included: Slack only ever gets
        # them redacted, as the orchestrator's events carry them.
        return cls(
            commands=tuple(
                StreamCommand(
                    id=c.id,
                    display=redact_text(c.command.display),
                    rollback=tuple(redact_text(step.display) for step in c.rollback),
                )
                for c in plan.commands
            ),
            summary=redact_text(plan.plan.summary),
            plan_hash=plan.hash,
        )

    @classmethod
    def of(cls, plan: ValidatedPlan | StreamPlan | Sequence[StreamCommand] | None) -> StreamPlan:
        if plan is None:
            return cls()
        if isinstance(plan, StreamPlan):
            return plan
        if isinstance(plan, ValidatedPlan):
            return cls.from_validated(plan)
        return cls(commands=tuple(plan))


class Attachment(StrEnum):
    """Where a step's full output stands: not needed, on its way to the thread, attached, or lost."""

    NONE = "none"
    PENDING = "pending"
    ATTACHED = "attached"
    FAILED = "failed"


@dataclass
class StepState:
    """One command or one rollback step: its state, attempts, timing and output."""

    id: str
    display: str
    output: OutputBuffer
    state: RunState = RunState.PENDING
    started: float | None = None
    ended: float | None = None
    attempt: int = 1
    retries: int = 0
    retry_code: str | None = None
    retry_at: float | None = None
    reason: str | None = None
    result: CommandResult | None = None
    attachment: Attachment = Attachment.NONE
    file_id: str | None = None

    def elapsed(self, now: float) -> float | None:
        if self.result is not None and self.result.duration_seconds and self.state.finished:
            return self.result.duration_seconds
        if self.started is None:
            return None
        return (self.ended if self.ended is not None else now) - self.started

    @property
    def error_code(self) -> str | None:
        return None if self.result is None else self.result.error_code

    @property
    def error_message(self) -> str | None:
        return None if self.result is None else self.result.error_message


@dataclass
class CommandState(StepState):
    """A plan command, with the rollback steps run for it (shown on the command's own message)."""

    rollback: list[StepState] = field(default_factory=list)
    planned_rollback: tuple[str, ...] = ()

    @property
    def rollback_state(self) -> RunState | None:
        """Where undoing this command stands: running, failed, cancelled or succeeded; None if never tried."""
        if not self.rollback:
            return None
        for step in self.rollback:
            if step.state in (RunState.FAILED, RunState.CANCELLED):
                return step.state
        if any(not step.state.finished for step in self.rollback):
            return RunState.RUNNING
        return RunState.SUCCEEDED


@dataclass
class RunProgress:
    """The whole run: the plan's state, every command in plan order (then any the plan did not list)."""

    plan: StreamPlan
    commands: dict[str, CommandState]
    state: RunState = RunState.PENDING
    started: float | None = None
    ended: float | None = None
    result: PlanResult | None = None
    interrupted: bool = False

    @property
    def finished(self) -> bool:
        return self.state.finished or self.interrupted

    def elapsed(self, now: float) -> float | None:
        if self.result is not None:
            return self.result.duration_seconds
        if self.started is None:
            return None
        return (self.ended if self.ended is not None else now) - self.started


@dataclass(frozen=True)
class ProgressView:
    """What a ``progress_actions`` hook is told when the progress message is drawn."""

    state: RunState
    commands: Mapping[str, RunState]
    result: PlanResult | None
    interrupted: bool = False
    progress_ts: str | None = None

    @property
    def finished(self) -> bool:
        return self.state.finished or self.interrupted
