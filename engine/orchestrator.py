"""Runs a validated plan: ordering, bounded parallelism, failure policy, rollback, cancellation and dry run.

The orchestrator knows nothing of executors or retries: it is handed ``run_command``, which runs one command
with its retries and streams the command's output to the sink it is given. Every sink the orchestrator
hands out, and every result it keeps, has been through redaction first, so no caller can forget it.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from graphlib import TopologicalSorter
from typing import Any

from engine.commands import ResolvedCommand, ValidatedCommand, ValidatedPlan
from engine.dry_run import DRY_RUN_NOT_RUN_REASON, dry_run_variant
from engine.executors.base import ExecutionContext
from engine.executors.response import shaped_by_cloudops
from engine.plan import ExecutionMode, FailurePolicy
from engine.redact import REDACTED, RedactingSink, StreamRedactor, prints_bare_secret, redact_result, redact_text
from engine.results import CommandOutcome, CommandResult, PlanResult, RollbackOutcome, RunState
from engine.sinks import CommandStateChanged, Event, OutputSink, PlanStateChanged

logger = logging.getLogger(__name__)

RunCommand = Callable[[ResolvedCommand, ExecutionContext, OutputSink], Awaitable[CommandResult]]

_UNMET = {
    RunState.FAILED: "failed",
    RunState.SKIPPED: "was skipped",
    RunState.CANCELLED: "was cancelled",
}


class Cancellation:
    """A cooperative cancel handle for one run. Use it from the event loop that runs the plan."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.by: str | None = None

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self, by: str) -> None:
        # The first to cancel is the one the result names; later calls change nothing.
        if not self._event.is_set():
            self.by = by
            self._event.set()

    async def wait(self) -> None:
        await self._event.wait()


class Orchestrator:
    """Runs plans. One instance may run several plans at once; each ``execute`` keeps its own state."""

    def __init__(self, run_command: RunCommand, *, max_parallel: int = 8):
        if max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        self._run_command = run_command
        self._max_parallel = max_parallel

    @property
    def max_parallel(self) -> int:
        return self._max_parallel

    async def execute(
        self,
        plan: ValidatedPlan,
        context: ExecutionContext,
        sink: OutputSink,
        *,
        cancellation: Cancellation | None = None,
    ) -> PlanResult:
        """Run ``plan`` to the end, a failure policy's stop, or a cancel, and say what happened to each command.

        Events go to ``sink`` (always through redaction) as they happen. Does not raise for command failures;
        if the calling task is cancelled, the running commands are cancelled too before it re-raises.
        """
        run = _PlanRun(
            self._run_command, self._max_parallel, plan, context, RedactingSink(sink), cancellation or Cancellation()
        )
        return await run.run()


class _PlanRun:
    """The state of one ``execute`` call."""

    def __init__(
        self,
        run_command: RunCommand,
        max_parallel: int,
        plan: ValidatedPlan,
        context: ExecutionContext,
        sink: RedactingSink,
        cancellation: Cancellation,
    ) -> None:
        self._run_command = run_command
        self._plan = plan
        self._context = context
        self._sink = sink
        self._cancellation = cancellation
        self._policy = plan.plan.on_failure
        # Sequential runs through the same scheduler with one slot: dependencies are still honoured, and among
        # ready commands the earliest in the plan goes first, which is plan order for any sensible plan.
        self._limit = 1 if plan.plan.mode is ExecutionMode.SEQUENTIAL else max_parallel
        self._graph = {c.id: list(c.depends_on) for c in plan.commands}
        unknown = sorted({d for deps in self._graph.values() for d in deps} - self._graph.keys())
        if unknown:
            raise ValueError(f"plan depends on commands it does not have: {', '.join(unknown)}")
        self._commands = {c.id: c for c in plan.commands}
        self._position = {c.id: i for i, c in enumerate(plan.commands)}
        # Displays are filled in (redacted: `--master-user-password ...`) as each command is reached, so the
        # first commands do not wait for the whole plan to be redacted.
        self._outcomes = {c.id: CommandOutcome(id=c.id, display="") for c in plan.commands}
        self._started: dict[str, float] = {}
        # Every child task, so that whatever way ``run`` ends, the ``finally`` there can reap them all.
        self._tasks: dict[asyncio.Task[Any], str] = {}
        self._succeeded_order: list[str] = []
        # In a dry run, a command with no dry-run mode is only validated; its dependents are still checked,
        # since no dry-run command changes anything they could depend on.
        self._validated_only: set[str] = set()
        self._halted_by: str | None = None
        self._cancelled_by: str | None = None
        self._rollback_ran = False
        self._sink_failed = False
        self._rolled_back: list[str] = []
        self._not_rolled_back: list[str] = []

    async def run(self) -> PlanResult:
        started_at = _now()
        start = time.monotonic()
        cancel_waiter = asyncio.create_task(self._cancellation.wait(), name="cloudops:cancel-waiter")
        try:
            await self._emit(PlanStateChanged(state=RunState.RUNNING))
            await self._schedule(cancel_waiter)
            if self._should_roll_back():
                await self._roll_back(cancel_waiter)
        finally:
            # Also the path taken when the task running ``execute`` is itself cancelled: no child outlives it.
            await _cancel_and_wait([cancel_waiter, *self._tasks])
        result = PlanResult(
            plan_hash=self._plan.hash,
            state=self._final_state(),
            dry_run=self._context.dry_run,
            started_at=started_at,
            finished_at=_now(),
            duration_seconds=time.monotonic() - start,
            commands=[self._outcomes[c.id] for c in self._plan.commands],
            rolled_back=self._rolled_back,
            not_rolled_back=self._not_rolled_back,
            cancelled_by=self._cancelled_by,
        )
        await self._emit(PlanStateChanged(state=result.state, result=result))
        return result

    async def _emit(self, event: Event) -> None:
        # A sink that fails (a chat API down or rate limited) costs the user the view, not the run: stopping
        # a plan halfway, or losing the record of what already ran, would be worse than a missing message.
        try:
            await self._sink.emit(event)
        except Exception as exc:
            if not self._sink_failed:
                self._sink_failed = True
                logger.warning("output sink failed; the events it cannot take are dropped: %s", type(exc).__name__)

    # Scheduling

    async def _schedule(self, cancel_waiter: asyncio.Task[None]) -> None:
        sorter = TopologicalSorter(self._graph)
        sorter.prepare()
        ready: list[tuple[int, str]] = []

        def collect_ready() -> None:
            for command_id in sorter.get_ready():
                heapq.heappush(ready, (self._position[command_id], command_id))

        collect_ready()
        while True:
            while ready and len(self._tasks) < self._limit and self._may_start():
                _, command_id = heapq.heappop(ready)
                if not await self._start_or_skip(command_id):
                    sorter.done(command_id)
                    collect_ready()
            if not self._tasks:
                break
            done, _ = await asyncio.wait([*self._tasks, cancel_waiter], return_when=asyncio.FIRST_COMPLETED)
            if cancel_waiter in done:
                await self._cancel_running()
                break
            for task in done:
                command_id = self._tasks.pop(task)
                self._settle(task, command_id)
                sorter.done(command_id)
                if (
                    self._outcomes[command_id].state is not RunState.SUCCEEDED
                    and self._policy is not FailurePolicy.CONTINUE
                    and self._halted_by is None
                ):
                    self._halted_by = command_id
            collect_ready()
        if self._cancellation.cancelled and any(o.state is RunState.PENDING for o in self._outcomes.values()):
            self._cancelled_by = self._cancellation.by
        await self._skip_unstarted()

    def _may_start(self) -> bool:
        return self._halted_by is None and not self._cancellation.cancelled

    async def _start_or_skip(self, command_id: str) -> bool:
        """Start the command, or skip it (and say why); True when it was started."""
        validated = self._commands[command_id]
        self._reach(command_id)
        unmet = self._unmet_dependency(validated)
        if unmet is not None:
            await self._skip(command_id, unmet)
            return False
        command: ResolvedCommand | None = validated.command
        if self._context.dry_run:
            command = dry_run_variant(validated.command)
            if command is None:
                self._validated_only.add(command_id)
                await self._skip(command_id, DRY_RUN_NOT_RUN_REASON)
                return False
        assert command is not None
        task = asyncio.create_task(self._run_planned(validated, command), name=f"cloudops:{command_id}")
        self._tasks[task] = command_id
        return True

    def _reach(self, command_id: str) -> CommandOutcome:
        outcome = self._outcomes[command_id]
        if not outcome.display:
            outcome.display = redact_text(self._commands[command_id].command.display)
        return outcome

    def _unmet_dependency(self, validated: ValidatedCommand) -> str | None:
        for dependency in validated.depends_on:
            state = self._outcomes[dependency].state
            if state is RunState.SUCCEEDED or dependency in self._validated_only:
                continue
            return f"dependency `{dependency}` {_UNMET.get(state, 'did not run')}"
        return None

    async def _run_planned(self, validated: ValidatedCommand, command: ResolvedCommand) -> None:
        outcome = self._outcomes[validated.id]
        outcome.state = RunState.RUNNING
        outcome.started_at = _now()
        self._started[validated.id] = time.monotonic()
        await self._emit(CommandStateChanged(command_id=validated.id, state=RunState.RUNNING, display=outcome.display))
        result = await self._call(command)
        if result.ok:
            state = RunState.SUCCEEDED
            self._succeeded_order.append(validated.id)
        else:
            state = RunState.CANCELLED if result.cancelled else RunState.FAILED
        self._finish(outcome, state, result)
        await self._emit(
            CommandStateChanged(
                command_id=validated.id,
                state=state,
                display=outcome.display,
                attempt=max(1, len(result.attempts)),
                result=result,
            )
        )

    async def _call(self, command: ResolvedCommand) -> CommandResult:
        # A `--query` can print a secret with nothing around it to say so; only the command line tells, and
        # only the orchestrator holds the redacting sink to act on it. An API operation's response is
        # redacted by shape and key before the executors apply its query, so this is left to the commands
        # whose query the aws CLI applies (reviewed customizations such as `emr describe-cluster`).
        bare_secret = (
            command.cli_args is not None and not shaped_by_cloudops(command) and prints_bare_secret(command.cli_args)
        )
        if bare_secret:
            self._sink.mark_secret_output(command.id)
        try:
            result = await self._run_command(command, self._context, self._sink)
            if not isinstance(result, CommandResult):
                raise TypeError(f"run_command returned {type(result).__name__}, not a CommandResult")
        except Exception as exc:
            result = CommandResult(
                ok=False,
                executor="orchestrator",
                error_code="InternalError",
                error_message=f"{type(exc).__name__}: {exc}",
            )
        result = redact_result(result)
        return _hide_output(result) if bare_secret else result

    def _settle(self, task: asyncio.Task[Any], command_id: str) -> None:
        """Account for a command task that ended without recording its outcome: cancelled, or a bug here."""
        outcome = self._outcomes[command_id]
        if task.cancelled():
            if not outcome.state.finished:
                self._finish(outcome, RunState.CANCELLED, None)
            return
        exc = task.exception()
        if exc is None:
            return
        logger.error("command task %s failed", command_id, exc_info=exc)
        if not outcome.state.finished:
            result = redact_result(
                CommandResult(
                    ok=False,
                    executor="orchestrator",
                    error_code="InternalError",
                    error_message=f"{type(exc).__name__}: {exc}",
                )
            )
            self._finish(outcome, RunState.FAILED, result)

    async def _cancel_running(self) -> None:
        tasks = dict(self._tasks)
        await _cancel_and_wait(tasks)
        self._tasks.clear()
        self._cancelled_by = self._cancellation.by
        for task, command_id in tasks.items():
            outcome = self._outcomes[command_id]
            self._settle(task, command_id)
            if task.cancelled():
                await self._emit(
                    CommandStateChanged(
                        command_id=command_id,
                        state=outcome.state,
                        display=outcome.display,
                        reason=f"cancelled by {self._cancellation.by}",
                    )
                )

    async def _skip_unstarted(self) -> None:
        if all(o.state.finished for o in self._outcomes.values()):
            return
        # Dependencies first, so a skipped command's reason can name a dependency that was itself skipped.
        for command_id in TopologicalSorter(self._graph).static_order():
            if self._outcomes[command_id].state is not RunState.PENDING:
                continue
            if self._cancelled_by is not None:
                reason = f"cancelled by {self._cancelled_by}"
            elif (unmet := self._unmet_dependency(self._commands[command_id])) is not None:
                reason = unmet
            elif self._halted_by is not None:
                halted = self._outcomes[self._halted_by].state
                reason = f"not run: `{self._halted_by}` {_UNMET.get(halted, 'failed')} (on_failure: {self._policy})"
            else:
                reason = "not run"
            await self._skip(command_id, reason)

    async def _skip(self, command_id: str, reason: str) -> None:
        outcome = self._reach(command_id)
        outcome.skipped_reason = reason
        self._finish(outcome, RunState.SKIPPED, None)
        await self._emit(
            CommandStateChanged(command_id=command_id, state=RunState.SKIPPED, display=outcome.display, reason=reason)
        )

    def _finish(self, outcome: CommandOutcome, state: RunState, result: CommandResult | None) -> None:
        outcome.state = state
        outcome.finished_at = _now()
        if result is not None:
            outcome.result = result
        started = self._started.get(outcome.id)
        if started is not None:
            outcome.duration_seconds = time.monotonic() - started

    # Rollback

    def _should_roll_back(self) -> bool:
        return (
            self._policy is FailurePolicy.ROLLBACK
            and self._halted_by is not None
            and self._cancelled_by is None
            and not self._context.dry_run
        )

    async def _roll_back(self, cancel_waiter: asyncio.Task[None]) -> None:
        self._rollback_ran = True
        # Undo the latest change first: later commands may build on what earlier ones made.
        pending = list(reversed(self._succeeded_order))
        while pending:
            if self._cancellation.cancelled:
                self._cancelled_by = self._cancellation.by
                self._not_rolled_back.extend(pending)
                return
            command_id = pending.pop(0)
            validated = self._commands[command_id]
            if validated.rollback and await self._roll_back_command(validated, cancel_waiter):
                self._rolled_back.append(command_id)
            else:
                self._not_rolled_back.append(command_id)

    async def _roll_back_command(self, validated: ValidatedCommand, cancel_waiter: asyncio.Task[None]) -> bool:
        """Run the command's rollback steps in order; True when every one of them succeeded."""
        outcome = self._outcomes[validated.id]
        for number, step in enumerate(validated.rollback, start=1):
            if self._cancellation.cancelled:
                self._cancelled_by = self._cancellation.by
                return False
            display = redact_text(step.display)
            record = RollbackOutcome(command_id=step.id, step=number, display=display, state=RunState.RUNNING)
            outcome.rollback.append(record)
            await self._emit(CommandStateChanged(command_id=step.id, state=RunState.RUNNING, display=display))
            task = asyncio.create_task(self._call(step), name=f"cloudops:{step.id}")
            self._tasks[task] = step.id
            await asyncio.wait([task, cancel_waiter], return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                await _cancel_and_wait([task])
            del self._tasks[task]
            if task.cancelled():
                self._cancelled_by = self._cancellation.by
                record.state = RunState.CANCELLED
                await self._emit(
                    CommandStateChanged(
                        command_id=step.id,
                        state=RunState.CANCELLED,
                        display=display,
                        reason=f"cancelled by {self._cancellation.by}",
                    )
                )
                return False
            result = task.result()
            record.result = result
            record.state = RunState.SUCCEEDED if result.ok else RunState.FAILED
            await self._emit(
                CommandStateChanged(
                    command_id=step.id,
                    state=record.state,
                    display=display,
                    attempt=max(1, len(result.attempts)),
                    result=result,
                )
            )
            if not result.ok:
                return False
        outcome.state = RunState.ROLLED_BACK
        await self._emit(
            CommandStateChanged(command_id=validated.id, state=RunState.ROLLED_BACK, display=outcome.display)
        )
        return True

    def _final_state(self) -> RunState:
        if self._cancelled_by is not None:
            return RunState.CANCELLED
        if not any(o.state in (RunState.FAILED, RunState.CANCELLED) for o in self._outcomes.values()):
            return RunState.SUCCEEDED
        # Nothing rolled back (nothing had succeeded) is reported as the failure it is, not as a rollback.
        if self._rollback_ran and self._rolled_back and not self._not_rolled_back:
            return RunState.ROLLED_BACK
        return RunState.FAILED


def _hide_output(result: CommandResult) -> CommandResult:
    """The result of a command whose whole output is a secret: every line of it, and any parsed value, hidden."""
    redactor = StreamRedactor(redact_all=True)
    return result.model_copy(
        update={
            "output": "\n".join(redactor.feed(line) for line in result.output.split("\n")),
            "data": None if result.data is None else REDACTED,
        }
    )


async def _cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    tasks = list(tasks)
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in tasks:
        # Fetch any exception so asyncio does not log it as never retrieved; callers read it from the task.
        if not task.cancelled():
            task.exception()


def _now() -> datetime:
    return datetime.now(UTC)
