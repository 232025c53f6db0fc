"""Runs in progress in this process, shown live in their Slack thread, and the plans that follow a failed run.

``run_approved`` / ``run_dry`` run a record through the execution service with a ``SlackStreamSink`` posting
in the plan's thread (progress message, then a message per command), always closing the sink afterwards.
While a run goes on it is listed in ``REGISTRY`` (record id to its ``Cancellation`` and sink), which is how
a Cancel click finds it. The registry is per process: a run started by another process (or one that already
ended) is not in it, and a Cancel click for it is answered with that, never guessed at.

``retry_plan`` and ``rollback_plan`` build, from a finished record, the new plans the progress message's
"Retry failed commands" and "Roll back" buttons propose. They are only proposals: each goes through
approval like any other plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from slack_sdk.models.blocks import Block

from bot.slack.blocks.actions import SHORT_HASH_LENGTH, ActionRef
from bot.slack.blocks.run_controls import cancel_controls, follow_up_controls
from bot.slack.client import BudgetedWebClient
from bot.slack.context import BotContext
from bot.slack.stream import ProgressView, SlackStreamSink, StreamCommand, StreamPlan
from engine.errors import CloudOpsError
from engine.execution import RunOutcome
from engine.executors.base import ExecutionContext
from engine.history.records import CommandStatus, ExecutionRecord, parse_conversation_id
from engine.orchestrator import Cancellation
from engine.plan import CommandSpec, ExecutionMode, FailurePolicy, Plan, PlanCommand, plan_from_data
from engine.redact import redact_text
from engine.results import PlanResult, RunState
from engine.sinks import NullSink, OutputSink

logger = logging.getLogger("cloudops.slack.runs")

# What "failed" means for a retry: every command that did not end succeeded (or undone).
RETRY_STATUSES = frozenset(
    {
        CommandStatus.FAILED,
        CommandStatus.SKIPPED,
        CommandStatus.CANCELLED,
        CommandStatus.INTERRUPTED,
        CommandStatus.PENDING,
        CommandStatus.RUNNING,
    }
)
_RETRY_STATES = frozenset({RunState.FAILED, RunState.SKIPPED, RunState.CANCELLED, RunState.PENDING, RunState.RUNNING})
_SUMMARY_MAX = 2_000
_ID_MAX = 64


# ---------------------------------------------------------------------------------------------------------
# The registry


@dataclass
class ActiveRun:
    record_id: UUID
    ref: ActionRef
    cancellation: Cancellation
    sink: OutputSink
    requested_by: str
    started_by: str
    dry_run: bool = False

    @property
    def progress_ts(self) -> str | None:
        return self.sink.progress_ts if isinstance(self.sink, SlackStreamSink) else None


@dataclass
class RunRegistry:
    """Runs in progress in this process, by the record id their buttons carry."""

    _runs: dict[UUID, list[ActiveRun]] = field(default_factory=dict)

    def add(self, run: ActiveRun) -> None:
        self._runs.setdefault(run.record_id, []).append(run)

    def remove(self, run: ActiveRun) -> None:
        entries = self._runs.get(run.record_id, [])
        if run in entries:
            entries.remove(run)
        if not entries:
            self._runs.pop(run.record_id, None)

    def find(self, record_id: UUID, progress_ts: str | None = None) -> ActiveRun | None:
        """The run of ``record_id`` whose progress message is ``progress_ts`` (the one clicked), else the one
        that is showing (a run that lost the claim to another click never posts)."""
        entries = self._runs.get(record_id, [])
        if progress_ts is not None:
            for run in entries:
                if run.progress_ts == progress_ts:
                    return run
        showing = [run for run in entries if run.progress_ts is not None and not run.dry_run]
        if showing:
            return showing[0]
        real = [run for run in entries if not run.dry_run]
        return real[0] if real else None

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._runs.values())


REGISTRY = RunRegistry()


# ---------------------------------------------------------------------------------------------------------
# Running with the streaming sink


def record_ref(record: ExecutionRecord) -> ActionRef:
    return ActionRef(
        record_id=record.id, plan_version=record.plan_version, plan_hash=record.plan_hash[:SHORT_HASH_LENGTH]
    )


def record_thread(record: ExecutionRecord) -> tuple[str, str] | None:
    try:
        ref = parse_conversation_id(record.conversation_id)
    except CloudOpsError:
        return None
    if ref.kind != "slack" or ref.channel is None or ref.thread_ts is None:
        return None
    return ref.channel, ref.thread_ts


def stream_plan(record: ExecutionRecord) -> StreamPlan | None:
    """The record's commands as the sink lists them before they run (redacted), or None if unreadable."""
    try:
        plan = plan_from_data(record.execution_plan)
    except CloudOpsError:
        return None
    return StreamPlan(
        commands=tuple(
            StreamCommand(
                id=c.id,
                display=redact_text(c.display),
                rollback=tuple(redact_text(step.display) for step in c.rollback),
            )
            for c in plan.commands
        ),
        summary=redact_text(plan.summary),
        plan_hash=record.plan_hash,
    )


def progress_actions_for(record: ExecutionRecord, cancellation: Cancellation, *, dry_run: bool = False) -> Any:
    """The ``progress_actions`` hook: Cancel while running; after a failed real run, Retry / Roll back."""
    ref = record_ref(record)
    rollbacks = _rollback_specs(record)

    def actions(view: ProgressView) -> Sequence[Block]:
        if not view.finished:
            return cancel_controls(ref, cancelled_by=cancellation.by if cancellation.cancelled else None)
        result = view.result
        if dry_run or result is None or result.state in (RunState.SUCCEEDED, RunState.SKIPPED):
            return []
        return follow_up_controls(
            ref, retry=_result_has_retry(result), rollback=_result_has_rollback(result, rollbacks)
        )

    return actions


def _result_has_retry(result: PlanResult) -> bool:
    return any(c.state in _RETRY_STATES for c in result.commands)


def _result_has_rollback(result: PlanResult, rollbacks: dict[str, list[CommandSpec]]) -> bool:
    return any(
        c.state is RunState.SUCCEEDED and c.id not in result.rolled_back and rollbacks.get(c.id)
        for c in result.commands
    )


def _sink_for(
    client: Any, record: ExecutionRecord, thread: tuple[str, str] | None, cancellation: Cancellation, dry_run: bool
) -> OutputSink:
    if thread is None:
        return NullSink()
    if not isinstance(client, BudgetedWebClient):
        logger.warning("the Slack client has no shared budget; record %s runs without live output", record.id)
        return NullSink()
    return SlackStreamSink(
        client,
        thread[0],
        thread[1],
        plan=stream_plan(record),
        progress_actions=progress_actions_for(record, cancellation, dry_run=dry_run),
    )


# When the run itself is cancelled (shutdown), Slack gets a few seconds to catch up, not the sink's full wait.
CANCELLED_CLOSE_SECONDS = 5.0


async def _close(sink: OutputSink, *, patience: float | None = None) -> None:
    if isinstance(sink, SlackStreamSink):
        try:
            await asyncio.wait_for(sink.aclose(), patience)
        except TimeoutError:
            logger.warning("the Slack sink did not catch up within %.0f s of the run being cancelled", patience)
        except Exception:
            logger.exception("closing the Slack sink failed")


@contextlib.asynccontextmanager
async def _tracked(
    client: Any, record: ExecutionRecord, *, started_by: str, dry_run: bool
) -> AsyncIterator[tuple[OutputSink, Cancellation]]:
    """A sink streaming into the record's thread and a cancellation, registered for the Cancel button while
    the run lasts; the sink is closed (final edits, files) when it ends."""
    cancellation = Cancellation()
    sink = _sink_for(client, record, record_thread(record), cancellation, dry_run=dry_run)
    run = ActiveRun(
        record_id=record.id,
        ref=record_ref(record),
        cancellation=cancellation,
        sink=sink,
        requested_by=record.requested_by,
        started_by=started_by,
        dry_run=dry_run,
    )
    REGISTRY.add(run)
    cancelled = False
    try:
        yield sink, cancellation
    except asyncio.CancelledError:
        cancelled = True
        raise
    finally:
        REGISTRY.remove(run)
        await _close(sink, patience=CANCELLED_CLOSE_SECONDS if cancelled else None)


async def run_approved(
    bot: BotContext, client: Any, record: ExecutionRecord, *, context: ExecutionContext, started_by: str
) -> RunOutcome:
    """Run an approved record (the execution service claims it: it runs at most once), streamed into its
    thread and cancellable from there while it runs. Raises what ``ExecutionService.run_approved`` raises."""
    async with _tracked(client, record, started_by=started_by, dry_run=False) as (sink, cancellation):
        return await bot.executions.run_approved(
            record.id, context=context, sink=sink, cancellation=cancellation, started_by=started_by
        )


async def run_dry(
    bot: BotContext, client: Any, record: ExecutionRecord, *, context: ExecutionContext, requested_by: str
) -> PlanResult:
    """Dry-run a record's plan, streamed into its thread; cancellable from its own progress message."""
    async with _tracked(client, record, started_by=requested_by, dry_run=True) as (sink, cancellation):
        return await bot.executions.run_dry(
            record.id, requested_by=requested_by, context=context, sink=sink, cancellation=cancellation
        )


# ---------------------------------------------------------------------------------------------------------
# The plans a failed run can be followed by


def _rollback_specs(record: ExecutionRecord) -> dict[str, list[CommandSpec]]:
    try:
        plan = plan_from_data(record.execution_plan)
    except CloudOpsError:
        return {}
    return {c.id: list(c.rollback) for c in plan.commands if c.rollback}


def _summary(prefix: str, summary: str) -> str:
    text = f"{prefix}: {summary}"
    return text if len(text) <= _SUMMARY_MAX else text[: _SUMMARY_MAX - 1] + "…"


def retry_plan(record: ExecutionRecord) -> Plan | None:
    """The record's commands that did not succeed (failed, skipped, cancelled...), as a new plan with the same
    mode, failure policy and rollback steps; dependencies on commands that succeeded are dropped. None when
    every command succeeded (or was undone)."""
    plan = plan_from_data(record.execution_plan)
    status = {c.id: c.status for c in record.commands}
    keep = [c for c in plan.commands if status.get(c.id, CommandStatus.PENDING) in RETRY_STATUSES]
    if not keep:
        return None
    ids = {c.id for c in keep}
    commands = [c.model_copy(update={"depends_on": [d for d in c.depends_on if d in ids]}) for c in keep]
    return Plan(
        summary=_summary("Retry of the failed commands", plan.summary),
        mode=plan.mode,
        on_failure=plan.on_failure,
        risk=plan.risk,
        commands=commands,
    )


def rollback_plan(record: ExecutionRecord) -> Plan | None:
    """The rollback steps of every command that succeeded and was not undone, newest completion first, as a
    sequential plan that stops at the first failure. None when there is nothing to undo."""
    specs = _rollback_specs(record)
    done = [c for c in record.commands if c.status is CommandStatus.SUCCEEDED and specs.get(c.id)]
    if not done:
        return None
    order = {c.id: i for i, c in enumerate(record.commands)}
    # Newest completion first; commands without a time keep their reverse plan order.
    done.sort(
        key=lambda c: (c.completed_at.timestamp() if c.completed_at else float("-inf"), order[c.id]), reverse=True
    )
    commands: list[PlanCommand] = []
    used: set[str] = set()
    for command in done:
        steps = specs[command.id]
        for number, step in enumerate(steps, start=1):
            suffix = "-undo" if len(steps) == 1 else f"-undo-{number}"
            new_id = f"{command.id[: _ID_MAX - len(suffix)]}{suffix}"
            if new_id in used:
                new_id = f"undo-{len(commands) + 1}"
            used.add(new_id)
            commands.append(
                PlanCommand(
                    id=new_id,
                    cli=step.cli,
                    sdk=step.sdk,
                    description=f"Undo {command.id}" + (f" (step {number} of {len(steps)})" if len(steps) > 1 else ""),
                )
            )
    return Plan(
        summary=_summary("Roll back", record.summary),
        mode=ExecutionMode.SEQUENTIAL,
        on_failure=FailurePolicy.STOP,
        commands=commands,
    )
