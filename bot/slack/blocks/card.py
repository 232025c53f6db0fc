"""The plan card: everything a plan message shows, independent of how the approval engine keeps it.

``PlanCard.from_record`` builds one from the history record; the renderers read only the card, so the
message layout can change without touching the engine and the engine can change without breaking layout.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from bot.slack.blocks.actions import SHORT_HASH_LENGTH, ActionRef
from engine.display import plan_command_display
from engine.dry_run import DRY_RUN_NOT_RUN_REASON
from engine.history.records import CommandRecord, CommandStatus, Decision, ExecutionRecord, RecordStatus
from engine.plan import ExecutionMode, FailurePolicy, Plan, PlanCommand, plan_from_data
from engine.results import PlanResult, RunState
from engine.risk import Risk
from engine.secret_inputs import MARKER
from engine.sensitive import REDACTED, returns_secrets


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("times on a plan card must carry a time zone")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class CardError(ValueError):
    """A record that cannot be shown as a card without misrepresenting the plan it holds."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CommandView(_Frozen):
    """One command as the card shows it."""

    id: str
    display: str = Field(min_length=1)
    risk: Risk
    description: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    rollback: list[str] = Field(default_factory=list, description="Displays of the rollback steps, in order.")
    returns_secrets: bool = Field(
        default=False, description="Its output holds values botocore's model marks sensitive, withheld when it runs."
    )
    status: CommandStatus = CommandStatus.PENDING
    error: str | None = Field(default=None, description="Why it failed or was skipped, once it ran.")


class Target(_Frozen):
    aws_profile: str | None = None
    region: str | None = None
    environment: str | None = None
    account: str | None = None


class Approval(_Frozen):
    user: str = Field(min_length=1)
    at: AwareDatetime


class Rejection(_Frozen):
    user: str = Field(min_length=1)
    at: AwareDatetime | None = None
    reason: str | None = None


class PlanEdit(_Frozen):
    """Who made the current version and what differs from the one before it."""

    edited_by: str = Field(min_length=1)
    version: int = Field(ge=2)
    changed: list[str] = Field(default_factory=list, description="Ids of commands whose text changed.")
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    settings: list[str] = Field(default_factory=list, description="Plan fields that changed: summary, mode, ...")
    note: str | None = None

    @classmethod
    def between(cls, old: Plan, new: Plan, *, edited_by: str, version: int, note: str | None = None) -> PlanEdit:
        before = {command.id: command for command in old.commands}
        after = {command.id: command for command in new.commands}
        return cls(
            edited_by=edited_by,
            version=version,
            changed=[cid for cid in after if cid in before and after[cid] != before[cid]],
            added=[cid for cid in after if cid not in before],
            removed=[cid for cid in before if cid not in after],
            settings=[
                name for name in ("summary", "mode", "on_failure", "risk") if getattr(old, name) != getattr(new, name)
            ],
            note=note or None,
        )


class CommandProblem(_Frozen):
    id: str
    message: str


class DryRunSummary(_Frozen):
    """What a dry run found, command by command."""

    accepted: list[str] = Field(default_factory=list, description="AWS checked the request and would run it.")
    validated_only: list[str] = Field(
        default_factory=list, description="No dry-run mode: validated by CloudOps, not sent to AWS."
    )
    failed: list[CommandProblem] = Field(default_factory=list)
    skipped: list[CommandProblem] = Field(default_factory=list)
    duration_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped

    @classmethod
    def from_result(cls, result: PlanResult) -> DryRunSummary:
        if not result.dry_run:
            raise CardError("a dry-run summary needs the result of a dry run")
        accepted: list[str] = []
        validated_only: list[str] = []
        failed: list[CommandProblem] = []
        skipped: list[CommandProblem] = []
        for outcome in result.commands:
            if outcome.state is RunState.SUCCEEDED:
                accepted.append(outcome.id)
            elif outcome.state is RunState.SKIPPED and outcome.skipped_reason == DRY_RUN_NOT_RUN_REASON:
                validated_only.append(outcome.id)
            elif outcome.state is RunState.SKIPPED:
                skipped.append(CommandProblem(id=outcome.id, message=outcome.skipped_reason or "skipped"))
            else:
                message = outcome.state.value
                if outcome.result is not None and (outcome.result.error_code or outcome.result.error_message):
                    message = _error_text(outcome.result.error_code, outcome.result.error_message)
                failed.append(CommandProblem(id=outcome.id, message=message))
        return cls(
            accepted=accepted,
            validated_only=validated_only,
            failed=failed,
            skipped=skipped,
            duration_seconds=result.duration_seconds,
        )


class Outcome(_Frozen):
    """How a finished plan ended."""

    status: RecordStatus
    finished_at: AwareDatetime | None = None
    duration_seconds: float | None = None
    approvers: list[str] = Field(default_factory=list)
    failures: list[CommandProblem] = Field(default_factory=list)
    rolled_back: list[str] = Field(default_factory=list)
    not_rolled_back: list[str] = Field(default_factory=list)
    cancelled_by: str | None = None
    dry_run: bool = False


class PlanCard(_Frozen):
    record_id: UUID
    plan: Plan
    commands: list[CommandView] = Field(min_length=1)
    risk: Risk
    target: Target = Field(default_factory=Target)
    requested_by: str = Field(min_length=1)
    approvals_required: int = Field(ge=0)
    approvals: list[Approval] = Field(default_factory=list)
    rejection: Rejection | None = None
    status: RecordStatus
    expires_at: AwareDatetime
    plan_version: int = Field(ge=1)
    plan_hash: str
    edit: PlanEdit | None = None
    outcome: Outcome | None = None
    dry_run: DryRunSummary | None = None
    conversation_id: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PlanCard:
        # Buttons carry the hash; a card whose hash is not the hash of the plan it shows would let a click
        # approve text nobody saw.
        if self.plan_hash != self.plan.hash:
            raise ValueError("plan_hash is not the hash of the plan on the card")
        if [c.id for c in self.commands] != [c.id for c in self.plan.commands]:
            raise ValueError("the card's commands must be the plan's commands, in the plan's order")
        if self.edit is not None and self.edit.version != self.plan_version:
            raise ValueError("the edit note must describe the current plan version")
        return self

    @property
    def mode(self) -> ExecutionMode:
        return self.plan.mode

    @property
    def on_failure(self) -> FailurePolicy:
        return self.plan.on_failure

    @property
    def short_hash(self) -> str:
        return self.plan_hash[:SHORT_HASH_LENGTH]

    @property
    def action_ref(self) -> ActionRef:
        return ActionRef(record_id=self.record_id, plan_version=self.plan_version, plan_hash=self.short_hash)

    @property
    def finished(self) -> bool:
        return self.status.finished

    @property
    def awaiting_approval(self) -> bool:
        return self.status is RecordStatus.PENDING_APPROVAL

    @classmethod
    def from_record(
        cls,
        record: ExecutionRecord,
        *,
        approvals_required: int,
        expires_at: datetime,
        environment: str | None,
        edit: PlanEdit | None = None,
        dry_run: DryRunSummary | PlanResult | None = None,
    ) -> PlanCard:
        """The card for ``record``: its stored plan re-read, per-command risk and state from its commands."""
        plan = plan_from_data(record.execution_plan)
        if plan.hash != record.plan_hash:
            raise CardError(f"record {record.id}: the stored plan does not hash to the record's plan_hash")
        stored = {command.id: command for command in record.commands}
        commands = [_command_view(command, stored.get(command.id), record.risk) for command in plan.commands]

        current = record.approvals_for_current_plan()
        approvals = [Approval(user=a.user, at=a.at) for a in current if a.decision is Decision.APPROVE]
        rejections = [a for a in current if a.decision is Decision.REJECT]
        if not rejections and record.status is RecordStatus.REJECTED:
            rejections = [a for a in record.approvals if a.decision is Decision.REJECT]
        rejection = None
        if rejections:
            last = rejections[-1]
            rejection = Rejection(user=last.user, at=last.at, reason=last.comment)

        outcome = None
        if record.status.finished:
            outcome = Outcome(
                status=record.status,
                finished_at=record.finished_at,
                duration_seconds=record.duration_seconds,
                approvers=[a.user for a in approvals],
                failures=[
                    CommandProblem(id=c.id, message=c.error or c.status.value)
                    for c in commands
                    if c.status is CommandStatus.FAILED
                ],
                rolled_back=list(record.rollback.rolled_back) if record.rollback else [],
                not_rolled_back=list(record.rollback.not_rolled_back) if record.rollback else [],
                cancelled_by=record.cancelled_by,
                dry_run=record.dry_run,
            )

        return cls(
            record_id=record.id,
            plan=plan,
            commands=commands,
            risk=record.risk,
            target=Target(
                aws_profile=record.aws_profile,
                region=record.aws_region,
                environment=environment,
                account=record.aws_account,
            ),
            requested_by=record.requested_by,
            approvals_required=approvals_required,
            approvals=approvals,
            rejection=rejection,
            status=record.status,
            expires_at=expires_at,
            plan_version=record.plan_version,
            plan_hash=record.plan_hash,
            edit=edit,
            outcome=outcome,
            dry_run=DryRunSummary.from_result(dry_run) if isinstance(dry_run, PlanResult) else dry_run,
            conversation_id=record.conversation_id,
        )


def _command_view(command: PlanCommand, stored: CommandRecord | None, plan_risk: Risk) -> CommandView:
    error = None
    if stored is not None and stored.status is CommandStatus.FAILED:
        error = _error_text(stored.error_code, stored.error_message)
    elif stored is not None and stored.skipped_reason:
        error = stored.skipped_reason
    return CommandView(
        id=command.id,
        # The record keeps the command as it was displayed and run, its sensitive inputs withheld.
        display=_shown(stored.command if stored is not None and stored.command else plan_command_display(command)),
        # A command the classifier left without a level counts at the plan's level, never lower.
        risk=(stored.risk if stored is not None and stored.risk is not None else plan_risk),
        description=command.description,
        depends_on=list(command.depends_on),
        rollback=[_shown(plan_command_display(step)) for step in command.rollback],
        # From the model, by the operation the record names (a high-level command's CLI word is not in it).
        returns_secrets=stored is not None
        and stored.service is not None
        and returns_secrets(stored.service, stored.operation),
        status=stored.status if stored is not None else CommandStatus.PENDING,
        error=error,
    )


def _shown(display: str) -> str:
    # The stored plan holds a marker where a secret input was (engine.secret_inputs): the card says what
    # every other place says, and a marker's digest means nothing to a reader.
    return MARKER.sub(REDACTED, display)


def _error_text(code: str | None, message: str | None) -> str:
    if code and message:
        return f"{code}: {message}"
    return code or message or "failed"
