"""Execution records: what the history keeps about one plan, from the request to the last command.

A record is created when a plan is proposed and changes over its life (approvals, the run, the results);
every change goes through the store's compare-and-set ``transition`` and bumps ``version``.

Conversation ids
----------------
Each record names the conversation it came from:

* ``slack:<team>:<channel>:<thread_ts>`` for a Slack thread, e.g. ``slack:T0123ABCD:C0456EFGH:1712345678.123456``
  (team ``T…``/``E…``, channel ``C…``/``G…``/``D…``, the thread's parent message ``ts``);
* ``cli:<uuid>`` for one ``cloudops`` command-line session, e.g. ``cli:1b4e28ba-2fa1-41d2-883f-0016d3cca427``.

``slack_conversation_id`` and ``cli_conversation_id`` build them; ``parse_conversation_id`` checks one and
raises ``ConversationIdError`` naming the expected forms.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from engine.commands import ResolvedCommand, ValidatedPlan
from engine.history.errors import ConversationIdError, InvalidTransitionError
from engine.plan import Plan
from engine.redact import redact_text
from engine.results import Attempt, RunState
from engine.risk import Risk


class RecordStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset(
    {
        RecordStatus.REJECTED,
        RecordStatus.EXPIRED,
        RecordStatus.SUCCEEDED,
        RecordStatus.FAILED,
        RecordStatus.ROLLED_BACK,
        RecordStatus.CANCELLED,
        RecordStatus.INTERRUPTED,
    }
)

# Where a record may go from each status. Staying in the same status is always allowed (adding an approval,
# a note, a permalink). Nothing leaves a finished status: a run that was interrupted is never started again.
_NEXT: dict[RecordStatus, frozenset[RecordStatus]] = {
    RecordStatus.PENDING_APPROVAL: frozenset(
        {RecordStatus.APPROVED, RecordStatus.REJECTED, RecordStatus.EXPIRED, RecordStatus.CANCELLED}
    ),
    RecordStatus.APPROVED: frozenset(
        {RecordStatus.RUNNING, RecordStatus.PENDING_APPROVAL, RecordStatus.EXPIRED, RecordStatus.CANCELLED}
    ),
    RecordStatus.RUNNING: frozenset(
        {
            RecordStatus.SUCCEEDED,
            RecordStatus.FAILED,
            RecordStatus.ROLLED_BACK,
            RecordStatus.CANCELLED,
            RecordStatus.INTERRUPTED,
        }
    ),
}


def can_transition(current: RecordStatus, new: RecordStatus) -> bool:
    return new == current or new in _NEXT.get(current, frozenset())


def check_transition(current: RecordStatus, new: RecordStatus) -> None:
    if not can_transition(current, new):
        raise InvalidTransitionError(f"a record cannot go from {current.value} to {new.value}")


class CommandStatus(StrEnum):
    """A command's state in the history: the engine's run states plus ``interrupted``."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    ROLLED_BACK = "rolled_back"
    INTERRUPTED = "interrupted"

    @classmethod
    def from_run_state(cls, state: RunState) -> CommandStatus:
        return cls(state.value)


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    DENIED = "denied"  # someone without the right tried to approve or reject; kept as evidence


# ---------------------------------------------------------------------------------------------------------
# Conversation ids

_SLACK_ID = re.compile(
    r"^slack:(?P<team>[TE][A-Z0-9]{2,20}):(?P<channel>[CGD][A-Z0-9]{2,20}):(?P<thread_ts>\d{1,12}\.\d{1,9})$"
)
_CLI_ID = re.compile(r"^cli:(?P<session>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
_FORMS = "`slack:<team>:<channel>:<thread_ts>` or `cli:<uuid>`"


class ConversationRef(BaseModel):
    """A parsed conversation id."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["slack", "cli"]
    team: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    session: UUID | None = None

    def __str__(self) -> str:
        if self.kind == "slack":
            return f"slack:{self.team}:{self.channel}:{self.thread_ts}"
        return f"cli:{self.session}"


def parse_conversation_id(value: str) -> ConversationRef:
    if not isinstance(value, str):
        raise ConversationIdError(f"conversation id must be text in the form {_FORMS}")
    if match := _SLACK_ID.fullmatch(value):
        return ConversationRef(kind="slack", **match.groupdict())
    if match := _CLI_ID.fullmatch(value):
        return ConversationRef(kind="cli", session=UUID(match["session"]))
    shown = value if len(value) <= 80 else value[:77] + "..."
    raise ConversationIdError(f"bad conversation id {shown!r}: expected {_FORMS}")


def slack_conversation_id(team: str, channel: str, thread_ts: str) -> str:
    return str(parse_conversation_id(f"slack:{team}:{channel}:{thread_ts}"))


def cli_conversation_id(session: UUID | None = None) -> str:
    return f"cli:{session or uuid.uuid4()}"


def _valid_conversation_id(value: str) -> str:
    # The plain match first: every stored record is read through here, and building a ConversationRef
    # each time was a measurable share of a history query.
    if _SLACK_ID.fullmatch(value) or _CLI_ID.fullmatch(value):
        return value
    parse_conversation_id(value)  # raises with the message that names the forms
    return value


ConversationId = Annotated[str, AfterValidator(_valid_conversation_id)]


# ---------------------------------------------------------------------------------------------------------
# Records


def utc_now() -> datetime:
    return datetime.now(UTC)


# pydantic's own check runs in its core, not as a Python call per timestamp on every record read.
AwareDatetime = pydantic.AwareDatetime


class ApprovalDecision(BaseModel):
    """One person's answer to an approval request, bound to the plan text they saw."""

    user: str = Field(min_length=1)
    decision: Decision
    at: AwareDatetime = Field(default_factory=utc_now)
    plan_hash: str
    plan_version: int = Field(ge=1)
    comment: str | None = None


class RollbackRecord(BaseModel):
    step: int
    command: str
    status: CommandStatus
    output: str = ""
    output_bytes: int = 0
    output_sha256: str | None = None
    output_truncated: bool = False
    error_code: str | None = None
    error_message: str | None = None
    duration_seconds: float | None = None


class CommandRecord(BaseModel):
    """One plan command as the history keeps it. ``id`` is the plan's command id, unique within the record."""

    id: str
    command: str = Field(description="The command as displayed and run (already redacted).")
    description: str | None = None
    executor: str | None = Field(default=None, description="Which executor ran it: `cli`, `sdk`, ...")
    service: str | None = None
    operation: str | None = None
    risk: Risk | None = None
    status: CommandStatus = CommandStatus.PENDING
    output: str = ""
    output_bytes: int = 0
    output_sha256: str | None = None
    output_truncated: bool = False
    exit_code: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    skipped_reason: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    duration_seconds: float | None = None
    started_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    rollback: list[RollbackRecord] = Field(default_factory=list)

    @classmethod
    def planned(cls, command_id: str, resolved: ResolvedCommand, description: str | None = None) -> CommandRecord:
        return cls(
            id=command_id,
            command=resolved.display,
            description=description,
            service=resolved.service,
            operation=resolved.operation or resolved.cli_operation,
            risk=resolved.risk,
        )


class RollbackSummary(BaseModel):
    rolled_back: list[str] = Field(default_factory=list)
    not_rolled_back: list[str] = Field(default_factory=list)


_PLAN_SETTINGS = ("summary", "mode", "on_failure", "risk")


class PlanEditRecord(BaseModel):
    """One edit of a proposed plan: who made which version out of which, and what differs between them.

    Approvals name the version and hash they were given for, so these entries are what lets a reader see
    which text each approval of an older version actually covered.
    """

    by: str = Field(min_length=1)
    at: AwareDatetime = Field(default_factory=utc_now)
    from_version: int = Field(ge=1)
    to_version: int = Field(ge=2)
    from_hash: str
    to_hash: str
    from_risk: Risk | None = None
    to_risk: Risk | None = None
    note: str | None = None
    changed: list[str] = Field(default_factory=list, description="Ids of commands whose text changed.")
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    settings: list[str] = Field(default_factory=list, description="Plan fields that changed: summary, mode, ...")

    @classmethod
    def between(
        cls,
        old: Plan,
        new: Plan,
        *,
        by: str,
        from_version: int,
        at: datetime | None = None,
        from_risk: Risk | None = None,
        to_risk: Risk | None = None,
        note: str | None = None,
    ) -> PlanEditRecord:
        before = {command.id: command for command in old.commands}
        after = {command.id: command for command in new.commands}
        return cls(
            by=by,
            at=at or utc_now(),
            from_version=from_version,
            to_version=from_version + 1,
            from_hash=old.hash,
            to_hash=new.hash,
            from_risk=from_risk,
            to_risk=to_risk,
            note=note or None,
            changed=[cid for cid in after if cid in before and after[cid] != before[cid]],
            added=[cid for cid in after if cid not in before],
            removed=[cid for cid in before if cid not in after],
            settings=[name for name in _PLAN_SETTINGS if getattr(old, name) != getattr(new, name)],
        )


# Fields the store owns: set on every write, never by a caller's changes, and outside the content hash
# (except ``version``, which the hash covers so that an entry binds to one version).
STORE_FIELDS = frozenset({"version", "updated_at", "content_hash", "audit_seq", "created_seq", "write_token"})
CHAIN_FIELDS = frozenset({"content_hash", "audit_seq", "created_seq", "write_token"})
IMMUTABLE_FIELDS = frozenset({"id", "timestamp", "conversation_id", "requested_by"})


class ExecutionRecord(BaseModel):
    id: UUID = Field(default_factory=uuid.uuid4)
    conversation_id: ConversationId
    timestamp: AwareDatetime = Field(default_factory=utc_now, description="When the record was created.")
    updated_at: AwareDatetime = Field(default_factory=utc_now)
    user_prompt: str = ""
    summary: str
    execution_plan: dict[str, Any] = Field(description="The plan as approved: `engine.plan.Plan` as JSON data.")
    plan_version: int = Field(default=1, ge=1)
    plan_hash: str
    risk: Risk
    services: list[str] = Field(default_factory=list)
    requested_by: str = Field(min_length=1)
    approvals: list[ApprovalDecision] = Field(default_factory=list)
    commands: list[CommandRecord] = Field(default_factory=list)
    status: RecordStatus
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    duration_seconds: float | None = None
    aws_profile: str | None = None
    aws_region: str | None = None
    aws_account: str | None = None
    dry_run: bool = False
    rollback: RollbackSummary | None = None
    link: str | None = Field(default=None, description="Slack permalink of the thread message, when there is one.")
    channel: str | None = Field(default=None, description="Slack channel id, when the request came from Slack.")
    cancelled_by: str | None = None
    notes: list[str] = Field(default_factory=list)
    # Added with the approval and execution services; older records read back with these defaults.
    environment: str | None = Field(default=None, description="The channel's environment label, e.g. `prod`.")
    approvals_required: int | None = Field(
        default=None, ge=0, description="Distinct approvals the current plan version needs; None: not recorded."
    )
    expires_at: AwareDatetime | None = Field(default=None, description="When a pending approval request lapses.")
    edits: list[PlanEditRecord] = Field(default_factory=list, description="Every edit of the plan, oldest first.")
    started_by: str | None = Field(default=None, description="Who (or what) started the run.")
    dry_run_of: UUID | None = Field(default=None, description="For a dry-run record: the record it checked.")

    version: int = Field(default=1, ge=1, description="Bumped on every write: the compare-and-set token.")
    content_hash: str = Field(default="", description="SHA-256 of the canonical content (chain fields excluded).")
    audit_seq: int = Field(default=0, ge=0, description="Sequence number of this version's audit entry.")
    created_seq: int = Field(default=0, ge=0, description="Sequence number of the create entry: write order.")
    write_token: str = Field(default="", description="Random per write, so a writer can tell its write landed.")

    @field_validator("services")
    @classmethod
    def _sorted_services(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @classmethod
    def new_from_plan(
        cls,
        validated: ValidatedPlan,
        *,
        conversation_id: str,
        requested_by: str,
        user_prompt: str = "",
        status: RecordStatus = RecordStatus.PENDING_APPROVAL,
        profile: str | None = None,
        region: str | None = None,
        account: str | None = None,
        dry_run: bool = False,
        link: str | None = None,
        channel: str | None = None,
        now: datetime | None = None,
        environment: str | None = None,
        approvals_required: int | None = None,
        expires_at: datetime | None = None,
        dry_run_of: UUID | None = None,
    ) -> ExecutionRecord:
        created = now or utc_now()
        return cls(
            conversation_id=conversation_id,
            timestamp=created,
            updated_at=created,
            # The prompt is the operator's own text, which may hold the very values the plan withholds.
            user_prompt=redact_text(user_prompt),
            summary=validated.stored.summary,
            execution_plan=_plan_data(validated),
            plan_hash=validated.hash,
            risk=validated.risk,
            services=validated.services,
            requested_by=requested_by,
            commands=[CommandRecord.planned(c.id, c.command, c.description) for c in validated.commands],
            status=status,
            aws_profile=profile,
            aws_region=region,
            aws_account=account,
            dry_run=dry_run,
            link=link,
            channel=channel,
            environment=environment,
            approvals_required=approvals_required,
            expires_at=expires_at,
            dry_run_of=dry_run_of,
        )

    def plan_revision(self, validated: ValidatedPlan) -> dict[str, Any]:
        """The changes that replace this record's plan with an edited one (for ``transition``).

        Earlier approvals stay in the record; they name the plan hash and version they were given for,
        which is how an approval of an old version is told apart from one of the current plan.
        """
        return {
            "summary": validated.stored.summary,
            "execution_plan": _plan_data(validated),
            "plan_hash": validated.hash,
            "plan_version": self.plan_version + 1,
            "risk": validated.risk,
            "services": validated.services,
            "commands": [CommandRecord.planned(c.id, c.command, c.description) for c in validated.commands],
        }

    def approvals_for_current_plan(self) -> list[ApprovalDecision]:
        return [a for a in self.approvals if a.plan_hash == self.plan_hash and a.plan_version == self.plan_version]

    def indexed_text(self) -> str:
        """The text that search matches: prompt, summary, commands and requester."""
        parts = [self.user_prompt, self.summary, *(c.command for c in self.commands), self.requested_by]
        return "\n".join(p for p in parts if p)

    def with_changes(self, changes: Mapping[str, Any]) -> ExecutionRecord:
        """A validated copy with ``changes`` applied; refuses fields only the store may set."""
        if "status" in changes:
            raise ValueError("set the status with `new_status`, not in changes")
        forbidden = set(changes) & (STORE_FIELDS | IMMUTABLE_FIELDS)
        if forbidden:
            raise ValueError(f"changes may not set {', '.join(sorted(forbidden))}")
        unknown = set(changes) - set(type(self).model_fields)
        if unknown:
            raise ValueError(f"unknown record fields: {', '.join(sorted(unknown))}")
        data = self.model_dump()
        data.update(changes)
        return type(self).model_validate(data)


def _plan_data(validated: ValidatedPlan) -> dict[str, Any]:
    # exclude_none matches Plan.canonical_json, so the stored plan hashes back to plan_hash.
    return validated.stored.model_dump(mode="json", exclude_none=True)
