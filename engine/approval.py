"""The approval state machine: proposing a plan, votes on it, edits and expiry. Knows nothing of Slack.

Every change is a compare-and-set ``transition`` on the execution record (expected status and version). When
another writer got there first, the record is read again and the decision applied again to what is there
now, a bounded number of times; so two approvers clicking at once both count, each exactly once, and
exactly one of them moves the record to ``approved``.

Decisions worth knowing:

* A vote binds to one plan text: the caller passes the version and hash it showed. The full hash or a prefix
  of at least ``MIN_HASH_PREFIX`` hex digits (what a Slack button carries) is accepted; a vote for any other
  version is refused and kept as a ``denied`` decision naming the version it was for.
* Approvers come from ``policy.approvers[risk]``: a user id listed there, or one of the user's groups (the
  caller resolves group membership and passes it). A policy that names no approvers for a risk level means
  nobody can approve plans of that level (they can only be rejected or left to expire). Self-approval is
  allowed only where ``policy.self_approval[risk]`` says so; an unlisted level counts as not allowed.
* Refused approvals and rejections are kept in the record as ``denied`` decisions: the attempt is evidence.
* The requester may always reject (withdraw) their own plan; otherwise rejecting takes an approver.
* Votes are taken only while the record is ``pending_approval``. Once approved, further clicks are refused
  with the state; the record is then the execution service's to run.
* The number of approvals needed is the higher of what the record says (fixed when the plan was proposed or
  last edited) and what the current policy asks for its risk, so a stricter policy applies at once and a
  laxer one never lowers the bar for a request already out.
* An approval given before the current policy took effect still counts: group membership at the time of
  the click is not kept, so earlier votes cannot be checked again.
* Expiry applies to pending requests only (``expires_at``, or creation time plus ``approval_ttl_minutes``
  for records written before it was kept). A vote or edit on an expired request moves it to ``expired``.
* An edit is allowed while the plan is pending or approved (not yet started), by the requester or anyone
  who may approve the old or the new risk level. It makes a new version: earlier approvals stay in the
  record bound to the old version and no longer count, the risk and the approvals needed are recomputed and
  the expiry starts again. An approved plan goes back to pending. An edit that needs no approvals (a
  read-only plan under ``auto_run_read_only``) is approved at once, as a new proposal would be.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ValidationError

from engine.commands import ValidatedPlan
from engine.errors import CloudOpsError, StoreError
from engine.history.errors import RecordNotFoundError
from engine.history.filters import RecordFilter
from engine.history.records import (
    ApprovalDecision,
    Decision,
    ExecutionRecord,
    PlanEditRecord,
    RecordStatus,
    utc_now,
)
from engine.history.store import HistoryStore, TransitionResult
from engine.plan import plan_from_data
from engine.policy import Policy
from engine.risk import Risk

MIN_HASH_PREFIX = 12
# Each conflict means another write landed, so a decision makes progress unless this many writers pile up
# on one record at once; past that the store is misbehaving and the caller should hear about it.
MAX_ATTEMPTS = 64

Clock = Callable[[], datetime]


class ApprovalError(CloudOpsError):
    """The caller asked for something the approval rules do not allow (a stale edit, a finished record...)."""


class DecisionOutcome(BaseModel):
    """What one approve or reject click did. ``reason`` is a sentence for the user when it was refused."""

    accepted: bool
    reason: str | None = None
    record: ExecutionRecord
    approvals: int = 0
    approvals_required: int = 0
    quorum_reached: bool = False
    now_approved: bool = False
    now_rejected: bool = False
    already_counted: bool = False


class ApprovalService:
    def __init__(
        self,
        store: HistoryStore,
        policy: Policy,
        *,
        clock: Clock = utc_now,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.store = store
        self.policy = policy
        self._clock = clock
        self._max_attempts = max_attempts

    # -- proposing ----------------------------------------------------------------------------------------

    async def propose(
        self,
        validated: ValidatedPlan,
        *,
        conversation_id: str,
        requested_by: str,
        user_prompt: str = "",
        channel: str | None = None,
        profile: str | None = None,
        region: str | None = None,
        environment: str | None = None,
        link: str | None = None,
        record_id: UUID | None = None,
    ) -> ExecutionRecord:
        """Store the plan as a request for approval; durable when this returns (raises ``StoreError`` if not).

        A plan that needs no approvals is stored as ``approved`` straight away, with a note saying why.
        ``record_id`` names the record (say, derived from the chat message) so that a retried delivery of
        the same request cannot store it twice: creating is insert-only, and the second try raises
        ``StoreError``.
        """
        now = self._clock()
        required = self.policy.required_approvals(validated.risk)
        status = RecordStatus.APPROVED if required == 0 else RecordStatus.PENDING_APPROVAL
        try:
            record = ExecutionRecord.new_from_plan(
                validated,
                conversation_id=conversation_id,
                requested_by=requested_by,
                user_prompt=user_prompt,
                status=status,
                profile=profile,
                region=region,
                link=link,
                channel=channel,
                now=now,
                environment=environment,
                approvals_required=required,
                expires_at=now + self._ttl,
            )
        except ValidationError as exc:
            raise ApprovalError(f"cannot propose this plan: {_first_error(exc)}") from None
        update: dict[str, object] = {}
        if record_id is not None:
            update["id"] = record_id
        if required == 0:
            update["notes"] = [self._no_vote_note(validated.risk, now)]
        return await self.store.create(record.model_copy(update=update))

    # -- votes --------------------------------------------------------------------------------------------

    async def decide(
        self,
        record_id: UUID | str,
        *,
        user: str,
        user_groups: frozenset[str] = frozenset(),
        decision: Literal["approve", "reject"] | Decision,
        plan_version: int,
        plan_hash: str,
        comment: str | None = None,
    ) -> DecisionOutcome:
        """Count one approve or reject click on the plan version the user saw; see the module notes."""
        kind = _decision(decision)
        if not user:
            raise ApprovalError("a decision needs the id of the user who made it")
        if plan_version < 1:
            raise ApprovalError(f"plan version {plan_version} does not exist; versions start at 1")
        for _ in range(self._max_attempts):
            record = await self._get(record_id)
            now = self._clock()
            if record.status is not RecordStatus.PENDING_APPROVAL:
                return self._outcome(record, accepted=False, reason=self.state_sentence(record))
            if self._is_expired(record, now):
                expired = await self._expire(record, now)
                if not expired.applied:
                    continue
                return self._outcome(expired.record, accepted=False, reason=self.state_sentence(expired.record))

            binds = plan_binds(record, plan_version, plan_hash)
            if not binds:
                refusal = (
                    f"this plan was edited; version {record.plan_version} is current "
                    f"(you were looking at version {plan_version}): read it again and decide on that version"
                )
            elif kind is Decision.APPROVE:
                refusal = self.approval_refusal(record, user, user_groups)
            else:
                refusal = self.rejection_refusal(record, user, user_groups)
            if refusal is not None:
                result = await self._deny(record, user, kind, refusal, now, plan_version, plan_hash, comment, binds)
                if not result.applied:
                    continue
                return self._outcome(result.record, accepted=False, reason=refusal)

            if kind is Decision.APPROVE:
                result_or_outcome = await self._approve(record, user, now, comment)
            else:
                result_or_outcome = await self._reject(record, user, now, comment)
            if result_or_outcome is not None:
                return result_or_outcome
        raise StoreError(
            f"record {record_id}: the decision could not be recorded; the record changed under "
            f"{self._max_attempts} attempts in a row. Try again."
        )

    async def _approve(
        self, record: ExecutionRecord, user: str, now: datetime, comment: str | None
    ) -> DecisionOutcome | None:
        approvers = approvers_of_current_plan(record)
        required = self.required_for(record)
        if user in approvers:
            return self._outcome(
                record,
                accepted=True,
                already_counted=True,
                reason=f"you already approved version {record.plan_version}; an approval counts once",
            )
        entry = ApprovalDecision(
            user=user,
            decision=Decision.APPROVE,
            at=now,
            plan_hash=record.plan_hash,
            plan_version=record.plan_version,
            comment=comment or None,
        )
        count = len(approvers) + 1
        reached = count >= required
        changes: dict[str, object] = {"approvals": [*record.approvals, entry], "approvals_required": required}
        if reached:
            names = ", ".join([*approvers, user])
            changes["notes"] = [
                *record.notes,
                f"approved at {_when(now)}: {count} of {required} approvals for version {record.plan_version} "
                f"({names})",
            ]
        result = await self.store.transition(
            record.id,
            expected_status=RecordStatus.PENDING_APPROVAL,
            expected_version=record.version,
            changes=changes,
            new_status=RecordStatus.APPROVED if reached else None,
        )
        if not result.applied:
            return None
        return self._outcome(result.record, accepted=True, now_approved=reached)

    async def _reject(
        self, record: ExecutionRecord, user: str, now: datetime, comment: str | None
    ) -> DecisionOutcome | None:
        entry = ApprovalDecision(
            user=user,
            decision=Decision.REJECT,
            at=now,
            plan_hash=record.plan_hash,
            plan_version=record.plan_version,
            comment=comment or None,
        )
        how = "withdrawn by the requester" if user == record.requested_by else f"rejected by {user}"
        note = f"{how} at {_when(now)}" + (f": {comment}" if comment else "")
        result = await self.store.transition(
            record.id,
            expected_status=RecordStatus.PENDING_APPROVAL,
            expected_version=record.version,
            changes={"approvals": [*record.approvals, entry], "notes": [*record.notes, note]},
            new_status=RecordStatus.REJECTED,
        )
        if not result.applied:
            return None
        return self._outcome(result.record, accepted=True, now_rejected=True)

    async def _deny(
        self,
        record: ExecutionRecord,
        user: str,
        kind: Decision,
        refusal: str,
        now: datetime,
        plan_version: int,
        plan_hash: str,
        comment: str | None,
        binds: bool,
    ) -> TransitionResult:
        # A stale click is kept under the version it was for, so it can never be mistaken for a vote on the
        # current text.
        text = f"tried to {kind.value}: {refusal}" + (f" (comment: {comment})" if comment else "")
        entry = ApprovalDecision(
            user=user,
            decision=Decision.DENIED,
            at=now,
            plan_hash=record.plan_hash if binds else (plan_hash or "-"),
            plan_version=plan_version,
            comment=text,
        )
        return await self.store.transition(
            record.id,
            expected_status=RecordStatus.PENDING_APPROVAL,
            expected_version=record.version,
            changes={"approvals": [*record.approvals, entry]},
        )

    # -- edits --------------------------------------------------------------------------------------------

    async def edit(
        self,
        record_id: UUID | str,
        validated: ValidatedPlan,
        *,
        editor: str,
        plan_version: int,
        plan_hash: str,
        note: str | None = None,
        editor_groups: frozenset[str] = frozenset(),
    ) -> ExecutionRecord:
        """Replace the plan with an edited one, as a new version that needs its own approvals.

        ``plan_version`` and ``plan_hash`` name the version the editor started from; if the plan changed
        since, the edit is refused (``ApprovalError``) rather than overwriting what the editor never saw.
        """
        if not editor:
            raise ApprovalError("an edit needs the id of the user who made it")
        for _ in range(self._max_attempts):
            record = await self._get(record_id)
            now = self._clock()
            if record.dry_run or record.status not in (RecordStatus.PENDING_APPROVAL, RecordStatus.APPROVED):
                raise ApprovalError(f"{self.state_sentence(record)}; it can no longer be edited")
            if record.status is RecordStatus.PENDING_APPROVAL and self._is_expired(record, now):
                expired = await self._expire(record, now)
                if not expired.applied:
                    continue
                raise ApprovalError(f"{self.state_sentence(expired.record)}; it can no longer be edited")
            if not plan_binds(record, plan_version, plan_hash):
                raise ApprovalError(
                    f"this plan was edited; version {record.plan_version} is current (your edit started from "
                    f"version {plan_version}): open the current version and edit that"
                )
            refusal = self.edit_refusal(record, editor, editor_groups, validated.risk)
            if refusal is not None:
                raise ApprovalError(refusal)
            if validated.hash == record.plan_hash:
                raise ApprovalError(f"the edited plan is the same as version {record.plan_version}; nothing changed")

            required = self.policy.required_approvals(validated.risk)
            entry = PlanEditRecord.between(
                plan_from_data(record.execution_plan),
                validated.stored,
                by=editor,
                from_version=record.plan_version,
                at=now,
                from_risk=record.risk,
                to_risk=validated.risk,
                note=note,
            )
            cleared = len(approvers_of_current_plan(record))
            text = f"version {entry.to_version} by {editor} at {_when(now)}"
            if cleared:
                text += f"; {cleared} approval(s) of version {entry.from_version} no longer count"
            if note:
                text += f": {note}"
            notes = [*record.notes, text]
            if required == 0:
                notes.append(self._no_vote_note(validated.risk, now))
            changes = {
                **record.plan_revision(validated),
                "approvals_required": required,
                "expires_at": now + self._ttl,
                "edits": [*record.edits, entry],
                "notes": notes,
            }
            result = await self.store.transition(
                record.id,
                expected_status=record.status,
                expected_version=record.version,
                changes=changes,
                new_status=RecordStatus.APPROVED if required == 0 else RecordStatus.PENDING_APPROVAL,
            )
            if result.applied:
                return result.record
        raise StoreError(
            f"record {record_id}: the edit could not be saved; the record changed under "
            f"{self._max_attempts} attempts in a row. Try again."
        )

    # -- expiry -------------------------------------------------------------------------------------------

    async def expire_due(self) -> list[ExecutionRecord]:
        """Move every pending request past its expiry to ``expired``; returns the records it moved."""
        now = self._clock()
        # Collected first: changing records while paging through a filter on their status could skip some.
        due = [
            record
            async for record in self.store.all_in_write_order(RecordFilter(status=[RecordStatus.PENDING_APPROVAL]))
            if self._is_expired(record, now)
        ]
        expired: list[ExecutionRecord] = []
        for record in due:
            result = await self._expire(record, now)
            if result.applied:
                expired.append(result.record)
        return expired

    async def _expire(self, record: ExecutionRecord, now: datetime) -> TransitionResult:
        count = len(approvers_of_current_plan(record))
        note = (
            f"expired at {_when(now)}: no decision by {_when(self.expires_at(record))} "
            f"({count} of {self.required_for(record)} approvals)"
        )
        return await self.store.transition(
            record.id,
            expected_status=RecordStatus.PENDING_APPROVAL,
            expected_version=record.version,
            changes={"notes": [*record.notes, note]},
            new_status=RecordStatus.EXPIRED,
        )

    # -- the rules, for callers that want to ask before acting ---------------------------------------------

    def required_for(self, record: ExecutionRecord) -> int:
        """Approvals the record's current plan needs: the record's own count or the policy's, whichever is higher."""
        by_policy = self.policy.required_approvals(record.risk)
        return by_policy if record.approvals_required is None else max(record.approvals_required, by_policy)

    def expires_at(self, record: ExecutionRecord) -> datetime:
        return record.expires_at or record.timestamp + self._ttl

    def may_approve_level(self, risk: Risk, user: str, user_groups: frozenset[str] = frozenset()) -> bool:
        """Whether the policy lists ``user`` (or one of ``user_groups``) as an approver for ``risk``."""
        approvers = set(self.policy.approvers.get(risk, []))
        return user in approvers or bool(approvers & set(user_groups))

    def approval_refusal(self, record: ExecutionRecord, user: str, user_groups: frozenset[str]) -> str | None:
        """Why ``user`` may not approve ``record``, or None when they may."""
        label = record.risk.label
        if not self.policy.approvers.get(record.risk):
            return f"the policy names no approvers for {label} plans, so nobody can approve this one"
        if not self.may_approve_level(record.risk, user, user_groups):
            return f"you are not an approver for {label} plans"
        if user == record.requested_by and not self.policy.self_approval.get(record.risk, False):
            return f"you asked for this plan, and the policy does not let anyone approve their own {label} plan"
        return None

    def rejection_refusal(self, record: ExecutionRecord, user: str, user_groups: frozenset[str]) -> str | None:
        if user == record.requested_by or self.may_approve_level(record.risk, user, user_groups):
            return None
        return f"only the requester or an approver for {record.risk.label} plans can reject this one"

    def edit_refusal(
        self, record: ExecutionRecord, editor: str, editor_groups: frozenset[str], new_risk: Risk
    ) -> str | None:
        if editor == record.requested_by:
            return None
        if any(self.may_approve_level(risk, editor, editor_groups) for risk in {record.risk, new_risk}):
            return None
        return "only the requester or an approver for this plan's risk level can edit it"

    def state_sentence(self, record: ExecutionRecord) -> str:
        """The record's state as a sentence for someone who clicked on it."""
        status = record.status
        if status is RecordStatus.PENDING_APPROVAL:
            count = len(approvers_of_current_plan(record))
            return f"this plan is awaiting approval ({count} of {self.required_for(record)})"
        if status is RecordStatus.APPROVED:
            return "this plan is already approved"
        if status is RecordStatus.REJECTED:
            last = next((a for a in reversed(record.approvals) if a.decision is Decision.REJECT), None)
            return f"this plan was rejected by {last.user}" if last else "this plan was rejected"
        if status is RecordStatus.EXPIRED:
            return f"this approval request expired at {_when(self.expires_at(record))}"
        if status is RecordStatus.RUNNING:
            return "this plan is already running"
        return f"this plan has already run ({status.value.replace('_', ' ')})"

    # -- helpers ------------------------------------------------------------------------------------------

    @property
    def _ttl(self) -> timedelta:
        return timedelta(minutes=self.policy.approval_ttl_minutes)

    def _is_expired(self, record: ExecutionRecord, now: datetime) -> bool:
        return now > self.expires_at(record)

    def _no_vote_note(self, risk: Risk, now: datetime) -> str:
        if risk is Risk.READ_ONLY and self.policy.auto_run_read_only:
            why = "read-only plans run without approval (policy: auto_run_read_only)"
        else:
            why = f"the policy requires no approvals for {risk.label} plans (min_approvals)"
        return f"approved without a vote at {_when(now)}: {why}"

    async def _get(self, record_id: UUID | str) -> ExecutionRecord:
        record = await self.store.get(record_id)
        if record is None:
            raise RecordNotFoundError(f"no execution record {record_id}")
        return record

    def _outcome(
        self,
        record: ExecutionRecord,
        *,
        accepted: bool,
        reason: str | None = None,
        now_approved: bool = False,
        now_rejected: bool = False,
        already_counted: bool = False,
    ) -> DecisionOutcome:
        return DecisionOutcome(
            accepted=accepted,
            reason=reason,
            record=record,
            approvals=len(approvers_of_current_plan(record)),
            approvals_required=self.required_for(record),
            quorum_reached=record.status is RecordStatus.APPROVED,
            now_approved=now_approved,
            now_rejected=now_rejected,
            already_counted=already_counted,
        )


def plan_binds(record: ExecutionRecord, plan_version: int, plan_hash: str) -> bool:
    """Whether a click naming ``plan_version`` and ``plan_hash`` (full, or a long enough prefix) is about
    the record's current plan."""
    candidate = (plan_hash or "").strip().lower()
    return (
        plan_version == record.plan_version
        and len(candidate) >= MIN_HASH_PREFIX
        and record.plan_hash.startswith(candidate)
    )


def approvers_of_current_plan(record: ExecutionRecord) -> list[str]:
    """The distinct users whose approval counts for the current plan version, in the order they approved."""
    return list(dict.fromkeys(a.user for a in record.approvals_for_current_plan() if a.decision is Decision.APPROVE))


def _decision(value: str | Decision) -> Decision:
    try:
        decision = Decision(value)
    except ValueError:
        decision = None
    if decision not in (Decision.APPROVE, Decision.REJECT):
        raise ApprovalError(f"a decision is `approve` or `reject`, not {value!r}")
    return decision


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in err["loc"])
    return f"{where}: {err['msg']}" if where else err["msg"]
