"""Folding a run's ``PlanResult`` into an execution record.

The engine redacts results before anything sees them, so what arrives here is safe to keep; this module only
caps the output (see ``engine.history.output``) and maps the engine's states onto the record's.
"""

from __future__ import annotations

from engine.history.output import DEFAULT_OUTPUT_CAP_BYTES, cap_output
from engine.history.records import (
    CommandRecord,
    CommandStatus,
    ExecutionRecord,
    RecordStatus,
    RollbackRecord,
    RollbackSummary,
)
from engine.results import CommandOutcome, CommandResult, PlanResult, RollbackOutcome, RunState

_RECORD_STATUS = {
    RunState.PENDING: RecordStatus.RUNNING,
    RunState.RUNNING: RecordStatus.RUNNING,
    RunState.SUCCEEDED: RecordStatus.SUCCEEDED,
    RunState.FAILED: RecordStatus.FAILED,
    RunState.ROLLED_BACK: RecordStatus.ROLLED_BACK,
    RunState.CANCELLED: RecordStatus.CANCELLED,
    # A plan whose every command was skipped did not run; nothing failed, nothing finished its work.
    RunState.SKIPPED: RecordStatus.CANCELLED,
}


def record_status_for(state: RunState) -> RecordStatus:
    """The record status a plan in ``state`` is in (unfinished states count as still running)."""
    return _RECORD_STATUS[state]


def apply_plan_result(
    record: ExecutionRecord, result: PlanResult, *, output_cap_bytes: int = DEFAULT_OUTPUT_CAP_BYTES
) -> ExecutionRecord:
    """A copy of ``record`` with the run's results: per command status, capped output, attempts, rollbacks.

    The record's ``status`` is left alone: pass ``record_status_for(result.state)`` as the transition's
    ``new_status`` so the status change goes through the store's compare-and-set.
    """
    by_id = {outcome.id: outcome for outcome in result.commands}
    commands: list[CommandRecord] = []
    for command in record.commands:
        outcome = by_id.pop(command.id, None)
        commands.append(command if outcome is None else _apply_outcome(command, outcome, output_cap_bytes))
    # Commands the result knows but the record does not (should not happen) are kept rather than dropped.
    for outcome in by_id.values():
        placeholder = CommandRecord(id=outcome.id, command=outcome.display)
        commands.append(_apply_outcome(placeholder, outcome, output_cap_bytes))

    return record.model_copy(
        update={
            "commands": commands,
            "started_at": result.started_at,
            "finished_at": result.finished_at if result.state.finished else None,
            "duration_seconds": result.duration_seconds,
            "dry_run": record.dry_run or result.dry_run,
            "cancelled_by": result.cancelled_by or record.cancelled_by,
            "rollback": RollbackSummary(
                rolled_back=list(result.rolled_back), not_rolled_back=list(result.not_rolled_back)
            )
            if (result.rolled_back or result.not_rolled_back)
            else record.rollback,
        }
    )


def _apply_outcome(command: CommandRecord, outcome: CommandOutcome, cap: int) -> CommandRecord:
    update: dict[str, object] = {
        "status": CommandStatus.from_run_state(outcome.state),
        "started_at": outcome.started_at,
        "completed_at": outcome.finished_at,
        "duration_seconds": outcome.duration_seconds,
        "skipped_reason": outcome.skipped_reason,
        "rollback": [_rollback_record(step, cap) for step in outcome.rollback],
    }
    if outcome.result is not None:
        update.update(_result_fields(outcome.result, cap))
        update["executor"] = outcome.result.executor
        update["exit_code"] = outcome.result.exit_code
        update["attempts"] = list(outcome.result.attempts)
    return command.model_copy(update=update)


def _rollback_record(step: RollbackOutcome, cap: int) -> RollbackRecord:
    fields: dict[str, object] = {}
    duration = None
    if step.result is not None:
        fields = _result_fields(step.result, cap)
        duration = step.result.duration_seconds
    return RollbackRecord(
        step=step.step,
        command=step.display,
        status=CommandStatus.from_run_state(step.state),
        duration_seconds=duration,
        **fields,  # type: ignore[arg-type]
    )


def _result_fields(result: CommandResult, cap: int) -> dict[str, object]:
    capped = cap_output(result.output, cap)
    return {
        "output": capped.text,
        "output_bytes": capped.output_bytes,
        "output_sha256": capped.output_sha256,
        "output_truncated": capped.output_truncated,
        "error_code": result.error_code,
        "error_message": result.error_message,
    }
