"""Running approved plans from their execution records: exactly once, fail closed, every outcome recorded.

The record is the only source of what runs. ``run_approved`` reads the plan stored in it, checks that it still
hashes to the approved ``plan_hash`` and validates it again under the current policy, then claims the record
with a compare-and-set ``approved -> running``. Only the caller whose claim lands runs the plan; if the claim
cannot be written, nothing runs (the store not knowing a run started is worse than the run not happening).

Decisions worth knowing:

* A record that fails those checks (stored plan changed, refused by the current policy, rated riskier now
  than when it was approved, approved without its quorum) is claimed and then marked ``failed`` with a note
  saying why: nothing ran, and nobody should try it again. Its commands are marked skipped with the reason.
* When the record names an AWS profile or region, the run must use the same one: approvers approved a
  plan against that target. A record that names none runs where the caller's context points.
* A dry run needs no approval and never touches the record it checks: it is stored as a record of its own
  (``dry_run=True``, ``dry_run_of`` the checked record, same conversation, requested by whoever asked for
  it), created directly as ``running``, so no path leads from it to a real run.
* A run whose calling task is cancelled (shutdown) is recorded ``interrupted`` with what was seen of its
  commands; a crash inside the orchestrator is recorded ``failed``. Either way the error is raised again.
* The final write is retried with backoff; if it still fails, the result is returned anyway (marked
  ``stored=False``) and logged, and the record stays ``running`` until the next start-up marks it
  ``interrupted``. If start-up recovery elsewhere marked it first, the results are added to that record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel

from engine.approval import approvers_of_current_plan
from engine.commands import ValidatedPlan
from engine.config import EngineSettings
from engine.errors import CloudOpsError, PlanError, PlanValidationError, StoreError
from engine.executors.base import ExecutionContext
from engine.history.errors import RecordNotFoundError
from engine.history.outcomes import apply_plan_result, record_status_for
from engine.history.records import (
    ApprovalDecision,
    CommandRecord,
    CommandStatus,
    Decision,
    ExecutionRecord,
    RecordStatus,
    utc_now,
)
from engine.history.store import HistoryStore
from engine.off_loop import off_loop
from engine.orchestrator import Cancellation, Orchestrator
from engine.plan import plan_from_data
from engine.policy import Policy
from engine.results import PlanResult, RunState
from engine.runtime import build_orchestrator
from engine.sinks import CommandStateChanged, Event, OutputSink
from engine.validate import validate_plan

log = logging.getLogger(__name__)
T = TypeVar("T")

# Losing a claim race to a write that is not a claim (an edit that was then approved again) means reading
# and checking again; a handful of rounds is plenty for any real contention.
CLAIM_ATTEMPTS = 16
FINAL_WRITE_ATTEMPTS = 5
FINAL_WRITE_BACKOFF_SECONDS = 0.25
TERMINAL_CONFIRMATION = "confirmed at the terminal"


class ExecutionRefused(CloudOpsError):
    """Nothing ran: the history could not record the run (or be read), or the caller asked for something
    that may not run as asked. The message says which."""


class RunOutcome(BaseModel):
    """What a run request did. ``started`` is False when nothing ran; ``reason`` then says why."""

    started: bool
    reason: str | None = None
    record: ExecutionRecord | None = None
    result: PlanResult | None = None
    stored: bool = True  # False when the run's result could not be written to its record


class ExecutionService:
    def __init__(
        self,
        store: HistoryStore,
        policy: Policy,
        settings: EngineSettings,
        *,
        orchestrator: Orchestrator | None = None,
        clock: Callable[[], datetime] = utc_now,
        final_write_attempts: int = FINAL_WRITE_ATTEMPTS,
        final_write_backoff_seconds: float = FINAL_WRITE_BACKOFF_SECONDS,
    ) -> None:
        self.store = store
        self.policy = policy
        self.settings = settings
        self._orchestrator = orchestrator or build_orchestrator(settings)
        self._clock = clock
        self._final_write_attempts = max(1, final_write_attempts)
        self._final_write_backoff = final_write_backoff_seconds

    # -- approved runs ------------------------------------------------------------------------------------

    async def run_approved(
        self,
        record_id: UUID | str,
        *,
        context: ExecutionContext,
        sink: OutputSink,
        cancellation: Cancellation | None = None,
        started_by: str | None = None,
    ) -> RunOutcome:
        """Run the approved plan stored in the record, once. Raises ``ExecutionRefused`` if the store fails
        before anything ran; returns ``started=False`` with the reason when the record may not run."""
        if context.dry_run:
            raise ExecutionRefused("run_approved runs for real; use run_dry for a dry run")
        for _ in range(CLAIM_ATTEMPTS):
            record = await self._read(record_id)
            refusal = _not_runnable(record)
            if refusal is not None:
                return RunOutcome(started=False, reason=refusal, record=record)
            _check_target(record, context)
            # Validation is CPU work of up to the validation time budget; the event loop must keep serving.
            validated, problem = await off_loop(self._check_plan, record)
            claim = await self._write_before_run(
                self.store.transition(
                    record.id,
                    expected_status=RecordStatus.APPROVED,
                    expected_version=record.version,
                    changes={"started_by": started_by, "started_at": self._clock()},
                    new_status=RecordStatus.RUNNING,
                )
            )
            if not claim.applied:
                if claim.record.status is RecordStatus.APPROVED:
                    continue  # changed but still approved (maybe a new version): read and check it again
                return RunOutcome(started=False, reason=_already(claim.record), record=claim.record)
            if problem is not None:
                failed = await self._refuse_claimed(claim.record, problem)
                return RunOutcome(started=False, reason=problem, record=failed)
            assert validated is not None
            return await self._execute(claim.record, validated, context, sink, cancellation)
        raise ExecutionRefused(
            f"record {record_id} kept changing while it was being started ({CLAIM_ATTEMPTS} attempts); nothing ran"
        )

    # -- dry runs -----------------------------------------------------------------------------------------

    async def run_dry(
        self,
        source: UUID | str | ValidatedPlan,
        *,
        requested_by: str,
        context: ExecutionContext,
        sink: OutputSink,
        cancellation: Cancellation | None = None,
        conversation_id: str | None = None,
        user_prompt: str = "",
    ) -> PlanResult:
        """Dry-run a record's plan (by id) or a plan, stored as a dry-run record of its own; see the module
        notes. The record checked is never changed. Raises ``ExecutionRefused`` when it may not run."""
        outcome = await self._dry(
            source,
            requested_by=requested_by,
            context=context,
            sink=sink,
            cancellation=cancellation,
            conversation_id=conversation_id,
            user_prompt=user_prompt,
        )
        assert outcome.result is not None
        return outcome.result

    async def _dry(
        self,
        source: UUID | str | ValidatedPlan,
        *,
        requested_by: str,
        context: ExecutionContext,
        sink: OutputSink,
        cancellation: Cancellation | None,
        conversation_id: str | None,
        user_prompt: str,
    ) -> RunOutcome:
        # Whatever the caller passed, a dry run only ever asks AWS to check.
        context = context.model_copy(update={"dry_run": True})
        fields: dict[str, Any] = {}
        if isinstance(source, ValidatedPlan):
            if conversation_id is None:
                raise ExecutionRefused("a dry run of a plan that has no record needs a conversation id")
            validated, problem = await off_loop(self._validate_now, source.stored, source.hash)
            what = "dry run requested directly"
        else:
            original = await self._read(source)
            _check_target(original, context)
            try:
                validated, problem = await off_loop(self._validate_stored, original)
            except PlanError as exc:
                validated, problem = None, f"the stored plan cannot be read ({exc})"
            conversation_id = original.conversation_id
            user_prompt = user_prompt or original.user_prompt
            fields = {
                "dry_run_of": original.id,
                "channel": original.channel,
                "link": original.link,
                "environment": original.environment,
            }
            what = f"dry run of record {original.id} (plan version {original.plan_version})"
        if problem is not None:
            raise ExecutionRefused(f"the dry run was refused: {problem}")
        assert validated is not None
        now = self._clock()
        record = ExecutionRecord.new_from_plan(
            validated,
            conversation_id=conversation_id,
            requested_by=requested_by,
            user_prompt=user_prompt,
            status=RecordStatus.RUNNING,
            profile=context.profile,
            region=context.region,
            dry_run=True,
            now=now,
            approvals_required=0,
            **fields,
        ).model_copy(
            update={
                "started_by": requested_by,
                "started_at": now,
                "notes": [f"{what} by {requested_by}: AWS only checks the requests, so no approval is needed"],
            }
        )
        created = await self._write_before_run(self.store.create(record))
        return await self._execute(created, validated, context, sink, cancellation)

    # -- the command line ---------------------------------------------------------------------------------

    async def run_local(
        self,
        validated: ValidatedPlan,
        *,
        conversation_id: str,
        requested_by: str,
        user_prompt: str = "",
        context: ExecutionContext,
        sink: OutputSink,
        cancellation: Cancellation | None = None,
        confirmation: str = TERMINAL_CONFIRMATION,
    ) -> RunOutcome:
        """Record and run a plan the operator confirmed at the terminal (``cloudops run``).

        The record is created ``approved`` with the operator's decision, then run like any approved record.
        With a dry-run context it is a dry run instead. Raises ``ExecutionRefused`` if the record cannot be
        created: then nothing ran.
        """
        if context.dry_run:
            return await self._dry(
                validated,
                requested_by=requested_by,
                context=context,
                sink=sink,
                cancellation=cancellation,
                conversation_id=conversation_id,
                user_prompt=user_prompt,
            )
        now = self._clock()
        record = ExecutionRecord.new_from_plan(
            validated,
            conversation_id=conversation_id,
            requested_by=requested_by,
            user_prompt=user_prompt,
            status=RecordStatus.APPROVED,
            profile=context.profile,
            region=context.region,
            now=now,
            approvals_required=1,
        ).model_copy(
            update={
                "approvals": [
                    ApprovalDecision(
                        user=requested_by,
                        decision=Decision.APPROVE,
                        at=now,
                        plan_hash=validated.hash,
                        plan_version=1,
                        comment=confirmation,
                    )
                ],
                "notes": [f"approved at the terminal by {requested_by} ({confirmation})"],
            }
        )
        created = await self._write_before_run(self.store.create(record))
        return await self.run_approved(
            created.id, context=context, sink=sink, cancellation=cancellation, started_by=requested_by
        )

    async def recover(self) -> list[ExecutionRecord]:
        return await recover(self.store)

    # -- checks -------------------------------------------------------------------------------------------

    def _check_plan(self, record: ExecutionRecord) -> tuple[ValidatedPlan | None, str | None]:
        """The record's plan validated now, or why it must not run."""
        try:
            plan = _stored_plan(record)
        except PlanError as exc:
            return None, f"the stored plan cannot be read ({exc}); nothing was run"
        validated, problem = self._validate_now(plan, record.plan_hash)
        if problem is not None:
            return None, problem
        assert validated is not None
        if validated.risk > record.risk:
            return None, (
                f"the current policy rates this plan {validated.risk.label}, above the {record.risk.label} it was "
                f"approved at; propose it again so the right people approve it"
            )
        required = record.approvals_required
        if required is None:
            required = self.policy.required_approvals(record.risk)
        given = len(approvers_of_current_plan(record))
        if given < required:
            return None, (
                f"the record is marked approved but holds {given} of the {required} approvals version "
                f"{record.plan_version} needs; refusing to run it"
            )
        return validated, None

    def _validate_stored(self, record: ExecutionRecord) -> tuple[ValidatedPlan | None, str | None]:
        return self._validate_now(_stored_plan(record), record.plan_hash)

    def _validate_now(self, plan: Any, expected_hash: str) -> tuple[ValidatedPlan | None, str | None]:
        if plan.hash != expected_hash:
            return None, (
                f"the stored plan does not match the approved one (hash {plan.short_hash}, approved "
                f"{expected_hash[:12]}): it was changed after approval"
            )
        try:
            return validate_plan(plan, self.policy), None
        except PlanValidationError as exc:
            return None, "the current policy refuses this plan: " + "; ".join(exc.problems)
        except Exception as exc:
            # Fail closed: a plan that cannot be checked is not run.
            log.exception("validating the plan %s failed", plan.short_hash)
            return None, f"the plan could not be checked ({type(exc).__name__}: {exc})"

    # -- running and recording ----------------------------------------------------------------------------

    async def _execute(
        self,
        record: ExecutionRecord,
        validated: ValidatedPlan,
        context: ExecutionContext,
        sink: OutputSink,
        cancellation: Cancellation | None,
    ) -> RunOutcome:
        tracker = _CommandTracker(sink)
        try:
            result = await self._orchestrator.execute(validated, context, tracker, cancellation=cancellation)
        except asyncio.CancelledError:
            await _shielded(self._store_unfinished(record, tracker, RecordStatus.INTERRUPTED, "its task was cancelled"))
            raise
        except Exception as exc:
            log.exception("running record %s failed inside the engine", record.id)
            reason = f"the engine failed while running it ({type(exc).__name__}: {exc})"
            await _shielded(self._store_unfinished(record, tracker, RecordStatus.FAILED, reason))
            raise
        stored, landed = await self._store_result(record, result)
        reason = None
        if not landed:
            reason = (
                f"the run finished ({result.state.value}) but its record could not be updated; it shows as running "
                f"until the next start-up marks it interrupted"
            )
        return RunOutcome(started=True, reason=reason, record=stored, result=result, stored=landed)

    async def _store_result(self, record: ExecutionRecord, result: PlanResult) -> tuple[ExecutionRecord, bool]:
        status = record_status_for(result.state)
        delay = self._final_write_backoff
        for attempt in range(1, self._final_write_attempts + 1):
            try:
                written = await self.store.transition(
                    record.id,
                    expected_status=RecordStatus.RUNNING,
                    changes=lambda current: apply_plan_result(current, result),
                    new_status=status,
                )
            except StoreError as exc:
                log.warning(
                    "record %s: storing the result failed (attempt %d of %d): %s",
                    record.id,
                    attempt,
                    self._final_write_attempts,
                    exc,
                )
                if attempt < self._final_write_attempts:
                    await asyncio.sleep(delay)
                    delay *= 2
                continue
            if written.applied:
                return written.record, True
            if written.record.status is RecordStatus.RUNNING:
                continue  # another write to the running record landed first; write on top of it
            return await self._attach_late_result(written.record, result), True
        log.error(
            "record %s: the run finished (%s) but its result could not be stored after %d attempts",
            record.id,
            result.state.value,
            self._final_write_attempts,
        )
        return record, False

    async def _attach_late_result(self, current: ExecutionRecord, result: PlanResult) -> ExecutionRecord:
        """Keep a result whose record left ``running`` without this process (start-up recovery elsewhere)."""
        note = (
            f"the run finished as {result.state.value} after this record was marked {current.status.value}; "
            f"the command results below are from that run"
        )
        log.error("record %s: %s", current.id, note)
        try:
            written = await self.store.transition(
                current.id,
                expected_status=current.status,
                expected_version=current.version,
                changes=lambda c: apply_plan_result(c, result).model_copy(update={"notes": [*c.notes, note]}),
            )
        except StoreError as exc:
            log.error("record %s: the late result could not be stored either: %s", current.id, exc)
            return current
        return written.record

    async def _store_unfinished(
        self, record: ExecutionRecord, tracker: _CommandTracker, status: RecordStatus, reason: str
    ) -> None:
        def changes(current: ExecutionRecord) -> dict[str, Any]:
            return {
                "commands": tracker.apply(current.commands),
                "finished_at": self._clock(),
                "notes": [*current.notes, f"{status.value}: {reason}"],
            }

        try:
            await self.store.transition(
                record.id, expected_status=RecordStatus.RUNNING, changes=changes, new_status=status
            )
        except StoreError as exc:
            log.error("record %s: could not record that the run stopped (%s): %s", record.id, reason, exc)

    async def _refuse_claimed(self, record: ExecutionRecord, problem: str) -> ExecutionRecord:
        """Close a claimed record that must not run: ``failed``, nothing ran, the reason in a note."""
        why = f"not run: {problem}"

        def changes(current: ExecutionRecord) -> dict[str, Any]:
            return {
                "commands": [
                    c.model_copy(update={"status": CommandStatus.SKIPPED, "skipped_reason": why})
                    if c.status is CommandStatus.PENDING
                    else c
                    for c in current.commands
                ],
                "finished_at": self._clock(),
                "notes": [*current.notes, f"refused before running: {problem}"],
            }

        log.warning("record %s refused before running: %s", record.id, problem)
        try:
            written = await self.store.transition(
                record.id, expected_status=RecordStatus.RUNNING, changes=changes, new_status=RecordStatus.FAILED
            )
        except StoreError as exc:
            # Nothing ran either way; start-up recovery will mark the claimed record interrupted.
            log.error("record %s: could not record the refusal: %s", record.id, exc)
            return record
        return written.record

    async def _write_before_run(self, write: Awaitable[T]) -> T:
        try:
            return await write
        except StoreError as exc:
            raise ExecutionRefused(f"the history store could not record the run, so nothing ran: {exc}") from exc

    async def _read(self, record_id: UUID | str) -> ExecutionRecord:
        try:
            record = await self.store.get(record_id)
        except StoreError as exc:
            raise ExecutionRefused(f"the history store cannot be read, so nothing ran: {exc}") from exc
        if record is None:
            raise RecordNotFoundError(f"no execution record {record_id}")
        return record


async def recover(store: HistoryStore) -> list[ExecutionRecord]:
    """At start-up: mark every run a stopped process left ``running`` as ``interrupted``. Runs nothing again."""
    recovered = await store.recover_interrupted()
    for record in recovered:
        log.warning(
            "record %s was left running by a process that stopped; marked interrupted, not run again", record.id
        )
    return recovered


class _CommandTracker:
    """Passes events on and remembers each command's last state, for a run that ends without a result."""

    def __init__(self, sink: OutputSink) -> None:
        self._sink = sink
        self._last: dict[str, CommandStateChanged] = {}

    async def emit(self, event: Event) -> None:
        if isinstance(event, CommandStateChanged):
            self._last[event.command_id] = event
        await self._sink.emit(event)

    def apply(self, commands: list[CommandRecord]) -> list[CommandRecord]:
        updated = []
        for command in commands:
            seen = self._last.get(command.id)
            if seen is None:
                updated.append(command)
                continue
            state = seen.state
            status = (
                CommandStatus.INTERRUPTED
                if state in (RunState.RUNNING, RunState.PENDING)
                else CommandStatus.from_run_state(state)
            )
            updated.append(command.model_copy(update={"status": status, "skipped_reason": seen.reason}))
        return updated


def _stored_plan(record: ExecutionRecord) -> Any:
    return plan_from_data(record.execution_plan)


def _not_runnable(record: ExecutionRecord) -> str | None:
    if record.dry_run:
        return "this is the record of a dry run; it never runs for real"
    if record.status is RecordStatus.APPROVED:
        return None
    if record.status is RecordStatus.PENDING_APPROVAL:
        return "this plan is not approved yet"
    return _already(record)


def _already(record: ExecutionRecord) -> str:
    by = f" (started by {record.started_by})" if record.started_by else ""
    if record.status is RecordStatus.RUNNING:
        return f"already running{by}"
    if record.status is RecordStatus.PENDING_APPROVAL:
        return "this plan is not approved yet (it was edited and needs approval again)"
    if record.status in (RecordStatus.REJECTED, RecordStatus.EXPIRED):
        return f"this plan was not approved: it is {record.status.value}"
    return f"already finished: {record.status.value.replace('_', ' ')}{by}"


def _check_target(record: ExecutionRecord, context: ExecutionContext) -> None:
    if record.aws_profile is not None and context.profile != record.aws_profile:
        raise ExecutionRefused(
            f"this plan was approved for AWS profile {record.aws_profile!r}, not {context.profile!r}; nothing ran"
        )
    if record.aws_region is not None and context.region != record.aws_region:
        raise ExecutionRefused(
            f"this plan was approved for region {record.aws_region!r}, not {context.region!r}; nothing ran"
        )


async def _shielded(write: Any) -> None:
    # The record of how a run ended must be written even while the task that ran it is being cancelled.
    task = asyncio.ensure_future(write)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
