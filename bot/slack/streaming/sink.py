"""``SlackStreamSink``: a run shown live in its Slack thread, by editing messages as events arrive.

When the run starts the sink posts one progress message for the plan, then one message per command as each
command starts (a skipped command has none: the progress message says why it did not run). A command's
message shows its latest output and, once it ends, its final state; rollback steps run for a command show on
that command's message. Output the message cannot hold is attached to the thread as a file when its command
ends. Every edit goes through the app's ``EditScheduler`` (see ``scheduler``), within the shared budget.

``emit`` never waits on Slack: it updates the sink's state and returns, and two background tasks (the sink's
worker for posts and uploads, the scheduler for edits) bring Slack up to date. A Slack failure is logged and
tried again later; it never reaches the run. ``aclose`` waits, up to a limit, until Slack shows everything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.models.blocks import Block

from bot.slack.blocks.limits import SECTION_TEXT_MAX
from bot.slack.blocks.message import RenderedMessage
from bot.slack.blocks.mrkdwn import code_span
from bot.slack.client import BudgetedWebClient
from bot.slack.streaming.output import OutputBuffer
from bot.slack.streaming.render import command_message, output_fits, progress_message
from bot.slack.streaming.scheduler import EditScheduler, LiveMessage
from bot.slack.streaming.state import (
    Attachment,
    CommandState,
    ProgressView,
    RunProgress,
    StepState,
    StreamCommand,
    StreamPlan,
    rollback_parent,
)
from engine.commands import ValidatedPlan
from engine.redact import redact_text
from engine.results import PlanResult, RunState
from engine.sinks import CommandStateChanged, Event, OutputLine, PlanStateChanged, RetryScheduled

logger = logging.getLogger(__name__)

ProgressActions = Callable[[ProgressView], Sequence[Block]]
"""Extra blocks (buttons) for the progress message, given what the run looks like when it is drawn."""

OnPosted = Callable[[str | None, str], None]
"""Told ``(command_id, ts)`` when a message is posted; ``command_id`` is None for the progress message."""

_PROGRESS = "progress"
_CLOSE_POLL_SECONDS = 0.05
_JOB_BACKOFF_MAX_SECONDS = 30.0


@dataclass(frozen=True)
class StreamSettings:
    """Sizes and times of a streamed run; the defaults suit Slack's limits and a busy workspace."""

    # The code block of a command's output (fences included), and of each rollback step's.
    output_chars: int = 2_800
    rollback_output_chars: int = 900
    # Where a single long line is cut in the message (the attached file keeps it whole).
    line_chars: int = 500
    # Per step: output beyond this many bytes goes to a temporary file instead of memory.
    spill_bytes: int = 1024 * 1024
    # The most an attached file holds; lines beyond are counted in a note at its end.
    max_file_bytes: int | None = 100 * 1024 * 1024
    # While the run is quiet, how often the progress message is redrawn to move its elapsed times on.
    progress_refresh_seconds: float = 10.0
    # How long ``aclose`` waits for Slack to show everything before giving up on what is left.
    close_timeout_seconds: float = 120.0
    # Tries of one post or upload (a minute or so with back-off) before it is given up and logged.
    job_attempts: int = 6
    extra_blocks_max: int = 10

    def __post_init__(self) -> None:
        for name in ("output_chars", "rollback_output_chars"):
            value = getattr(self, name)
            if not 100 <= value <= SECTION_TEXT_MAX:
                raise ValueError(f"{name} must be between 100 and {SECTION_TEXT_MAX}")
        if self.line_chars < 20:
            raise ValueError("line_chars must be at least 20")
        if self.progress_refresh_seconds <= 0 or self.close_timeout_seconds < 0 or self.job_attempts < 1:
            raise ValueError("refresh must be positive, the close timeout not negative, and job_attempts >= 1")


@dataclass
class _Job:
    kind: Literal["post", "upload"]
    label: str
    message: LiveMessage | None = None
    step: StepState | None = None
    command: CommandState | None = None
    attempts: int = 0
    not_before: float = 0.0


@dataclass
class _Posted:
    ts: str | None = None
    event: asyncio.Event = field(default_factory=asyncio.Event)


def _edit_client(client: BudgetedWebClient) -> BudgetedWebClient:
    """The same session and budget, without slack_sdk's retry of a rate-limited call.

    That retry would resend the very content that got the 429 once the Retry-After is over; the scheduler
    instead learns of the 429 at once (the budget holds every caller meanwhile) and afterwards sends the
    message's newest content, so no call is spent on a stale edit.
    """
    edit = client.sharing_budget(team_id=client.default_params.get("team_id"))
    edit.retry_handlers = [h for h in edit.retry_handlers if not isinstance(h, AsyncRateLimitErrorRetryHandler)]
    return edit


class SlackStreamSink:
    """An ``OutputSink`` that shows a run in a Slack thread: a progress message and a message per command.

    ``client`` must be the app's ``BudgetedWebClient`` (its budget is what every edit is planned against).
    ``plan`` lists the commands up front (a ``ValidatedPlan``, a ``StreamPlan`` or ``StreamCommand``s);
    without it commands appear as they start. ``progress_actions`` adds blocks (buttons) to the progress
    message each time it is drawn; ``refresh_progress`` redraws it when what they show changes. ``on_posted``
    hears of every message posted, and ``progress_ts`` / ``message_ts`` / ``posted`` tell the same later.
    """

    def __init__(
        self,
        client: BudgetedWebClient,
        channel: str,
        thread_ts: str,
        *,
        plan: ValidatedPlan | StreamPlan | Sequence[StreamCommand] | None = None,
        progress_actions: ProgressActions | None = None,
        on_posted: OnPosted | None = None,
        settings: StreamSettings | None = None,
        scheduler: EditScheduler | None = None,
    ) -> None:
        if not isinstance(client, BudgetedWebClient):
            raise TypeError("SlackStreamSink needs the app's BudgetedWebClient: its edits are planned on its budget")
        self._client = client
        self._edit_client = _edit_client(client)
        self._channel = channel
        self._thread_ts = thread_ts
        self._settings = settings or StreamSettings()
        self._progress_actions = progress_actions
        self._on_posted = on_posted
        self._scheduler = scheduler
        stream_plan = StreamPlan.of(plan)
        self._run = RunProgress(plan=stream_plan, commands={})
        for spec in stream_plan.commands:
            self._run.commands[spec.id] = self._new_command(spec)
        self._progress = LiveMessage(_PROGRESS, channel, self._render_progress)
        self._progress_touched = 0.0
        self._messages: dict[str, LiveMessage] = {}
        self._posted: dict[str, _Posted] = {}
        self._files: dict[str, str] = {}
        self._jobs: deque[_Job] = deque()
        self._job_added: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False

    # ------------------------------------------------------------------ what the caller can ask

    @property
    def progress_ts(self) -> str | None:
        """The progress message's ts, once it is posted."""
        return self._progress.ts

    def message_ts(self, command_id: str) -> str | None:
        """The ts of ``command_id``'s message, once it is posted."""
        message = self._messages.get(command_id)
        return None if message is None else message.ts

    @property
    def message_timestamps(self) -> dict[str, str]:
        """Every command message posted so far, by command id."""
        return {cid: m.ts for cid, m in self._messages.items() if m.ts is not None}

    @property
    def file_ids(self) -> dict[str, str]:
        """The file attached with each step's full output (command or rollback step id to Slack file id)."""
        return dict(self._files)

    async def posted(self, command_id: str | None = None) -> str | None:
        """Wait until the progress message (or ``command_id``'s message) is posted; its ts, or None when it
        could not be posted or the sink closed first."""
        entry = self._posted.setdefault(command_id or _PROGRESS, _Posted())
        if self._closed:
            entry.event.set()
        await entry.event.wait()
        return entry.ts

    def view(self) -> ProgressView:
        run = self._run
        return ProgressView(
            state=run.state,
            commands={cid: c.state for cid, c in run.commands.items()},
            result=run.result,
            interrupted=run.interrupted,
            progress_ts=self._progress.ts,
        )

    def refresh_progress(self, *, urgent: bool = True) -> None:
        """Redraw the progress message soon, e.g. because what ``progress_actions`` returns has changed."""
        self._touch_progress(urgent=urgent)

    # ------------------------------------------------------------------ the sink

    async def emit(self, event: Event) -> None:
        # Nothing here awaits: the run must never wait for Slack.
        if self._closing:
            logger.debug("event after the Slack sink closed, not shown: %s", type(event).__name__)
            return
        self._start()
        match event:
            case OutputLine():
                self._on_line(event)
            case CommandStateChanged():
                self._on_state(event)
            case RetryScheduled():
                self._on_retry(event)
            case PlanStateChanged():
                self._on_plan(event)

    async def aclose(self) -> None:
        """Bring Slack up to date (final edits, file uploads), waiting at most ``close_timeout_seconds``."""
        if self._closing:
            while not self._closed:
                await asyncio.sleep(_CLOSE_POLL_SECONDS)
            return
        self._closing = True
        try:
            if self._worker is not None:
                if not self._run.finished:
                    self._interrupt()
                deadline = time.monotonic() + self._settings.close_timeout_seconds
                while not self._settled():
                    if time.monotonic() >= deadline:
                        logger.warning("Slack is not up to date with the run in %s; giving up on it", self._channel)
                        break
                    await asyncio.sleep(_CLOSE_POLL_SECONDS)
        finally:
            await self._shut_down()

    async def __aenter__(self) -> SlackStreamSink:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ events

    def _start(self) -> None:
        if self._worker is not None:
            return
        if self._scheduler is None:
            self._scheduler = EditScheduler.shared(self._client.budget)
        self._job_added = asyncio.Event()
        self._worker = asyncio.create_task(self._work(), name="cloudops:slack-stream")
        self._queue(_Job("post", _PROGRESS, message=self._progress))

    def _on_plan(self, event: PlanStateChanged) -> None:
        run = self._run
        now = time.monotonic()
        if event.result is None and not event.state.finished:
            run.state = event.state
            if event.state is RunState.RUNNING and run.started is None:
                run.started = now
            self._touch_progress()
            return
        run.state = event.state
        run.ended = now
        run.result = event.result
        if event.result is not None:
            self._apply_result(event.result)
        self._progress.final_due = False
        self._touch_progress(urgent=True)

    def _on_state(self, event: CommandStateChanged) -> None:
        command, step = self._resolve(event.command_id, event.display)
        now = time.monotonic()
        step.state = event.state
        if event.reason:
            step.reason = event.reason
        if event.result is not None:
            step.result = event.result
            step.attempt = event.attempt
        if event.state is RunState.RUNNING:
            step.started = step.started if step.started is not None else now
            step.ended = None
            self._ensure_message(command)
        elif event.state.finished and step.ended is None:
            step.ended = now
            self._ended(step, command)
        message = self._messages.get(command.id)
        if message is not None:
            # A call of the window stays reserved for this message while its command (or a rollback step of
            # it) runs; once it has ended its final edit is urgent and needs no reserve.
            message.final_due = not event.state.finished
            message.changed(urgent=event.state.finished)
        self._touch_progress(urgent=event.state.finished)

    def _on_line(self, event: OutputLine) -> None:
        command, step = self._resolve(event.command_id)
        step.output.add(event.line)
        self._ensure_message(command)
        self._message_changed(command)

    def _on_retry(self, event: RetryScheduled) -> None:
        command, step = self._resolve(event.command_id)
        step.retries += 1
        step.attempt = event.attempt
        step.retry_code = event.error_code
        step.retry_at = time.monotonic() + event.delay_seconds
        step.output.note(
            f"attempt {event.attempt} in {event.delay_seconds:.1f} s, after {event.error_code or 'an error'}"
        )
        self._message_changed(command)
        self._touch_progress()

    def _apply_result(self, result: PlanResult) -> None:
        """Take the run's final word on every command, in case an event was missed or never sent."""
        now = time.monotonic()
        for outcome in result.commands:
            command, _ = self._resolve(outcome.id, outcome.display)
            changed = command.state is not outcome.state
            command.state = outcome.state
            command.result = outcome.result or command.result
            command.reason = command.reason or outcome.skipped_reason
            if outcome.state.finished and command.ended is None:
                command.ended = now
                if command.started is not None:
                    self._ended(command, command)
            for record in outcome.rollback:
                _, step = self._resolve(record.command_id, record.display)
                if step.state is not record.state:
                    changed = True
                    step.state = record.state
                    step.result = record.result or step.result
                if record.state.finished and step.ended is None:
                    step.ended = now
                    self._ended(step, command)
            if changed:
                self._message_changed(command, urgent=True)

    def _interrupt(self) -> None:
        """The sink is closing before the run said it ended: show what is known, and say it was cut short."""
        self._run.interrupted = True
        now = time.monotonic()
        for command in self._run.commands.values():
            for step in [command, *command.rollback]:
                if step.started is not None and not step.state.finished and step.ended is None:
                    step.ended = now
                    self._ended(step, command)
            self._message_changed(command, urgent=True)
        self._touch_progress(urgent=True)

    # ------------------------------------------------------------------ state

    def _buffer(self, keep_chars: int) -> OutputBuffer:
        settings = self._settings
        return OutputBuffer(
            keep_chars=keep_chars,
            line_chars=settings.line_chars,
            spill_bytes=settings.spill_bytes,
            max_file_bytes=settings.max_file_bytes,
        )

    def _new_command(self, spec: StreamCommand) -> CommandState:
        return CommandState(
            id=spec.id,
            display=spec.display,
            output=self._buffer(self._settings.output_chars),
            planned_rollback=spec.rollback,
        )

    def _resolve(self, command_id: str, display: str = "") -> tuple[CommandState, StepState]:
        """The command an event is about, and the step (the command itself, or one of its rollback steps)."""
        commands = self._run.commands
        parent = None if command_id in commands else rollback_parent(command_id)
        if parent is None:
            command = commands.get(command_id)
            if command is None:
                command = commands[command_id] = self._new_command(StreamCommand(id=command_id, display=display))
            if display and not command.display:
                command.display = display
            return command, command
        parent_id, number = parent
        command = commands.get(parent_id)
        if command is None:
            command = commands[parent_id] = self._new_command(StreamCommand(id=parent_id))
        for step in command.rollback:
            if step.id == command_id:
                if display and not step.display:
                    step.display = display
                return command, step
        planned = command.planned_rollback[number - 1] if number <= len(command.planned_rollback) else ""
        step = StepState(
            id=command_id, display=display or planned, output=self._buffer(self._settings.rollback_output_chars)
        )
        command.rollback.append(step)
        command.rollback.sort(key=lambda s: int(s.id.rsplit(".", 1)[-1]))
        return command, step

    def _ended(self, step: StepState, command: CommandState) -> None:
        """A step ended: when its message cannot show all of its output, the whole of it goes in a file."""
        budget = self._settings.output_chars if step is command else self._settings.rollback_output_chars
        if step.attachment is Attachment.NONE and not output_fits(step, budget):
            step.attachment = Attachment.PENDING
            self._queue(_Job("upload", step.id, step=step, command=command))

    def _ensure_message(self, command: CommandState) -> None:
        if command.id in self._messages:
            return
        message = LiveMessage(command.id, self._channel, lambda: self._render_command(command))
        self._messages[command.id] = message
        self._queue(_Job("post", command.id, message=message))

    def _message_changed(self, command: CommandState, *, urgent: bool = False) -> None:
        message = self._messages.get(command.id)
        if message is not None:
            message.changed(urgent=urgent)

    def _touch_progress(self, *, urgent: bool = False) -> None:
        self._progress_touched = time.monotonic()
        self._progress.changed(urgent=urgent)

    # ------------------------------------------------------------------ drawing

    def _render_progress(self) -> RenderedMessage:
        now = time.monotonic()
        extra = self._extra_blocks()
        if extra:
            try:
                return progress_message(self._run, now, extra)
            except Exception:
                logger.exception("the progress message's extra blocks are not valid; drawn without them")
        return progress_message(self._run, now)

    def _extra_blocks(self) -> list[Block]:
        if self._progress_actions is None:
            return []
        try:
            blocks = [Block.parse(b) if isinstance(b, dict) else b for b in self._progress_actions(self.view())]
        except Exception:
            logger.exception("progress_actions failed; the progress message is drawn without its extra blocks")
            return []
        kept = [b for b in blocks if isinstance(b, Block)]
        if len(kept) > self._settings.extra_blocks_max:
            most = self._settings.extra_blocks_max
            logger.warning("progress_actions gave %d blocks; the first %d are shown", len(kept), most)
            kept = kept[:most]
        return kept

    def _render_command(self, command: CommandState) -> RenderedMessage:
        return command_message(
            command,
            time.monotonic(),
            output_chars=self._settings.output_chars,
            rollback_output_chars=self._settings.rollback_output_chars,
            interrupted=self._run.interrupted,
        )

    # ------------------------------------------------------------------ the worker: posts and uploads

    def _queue(self, job: _Job) -> None:
        self._jobs.append(job)
        if self._job_added is not None:
            self._job_added.set()

    async def _work(self) -> None:
        settings = self._settings
        while True:
            if not self._jobs:
                await self._idle()
                continue
            job = self._jobs[0]
            delay = job.not_before - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            job.attempts += 1
            try:
                done = await (self._post(job) if job.kind == "post" else self._upload(job))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Slack %s for %s failed unexpectedly", job.kind, job.label)
                done = False
            if done:
                self._jobs.popleft()
            elif job.attempts >= settings.job_attempts:
                self._jobs.popleft()
                self._give_up(job)
            else:
                # Jobs stay in order (a command's file after its message), so a failing one holds the rest back.
                job.not_before = time.monotonic() + min(2.0 ** (job.attempts - 1), _JOB_BACKOFF_MAX_SECONDS)

    async def _idle(self) -> None:
        assert self._job_added is not None
        self._job_added.clear()
        running = self._run.state is RunState.RUNNING and not self._run.finished and self._progress.ts is not None
        if not running:
            await self._job_added.wait()
            return
        refresh_at = self._progress_touched + self._settings.progress_refresh_seconds
        try:
            await asyncio.wait_for(self._job_added.wait(), max(refresh_at - time.monotonic(), 0.0))
        except TimeoutError:
            # Nothing happened for a while: redraw anyway so the elapsed times keep moving.
            self._touch_progress()

    async def _post(self, job: _Job) -> bool:
        message = job.message
        assert message is not None
        # Wait for the channel's posting pace before drawing, so the message starts with the output of the
        # moment it is posted rather than of the moment it was queued.
        while (wait := self._client.budget.wait_time("chat.postMessage", self._channel)) > 0:
            await asyncio.sleep(wait)
        version = message.version
        rendered = message.render()
        sent_at = time.monotonic()
        try:
            response = await self._client.chat_postMessage(
                channel=self._channel,
                thread_ts=self._thread_ts,
                text=rendered.text,
                blocks=rendered.block_dicts(),
                unfurl_links=False,
                unfurl_media=False,
            )
        except Exception as exc:
            _log_failure("chat.postMessage", job.label, exc)
            return False
        message.ts = str(response["ts"])
        message.client = self._edit_client
        message.written(version, sent_at=sent_at, answered_at=time.monotonic())
        assert self._scheduler is not None
        self._scheduler.track(message)
        command_id = None if message is self._progress else job.label
        self._announce(command_id, message.ts)
        return True

    async def _upload(self, job: _Job) -> bool:
        step, command = job.step, job.command
        assert step is not None and command is not None
        if step.attachment is not Attachment.PENDING:
            return True
        lines = step.output.lines
        try:
            response = await self._client.files_upload_v2(
                channel=self._channel,
                thread_ts=self._thread_ts,
                content=step.output.read_all(),
                filename=f"{step.id}.txt",
                title=f"Output of {step.id} ({lines:,} line{'' if lines == 1 else 's'})",
                initial_comment=f"Full output of {code_span(step.id, 80)}: {lines:,} line{'' if lines == 1 else 's'}",
            )
        except Exception as exc:
            _log_failure("files_upload_v2", job.label, exc)
            return False
        uploaded: Any = response.get("file") or {}
        step.attachment = Attachment.ATTACHED
        if isinstance(uploaded, dict) and uploaded.get("id"):
            step.file_id = str(uploaded["id"])
            self._files[step.id] = step.file_id
        return True

    def _give_up(self, job: _Job) -> None:
        logger.error("gave up on Slack %s for %s after %d tries", job.kind, job.label, job.attempts)
        if job.kind == "upload" and job.step is not None and job.command is not None:
            job.step.attachment = Attachment.FAILED
            self._message_changed(job.command, urgent=True)
        elif job.kind == "post":
            self._announce(None if job.message is self._progress else job.label, None)

    def _announce(self, command_id: str | None, ts: str | None) -> None:
        entry = self._posted.setdefault(command_id or _PROGRESS, _Posted())
        entry.ts = ts
        entry.event.set()
        if ts is not None and self._on_posted is not None:
            try:
                self._on_posted(command_id, ts)
            except Exception:
                logger.exception("on_posted failed for %s", command_id or _PROGRESS)

    # ------------------------------------------------------------------ closing

    def _settled(self) -> bool:
        if self._jobs:
            return False
        return not any(m.pending for m in [self._progress, *self._messages.values()])

    async def _shut_down(self) -> None:
        try:
            if self._worker is not None and not self._worker.done():
                self._worker.cancel()
                await asyncio.gather(self._worker, return_exceptions=True)
        finally:
            if self._scheduler is not None:
                for message in [self._progress, *self._messages.values()]:
                    self._scheduler.untrack(message)
            for command in self._run.commands.values():
                for step in [command, *command.rollback]:
                    step.output.close()
            for entry in self._posted.values():
                entry.event.set()
            self._closed = True


def _log_failure(method: str, label: str, exc: Exception) -> None:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        logger.warning("Slack %s for %s failed (%s); trying again later", method, label, exc.response.get("error"))
    else:
        logger.warning(
            "Slack %s for %s failed (%s: %s); trying again later",
            method,
            label,
            type(exc).__name__,
            redact_text(str(exc)),
        )
