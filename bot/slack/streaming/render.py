"""The two kinds of message a streamed run posts in its thread, drawn from the sink's state.

* The progress message: the plan's state, one line per command (waiting, running, succeeded, failed,
  skipped, retried, rolled back, with times), and once the run has ended what went wrong and what was undone.
* A command message: the command's state and its latest output as a code block. Output that does not fit
  shows its last lines under a count of the lines above it; a line too long to show is cut with a count of
  what is missing. Rollback steps run for the command are shown on the same message.

Output is shown as printed (the executors already print JSON indented), escaped so that nothing in it can
act as Slack markup, and sized to Slack's limits before any block is built.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.slack.blocks.limits import CONTEXT_TEXT_MAX, FALLBACK_TEXT_MAX, MESSAGE_MAX_BLOCKS, SECTION_TEXT_MAX
from bot.slack.blocks.message import RenderedMessage, validated_message
from bot.slack.blocks.mrkdwn import (
    COMMAND_STATUS_BADGE,
    ELLIPSIS,
    code_span,
    defuse_fences,
    duration,
    escape,
    fit,
    id_list,
    person,
    slack_len,
    trim_plain,
)
from bot.slack.streaming.output import TailEntry
from bot.slack.streaming.state import Attachment, CommandState, RunProgress, StepState
from engine.history.records import CommandStatus
from engine.results import PlanResult, RunState

_OPEN, _CLOSE = "```\n", "\n```"
# The most one escaped character can grow to ("&" becomes "&amp;"), for cutting a line to a size after escaping.
_MAX_ESCAPE_GROWTH = 5
_REASON_MAX = 200
_ERROR_MAX = 300
_DISPLAY_MAX = 500
_FAILURE_LINES_SHOWN = 20
# Five blocks a step at most, after the command's own six: eight steps keep the message within 50 blocks.
_ROLLBACK_STEPS_SHOWN = 8

_PLAN_HEAD = {
    RunState.PENDING: ":hourglass_flowing_sand: *Starting*",
    RunState.RUNNING: ":arrows_counterclockwise: *Running*",
    RunState.SUCCEEDED: ":white_check_mark: *Succeeded*",
    RunState.FAILED: ":x: *Failed*",
    RunState.ROLLED_BACK: ":leftwards_arrow_with_hook: *Failed; its changes were rolled back*",
    RunState.CANCELLED: ":octagonal_sign: *Cancelled*",
    RunState.SKIPPED: ":fast_forward: *Skipped*",
}


def state_badge(state: RunState, *, interrupted: bool = False) -> str:
    """Emoji and word for a command's state; a command still running when the bot stopped following is
    shown as interrupted, not as running forever."""
    if interrupted and not state.finished:
        return COMMAND_STATUS_BADGE[CommandStatus.INTERRUPTED]
    if state is RunState.PENDING:
        return ":white_circle: waiting"
    return COMMAND_STATUS_BADGE[CommandStatus.from_run_state(state)]


def _mrkdwn(text: str) -> MarkdownTextObject:
    # verbatim: command output and error messages must not turn into links or @mentions.
    return MarkdownTextObject(text=text, verbatim=True)


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=_mrkdwn(text))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[_mrkdwn(text)])


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _fallback(text: str) -> str:
    return trim_plain(escape(text), FALLBACK_TEXT_MAX)


# -- output -------------------------------------------------------------------------------------------------


def _display(entry: TailEntry) -> str:
    text = f"── {entry.text} ──" if entry.note else entry.text
    return escape(defuse_fences(text))


def _squeeze(entry: TailEntry, room: int) -> str:
    """An entry too long for the whole block, cut so that even fully escaped it fits, saying how much is cut."""
    text = entry.text
    marker_room = slack_len(f" {ELLIPSIS} (+{len(text):,} chars)")
    keep = max(0, (room - marker_room) // _MAX_ESCAPE_GROWTH)
    return escape(defuse_fences(text[:keep])) + f" {ELLIPSIS} (+{len(text) - keep:,} chars)"


def tail_code_block(entries: Sequence[TailEntry], budget: int) -> tuple[str, int]:
    """The last entries that fit in a code block of at most ``budget`` characters, and how many output lines
    (not notes) it shows."""
    room = budget - slack_len(_OPEN + _CLOSE)
    if room < 1:
        raise ValueError("a code block needs room for at least one character")
    kept: list[str] = []
    used = 0
    shown = 0
    for entry in reversed(entries):
        display = _display(entry)
        cost = slack_len(display) + (1 if kept else 0)
        if used + cost > room:
            if not kept:
                kept.append(_squeeze(entry, room))
                shown += not entry.note
            break
        kept.append(display)
        used += cost
        shown += not entry.note
    return _OPEN + "\n".join(reversed(kept)) + _CLOSE, shown


def _where_full_output(step: StepState) -> str:
    if step.attachment in (Attachment.PENDING, Attachment.ATTACHED):
        return "full output attached below"
    if step.attachment is Attachment.FAILED:
        return "the full output could not be attached"
    return "full output attached when it ends"


def _output_blocks(step: StepState, budget: int) -> list[Block]:
    entries = step.output.tail()
    if not entries:
        return [_context("_no output yet_" if not step.state.finished else "_no output_")]
    code, shown = tail_code_block(entries, budget)
    hidden = step.output.lines - shown
    blocks: list[Block] = []
    if hidden > 0:
        blocks.append(_context(f"{ELLIPSIS} {_plural(hidden, 'earlier line')} — {_where_full_output(step)}"))
    elif step.output.cut_lines:
        blocks.append(_context(f"{_plural(step.output.cut_lines, 'long line')} cut — {_where_full_output(step)}"))
    blocks.append(_section(code))
    return blocks


def output_fits(step: StepState, budget: int) -> bool:
    """True when the message shows every line of the step whole, so there is nothing to attach."""
    if step.output.cut_lines or step.output.dropped_lines:
        return False
    if not step.output.lines:
        return True
    _, shown = tail_code_block(step.output.tail(), budget)
    return shown >= step.output.lines


# -- a command's message ------------------------------------------------------------------------------------


def _facts(step: StepState, now: float, *, lines: bool = True) -> list[str]:
    facts: list[str] = []
    elapsed = step.elapsed(now)
    if elapsed is not None:
        facts.append(duration(elapsed))
    if lines and step.output.lines:
        facts.append(_plural(step.output.lines, "line"))
    if step.retries:
        retried = f"retried {_plural(step.retries, 'time')}"
        facts.append(f"{retried} after {code_span(step.retry_code, 64)}" if step.retry_code else retried)
    return facts


def _problem(step: StepState) -> str | None:
    if step.state is RunState.FAILED:
        code = code_span(step.error_code, 64) if step.error_code else "an error"
        message = fit(step.error_message, _ERROR_MAX, None) if step.error_message else ""
        return f"Failed with {code}" + (f": {message}" if message else "")
    if step.reason and step.state in (RunState.SKIPPED, RunState.CANCELLED):
        return fit(step.reason, _REASON_MAX, None)
    return None


def _retry_note(step: StepState, now: float) -> str | None:
    if step.state.finished or step.retry_at is None:
        return None
    after = f" after {code_span(step.retry_code, 64)}" if step.retry_code else ""
    left = step.retry_at - now
    if left > 0:
        return f":repeat: attempt {step.attempt} in {duration(left)}{after}"
    return f":repeat: attempt {step.attempt}{after}"


def _step_blocks(step: StepState, title: str, now: float, budget: int, *, interrupted: bool) -> list[Block]:
    head = " · ".join([title, state_badge(step.state, interrupted=interrupted), *_facts(step, now)])
    if step.display:
        head += "\n" + code_span(step.display, _DISPLAY_MAX)
    blocks: list[Block] = [_section(head)]
    problem = _problem(step)
    if problem:
        blocks.append(_section(problem))
    retry = _retry_note(step, now)
    if retry:
        blocks.append(_context(retry))
    blocks += _output_blocks(step, budget)
    return blocks


def command_message(
    command: CommandState,
    now: float,
    *,
    output_chars: int,
    rollback_output_chars: int,
    interrupted: bool = False,
) -> RenderedMessage:
    blocks = _step_blocks(command, code_span(command.id, 80), now, output_chars, interrupted=interrupted)
    if command.state is RunState.ROLLED_BACK or command.rollback:
        blocks.append(_section(f"*Rollback* ({_plural(len(command.rollback), 'step')} run)"))
    for step in command.rollback[:_ROLLBACK_STEPS_SHOWN]:
        number = step.id.rsplit(".", 1)[-1]
        blocks += _step_blocks(step, f"step {number}", now, rollback_output_chars, interrupted=interrupted)
    if len(command.rollback) > _ROLLBACK_STEPS_SHOWN:
        rest = len(command.rollback) - _ROLLBACK_STEPS_SHOWN
        blocks.append(_context(f"{ELLIPSIS} {_plural(rest, 'more rollback step')}: see the progress message"))
    state = "interrupted" if interrupted and not command.state.finished else command.state.value.replace("_", " ")
    lines = command.output.lines
    fallback = f"{command.id}: {state}" + (f" ({_plural(lines, 'line')})" if lines else "")
    return validated_message(_fallback(fallback), blocks)


# -- the progress message -----------------------------------------------------------------------------------


def _pack(lines: Sequence[str], limit: int = SECTION_TEXT_MAX) -> list[tuple[str, int]]:
    """Lines gathered into as few section texts as fit ``limit`` each, with how many lines each holds."""
    sections: list[tuple[str, int]] = []
    for line in lines:
        if sections and slack_len(sections[-1][0]) + 1 + slack_len(line) <= limit:
            text, count = sections[-1]
            sections[-1] = (f"{text}\n{line}", count + 1)
        else:
            sections.append((line, 1))
    return sections


def _rollback_summary(command: CommandState) -> str | None:
    state = command.rollback_state
    total = max(len(command.planned_rollback), len(command.rollback))
    if state is None:
        return None
    if state is RunState.RUNNING:
        return f"rolling back: step {len(command.rollback)} of {total}"
    if state is RunState.SUCCEEDED:
        return f"rolled back in {_plural(len(command.rollback), 'step')}"
    failed = next(step for step in command.rollback if step.state is state)
    number = failed.id.rsplit(".", 1)[-1]
    if state is RunState.CANCELLED:
        return f"rollback cancelled at step {number}"
    code = f": {code_span(failed.error_code, 64)}" if failed.error_code else ""
    return f"rollback failed at step {number}{code}"


def _command_line(command: CommandState, now: float, *, interrupted: bool) -> str:
    parts = [code_span(command.id, 80), state_badge(command.state, interrupted=interrupted)]
    parts += _facts(command, now, lines=False)
    if command.state is RunState.FAILED and command.error_code:
        parts.append(code_span(command.error_code, 64))
    elif command.state in (RunState.SKIPPED, RunState.CANCELLED) and command.reason:
        parts.append(fit(command.reason, _REASON_MAX, None))
    rollback = _rollback_summary(command)
    if rollback:
        parts.append(rollback)
    return " · ".join(parts)


def _plan_head(run: RunProgress, now: float) -> str:
    if run.interrupted and not run.state.finished:
        head = ":warning: *Interrupted*: the bot stopped following this run"
    else:
        head = _PLAN_HEAD[run.state]
        if run.result is not None and run.result.cancelled_by:
            head += f" by {person(run.result.cancelled_by)}"
    total = len(run.commands)
    done = sum(1 for c in run.commands.values() if c.state.finished)
    facts = [head, f"{done} of {_plural(total, 'command')} finished"]
    elapsed = run.elapsed(now)
    if elapsed is not None:
        facts.append(duration(elapsed))
    if run.result is not None and run.result.dry_run:
        facts.append("dry run")
    text = " · ".join(facts)
    if run.plan.summary:
        text += "\n" + fit(run.plan.summary, 500, None)
    return text


def _failure_lines(result: PlanResult) -> list[str]:
    lines: list[str] = []
    for outcome in result.commands:
        error = outcome.result
        if outcome.state is RunState.FAILED:
            code = code_span(error.error_code, 64) if error is not None and error.error_code else "an error"
            message = fit(error.error_message, _ERROR_MAX, None) if error is not None and error.error_message else ""
            lines.append(f"• {code_span(outcome.id, 80)} failed with {code}" + (f": {message}" if message else ""))
        elif outcome.state is RunState.CANCELLED:
            lines.append(f"• {code_span(outcome.id, 80)} was cancelled while running")
        for step in outcome.rollback:
            if step.state is RunState.FAILED:
                failed = step.result
                code = code_span(failed.error_code, 64) if failed is not None and failed.error_code else "an error"
                message = (
                    fit(failed.error_message, _ERROR_MAX, None) if failed is not None and failed.error_message else ""
                )
                lines.append(
                    f"• rollback step {step.step} of {code_span(outcome.id, 80)} failed with {code}"
                    + (f": {message}" if message else "")
                )
    if len(lines) > _FAILURE_LINES_SHOWN:
        rest = len(lines) - _FAILURE_LINES_SHOWN
        lines = [*lines[:_FAILURE_LINES_SHOWN], f"{ELLIPSIS} and {rest} more (see each command's message)"]
    summary = ["*What went wrong*", *lines]
    if result.rolled_back:
        summary.append(f"*Rolled back:* {id_list(result.rolled_back)}")
    if result.not_rolled_back:
        summary.append(
            f"*Not rolled back:* {id_list(result.not_rolled_back)} (no rollback steps, or one of them failed): "
            "their changes are still in place"
        )
    if not result.rolled_back and not result.not_rolled_back:
        summary.append("*Nothing was rolled back.*")
    return summary


def progress_message(run: RunProgress, now: float, extra: Sequence[Block] = ()) -> RenderedMessage:
    top: list[Block] = [_section(_plan_head(run, now))]
    failure: list[Block] = []
    if run.result is not None and run.result.state not in (RunState.SUCCEEDED, RunState.SKIPPED):
        failure = [_section(text) for text, _ in _pack(_failure_lines(run.result))]
    footer = "Each command's output is in its own message below."
    if run.plan.plan_hash:
        footer = f"Plan {code_span(run.plan.plan_hash[:12], 16)} · each command's output is in its own message below."
    bottom: list[Block] = [*extra, _context(trim_plain(footer, CONTEXT_TEXT_MAX))]

    lines = [_command_line(c, now, interrupted=run.interrupted) for c in run.commands.values()]
    # One block is kept back for the note saying how many commands are not listed, should it be needed.
    room = MESSAGE_MAX_BLOCKS - len(top) - len(failure) - len(bottom) - 1
    sections = _pack(lines)[: max(room, 0)]
    listed: list[Block] = [_section(text) for text, _ in sections]
    hidden = len(lines) - sum(count for _, count in sections)
    if hidden > 0:
        listed.append(_context(f"{ELLIPSIS} {_plural(hidden, 'more command')} not listed here"))
    if not lines:
        listed.append(_context("_no commands yet_"))

    state = "interrupted" if run.interrupted and not run.state.finished else run.state.value.replace("_", " ")
    fallback = f"Plan {state}: {sum(1 for c in run.commands.values() if c.state.finished)} of {len(lines)} finished"
    return validated_message(_fallback(fallback), [*top, *listed, *failure, *bottom])
