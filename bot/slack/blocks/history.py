"""``/cloudops history`` and ``/cloudops help``: the ephemeral list of records, its page buttons, the Details
modal with one whole record, and the help text.

Everything from a record reaches Slack through ``mrkdwn``'s helpers (escaped, cut visibly). The list holds
at most ``PAGE_SIZE`` records (two blocks each) and stays far below 50 blocks; the modal sizes each
command's output to share what is left of Slack's 100 blocks and 250 kB, and says what it left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.slack.blocks.audit import replay_actions_block
from bot.slack.blocks.limits import (
    CONTEXT_TEXT_MAX,
    HEADER_TEXT_MAX,
    MODAL_MAX_BLOCKS,
    SECTION_FIELD_TEXT_MAX,
    SECTION_FIELDS_MAX,
    SECTION_TEXT_MAX,
)
from bot.slack.blocks.message import RenderedMessage, validated_message
from bot.slack.blocks.modals import validated_view
from bot.slack.blocks.mrkdwn import (
    COMMAND_STATUS_BADGE,
    ELLIPSIS,
    RECORD_STATUS_BADGE,
    code_block,
    code_span,
    defuse_fences,
    duration,
    escape,
    fit,
    id_list,
    people,
    person,
    risk_badge,
    slack_date,
    slack_len,
    trim_plain,
)
from bot.slack.replay import can_roll_back
from engine.history.records import CommandRecord, Decision, ExecutionRecord, RecordStatus, RollbackRecord
from engine.risk import Risk

HISTORY_NEXT = "history_next"
HISTORY_PREVIOUS = "history_previous"
HISTORY_PAGE_ACTION_IDS = (HISTORY_NEXT, HISTORY_PREVIOUS)
HISTORY_DETAILS = "history_details"
HISTORY_PAGING_BLOCK_ID = "history_paging"
HISTORY_DETAILS_CALLBACK_ID = "history_details"
ENTRY_BLOCK_PREFIX = "history_record_"

_SUMMARY_MAX = 400
_HTTPS_LINK = re.compile(r"^https://[^\s<>|]{1,1000}$")
_DECISION_BADGE = {
    Decision.APPROVE: ":white_check_mark: approved",
    Decision.REJECT: ":no_entry: rejected",
    Decision.DENIED: ":no_entry_sign: refused (not an approver)",
}

# The modal: text shared by all command sections, shrunk until the view is under Slack's byte limit.
_COMMANDS_TEXT_BUDGET = 120_000
_MIN_OUTPUT_BUDGET = 200
_MIN_COMMAND_SECTION = 300
# Blocks the modal keeps for everything that is not a command section.
_MODAL_FIXED_BLOCKS = 12


def entry_block_id(record: ExecutionRecord) -> str:
    return f"{ENTRY_BLOCK_PREFIX}{record.id}"


# ---------------------------------------------------------------------------------------------------------
# The list


def history_message(
    records: Sequence[ExecutionRecord],
    *,
    page: int,
    page_size: int,
    description: str,
    ranking: str,
    previous_value: str | None = None,
    next_value: str | None = None,
    notes: Sequence[str] = (),
) -> RenderedMessage:
    """One page of records, newest (or best matching) first, each with a Details button.

    ``description`` is mrkdwn the caller built from the query; ``notes`` (mrkdwn) explain a narrowed
    answer. The page buttons carry ``previous_value`` / ``next_value`` when there is such a page.
    """
    what = description or "all records you can see"
    if not records:
        text = f":mag: No records you can see match: {what}."
        blocks: list[Block] = [_section(_cut(text, SECTION_TEXT_MAX))]
        if page > 0:
            blocks.append(_context("This page is past the last record."))
        blocks.extend(_context(_cut(note, CONTEXT_TEXT_MAX)) for note in notes)
        if previous_value is not None:
            blocks.append(_paging(previous_value, None))
        return validated_message(_cut(f"No records match: {what}", 3_000), blocks)

    first = page * page_size + 1
    last = first + len(records) - 1
    order = "best match first" if ranking == "best" else "newest first"
    heading = f"*Execution history* — {what}\nRecords {first} to {last}, {order}."
    blocks = [_section(_cut(heading, SECTION_TEXT_MAX))]
    blocks.extend(_context(_cut(note, CONTEXT_TEXT_MAX)) for note in notes)
    for record in records:
        blocks.extend(_entry_blocks(record))
    if previous_value is not None or next_value is not None:
        blocks.append(_paging(previous_value, next_value))
    fallback = f"Execution history: records {first} to {last}"
    return validated_message(fallback, blocks)


def _entry_blocks(record: ExecutionRecord) -> list[Block]:
    badges = f"{RECORD_STATUS_BADGE[record.status]} · {risk_badge(record.risk)}"
    if record.dry_run:
        badges += " · :test_tube: dry run"
    who = f"Requested by {person(record.requested_by)}"
    approvers = [a.user for a in record.approvals_for_current_plan() if a.decision is Decision.APPROVE]
    if approvers:
        who += f" · approved by {people(approvers, limit=5)}"
    text = f"{badges}\n*{fit(_summary(record), _SUMMARY_MAX, 'Details')}*\n{who}"
    details = ButtonElement(
        text=PlainTextObject(text="Details", emoji=False),
        action_id=HISTORY_DETAILS,
        value=str(record.id),
        accessibility_label=trim_plain(f"Details of {_summary(record)}", 75),
    )
    facts = [slack_date(record.timestamp)]
    if record.duration_seconds is not None:
        facts.append(f"took {duration(record.duration_seconds)}")
    facts.append(_where(record))
    return [
        SectionBlock(
            block_id=entry_block_id(record),
            text=MarkdownTextObject(text=_cut(text, SECTION_TEXT_MAX), verbatim=True),
            accessory=details,
        ),
        _context(_cut(" · ".join(facts), CONTEXT_TEXT_MAX)),
    ]


def _summary(record: ExecutionRecord) -> str:
    return " ".join(record.summary.split()) or "(no summary)"


def _where(record: ExecutionRecord) -> str:
    place = f"<#{record.channel}>" if record.channel else "command line"
    link = thread_link(record)
    return f"{place} · <{link}|open thread>" if link else place


def thread_link(record: ExecutionRecord) -> str | None:
    """The record's permalink when it is a plain https URL that cannot break out of mrkdwn's link form."""
    if record.link and _HTTPS_LINK.fullmatch(record.link):
        return record.link
    return None


def _paging(previous_value: str | None, next_value: str | None) -> ActionsBlock:
    buttons = []
    if previous_value is not None:
        buttons.append(
            ButtonElement(
                text=PlainTextObject(text="◀ Previous", emoji=False),
                action_id=HISTORY_PREVIOUS,
                value=previous_value,
            )
        )
    if next_value is not None:
        buttons.append(
            ButtonElement(text=PlainTextObject(text="Next ▶", emoji=False), action_id=HISTORY_NEXT, value=next_value)
        )
    return ActionsBlock(block_id=HISTORY_PAGING_BLOCK_ID, elements=buttons)


# ---------------------------------------------------------------------------------------------------------
# The Details modal


def record_details_modal(record: ExecutionRecord) -> View:
    """Everything the record holds, within Slack's limits for a modal; what does not fit is counted."""
    budget = _COMMANDS_TEXT_BUDGET
    while True:
        view = View(
            type="modal",
            callback_id=HISTORY_DETAILS_CALLBACK_ID,
            title=PlainTextObject(text="Execution record", emoji=False),
            close=PlainTextObject(text="Close", emoji=False),
            private_metadata=str(record.id),
            blocks=_details_blocks(record, budget),
        )
        try:
            return validated_view(view)
        except SlackObjectFormationError:
            # Over the byte limit (non-ASCII output escapes long in JSON): give the outputs less room.
            if budget <= _MIN_OUTPUT_BUDGET * 10:
                raise
            budget //= 2


def _details_blocks(record: ExecutionRecord, commands_budget: int) -> list[Block]:
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=trim_plain(_summary(record), HEADER_TEXT_MAX))),
        SectionBlock(fields=[MarkdownTextObject(text=f, verbatim=True) for f in _fact_fields(record)]),
    ]
    if record.user_prompt and record.user_prompt.strip() != record.summary.strip():
        blocks.append(_section("*Request*\n" + _quote(record.user_prompt, SECTION_TEXT_MAX - 20)))
    blocks.append(_section(_approvals_text(record)))
    if record.edits:
        blocks.append(_section(_edits_text(record)))

    blocks.append(DividerBlock())
    count = len(record.commands)
    blocks.append(_section(f"*Commands* ({count})" if count else "*Commands*: none recorded"))
    tail: list[Block] = []
    if record.rollback and (record.rollback.rolled_back or record.rollback.not_rolled_back):
        tail.append(_section(_rollback_summary_text(record)))
    if record.notes:
        tail.append(_section(_notes_text(record.notes)))
    tail.append(_context(_cut(_record_footer(record), CONTEXT_TEXT_MAX)))
    # Run again / Roll back: a new proposal in the record's thread (bot.slack.listeners.replay_actions).
    if record.conversation_id.startswith("slack:"):
        tail.append(replay_actions_block(record, can_roll_back=can_roll_back(record)))

    room = MODAL_MAX_BLOCKS - len(blocks) - len(tail)
    shown = record.commands if count <= room else record.commands[: room - 1]
    if shown:
        # Never under what a command line and its state need; the view's byte check is the final word.
        per_command = max(min(SECTION_TEXT_MAX, commands_budget // len(shown)), _MIN_COMMAND_SECTION)
        blocks.extend(_section(_command_text(command, per_command)) for command in shown)
    if len(shown) < count:
        missing = count - len(shown)
        blocks.append(
            _section(
                f":warning: {missing} more command{'s' if missing != 1 else ''} do not fit in this window; "
                f"{_full_record_hint(record)} shows them all."
            )
        )
    return blocks + tail


def _fact_fields(record: ExecutionRecord) -> list[str]:
    status = RECORD_STATUS_BADGE[record.status] + (" (dry run)" if record.dry_run else "")
    fields = [
        f"*Status*\n{status}",
        f"*Risk*\n{risk_badge(record.risk)}",
        f"*Requested by*\n{person(record.requested_by)}",
        f"*Created*\n{slack_date(record.timestamp)}",
    ]
    if record.started_at or record.finished_at or record.duration_seconds is not None:
        times = []
        if record.started_at:
            times.append(f"started {slack_date(record.started_at)}")
        if record.finished_at:
            times.append(f"finished {slack_date(record.finished_at)}")
        if record.duration_seconds is not None:
            times.append(f"took {duration(record.duration_seconds)}")
        fields.append("*Run*\n" + "\n".join(times))
    target = [
        f"{label} {code_span(value, 120)}"
        for label, value in (
            ("profile", record.aws_profile),
            ("region", record.aws_region),
            ("account", record.aws_account),
            ("environment", record.environment),
        )
        if value
    ]
    if target:
        fields.append("*Target*\n" + "\n".join(target))
    fields.append(f"*Where*\n{_where(record)}")
    fields.append(f"*Plan*\nversion {record.plan_version} · hash {code_span(record.plan_hash[:12])}")
    if record.cancelled_by:
        fields.append(f"*Cancelled by*\n{person(record.cancelled_by)}")
    if record.started_by:
        fields.append(f"*Started by*\n{person(record.started_by)}")
    return [_cut(f, SECTION_FIELD_TEXT_MAX) for f in fields[:SECTION_FIELDS_MAX]]


def _approvals_text(record: ExecutionRecord) -> str:
    if record.approvals_required is not None:
        heading = f"*Approvals* ({record.approvals_required} required for the current version)"
    else:
        heading = "*Approvals*"
    if not record.approvals:
        return f"{heading}\nNone recorded."
    lines = []
    for approval in record.approvals:
        line = (
            f"• {_DECISION_BADGE[approval.decision]} by {person(approval.user)}, {slack_date(approval.at)}, "
            f"version {approval.plan_version}"
        )
        if approval.plan_version != record.plan_version or approval.plan_hash != record.plan_hash:
            line += " (an earlier version)"
        if approval.comment:
            line += f": {fit(approval.comment, 300, None)}"
        lines.append(line)
    return _lines_within(heading, lines, SECTION_TEXT_MAX, "decisions")


def _edits_text(record: ExecutionRecord) -> str:
    lines = []
    for edit in record.edits:
        changes = []
        for label, ids in (("changed", edit.changed), ("added", edit.added), ("removed", edit.removed)):
            if ids:
                changes.append(f"{label} {id_list(ids, limit=5)}")
        if edit.settings:
            changes.append("settings " + ", ".join(escape(s) for s in edit.settings))
        line = f"• version {edit.from_version} → {edit.to_version} by {person(edit.by)}, {slack_date(edit.at)}"
        if changes:
            line += ": " + "; ".join(changes)
        if edit.note:
            line += f" — {fit(edit.note, 200, None)}"
        lines.append(line)
    return _lines_within("*Edits*", lines, SECTION_TEXT_MAX, "edits")


def _command_text(command: CommandRecord, budget: int) -> str:
    """One command: state, the command line, its error, its rollback steps and the end of its output."""
    facts = [code_span(command.id, 64), COMMAND_STATUS_BADGE[command.status]]
    if command.risk is not None:
        facts.append(risk_badge(command.risk))
    if command.exit_code is not None:
        facts.append(f"exit {command.exit_code}")
    if command.duration_seconds is not None:
        facts.append(duration(command.duration_seconds))
    if len(command.attempts) > 1:
        facts.append(f"{len(command.attempts)} attempts")
    parts = [" · ".join(facts)]
    parts.append(code_block(command.command, min(600, budget // 4), None))
    problem = _problem(command.error_code, command.error_message) or command.skipped_reason
    if problem:
        parts.append(":x: " + fit(problem, min(500, budget // 6), None))
    if command.rollback:
        parts.append(_rollback_steps_text(command.rollback, min(500, budget // 6)))
    used = slack_len("\n".join(parts))
    output_room = budget - used - 80
    if command.output and output_room >= _MIN_OUTPUT_BUDGET:
        parts.append(_output_text(command, output_room))
    elif command.output:
        parts.append(f"_Output: {command.output_bytes:,} bytes, not shown here._")
    return _cut("\n".join(parts), SECTION_TEXT_MAX)


def _problem(code: str | None, message: str | None) -> str | None:
    if code and message:
        return f"{code}: {message}"
    return code or message


def _rollback_steps_text(steps: list[RollbackRecord], budget: int) -> str:
    lines = []
    for step in steps:
        line = f"  ↩ step {step.step} {code_span(step.command, 120)} {COMMAND_STATUS_BADGE[step.status]}"
        problem = _problem(step.error_code, step.error_message)
        if problem:
            line += f": {fit(problem, 160, None)}"
        lines.append(line)
    return _lines_within("*Rollback*", lines, budget, "steps")


def _output_text(command: CommandRecord, budget: int) -> str:
    kept = command.output
    block, omitted = tail_code_block(kept, budget - 120)
    label = "*Output*"
    if omitted:
        label += f", the last {len(kept) - omitted:,} of {len(kept):,} characters"
    if command.output_truncated:
        label += f" (the history kept the start and end of {command.output_bytes:,} bytes)"
    return f"{label}:\n{block}"


def tail_code_block(raw: str, budget: int) -> tuple[str, int]:
    """The end of ``raw`` as a code block of at most ``budget`` characters, and how many were left out.

    The end is what says how a command finished (the error, the summary line), so a cut drops the start.
    """
    opening, closing = "```\n", "\n```"
    room = budget - slack_len(opening + closing)
    if room < 1:
        raise ValueError("a code block needs room for at least one character")
    keep = min(len(raw), room)
    while True:
        body = defuse_fences(escape(raw[len(raw) - keep :]))
        over = slack_len(body) - room
        if over <= 0:
            break
        # Escaping only lengthens text, so every character dropped frees at least one.
        keep = max(0, keep - over)
    omitted = len(raw) - keep
    if omitted and "\n" in body[: len(body) // 5]:
        # Start at a line, not in the middle of one.
        body = body[body.index("\n") + 1 :]
    return f"{opening}{body.rstrip(chr(10)) or ' '}{closing}", omitted


def _rollback_summary_text(record: ExecutionRecord) -> str:
    assert record.rollback is not None
    lines = ["*Rollback of the plan*"]
    if record.rollback.rolled_back:
        lines.append(f"Rolled back: {id_list(record.rollback.rolled_back, limit=20)}")
    if record.rollback.not_rolled_back:
        lines.append(f":warning: Not rolled back: {id_list(record.rollback.not_rolled_back, limit=20)}")
    return _cut("\n".join(lines), SECTION_TEXT_MAX)


def _notes_text(notes: list[str]) -> str:
    return _lines_within("*Notes*", [f"• {fit(note, 600, None)}" for note in notes], SECTION_TEXT_MAX, "notes")


def _record_footer(record: ExecutionRecord) -> str:
    return (
        f"Record {code_span(str(record.id))} · version {record.version} · "
        f"conversation {code_span(record.conversation_id, 120)} · full record: {_full_record_hint(record)}"
    )


def _full_record_hint(record: ExecutionRecord) -> str:
    return code_span(f"cloudops history --conversation {record.conversation_id} --json", 200)


def _lines_within(heading: str, lines: list[str], budget: int, what: str) -> str:
    """``heading`` and as many whole ``lines`` as fit in ``budget``, then a count of those left out."""
    text = heading
    for index, line in enumerate(lines):
        rest = len(lines) - index
        reserve = len(f"\n{ELLIPSIS} and {rest} more {what}")
        if slack_len(text) + 1 + slack_len(line) + reserve > budget:
            return f"{text}\n{ELLIPSIS} and {rest} more {what}"
        text += "\n" + line
    return text


def _quote(raw: str, budget: int) -> str:
    return "\n".join("> " + line for line in fit(raw, budget - raw.count("\n") * 2 - 2, None).splitlines())


# ---------------------------------------------------------------------------------------------------------
# Help and errors


def history_help_message(*, problem: str | None = None) -> RenderedMessage:
    """How to use ``/cloudops``; ``problem`` (mrkdwn) says first what was wrong with what was typed."""
    blocks: list[Block] = []
    if problem:
        blocks.append(_section(_cut(f":warning: {problem}", SECTION_TEXT_MAX)))
    blocks += [
        _section(
            "*`/cloudops history [words] [filters]`* searches the execution history: plans asked for in "
            "Slack or on the command line, their approvals and how they ran. Only you see the answer.\n"
            "With words, records are ranked by how well their request, summary and commands match; "
            "without, the newest come first. Ten records a page; *Details* shows one whole record."
        ),
        _section(
            "*Filters* (`status:`, `risk:`, `service:` and `channel:` take several values, as `a,b` or given "
            "again, and match any of them)\n"
            "• `user:me`, `user:@name` (picked from Slack's suggestions), `user:U0123ABCD`, "
            "or a command-line user name\n"
            f"• `status:` {', '.join(status.value for status in RecordStatus)}\n"
            f"• `risk:` {', '.join(risk.value for risk in Risk)}\n"
            "• `service:ec2`: plans with a command for that AWS service\n"
            "• `since:` 30m, 24h, 7d, 2w or a date such as 2024-05-01\n"
            "• `channel:here`, `channel:#ops`: records from one channel you are in"
        ),
        _section(
            "*Examples*\n"
            "• `/cloudops history` (the newest records)\n"
            "• `/cloudops history status:failed since:7d`\n"
            "• `/cloudops history stop instances risk:destructive user:me`\n"
            '• `/cloudops history service:s3 channel:here "arn:aws:s3:::web-logs"`\n'
            "• `/cloudops help`"
        ),
        _context(
            "You see records from channels you are a member of. Records made on the command line are shown to "
            "the policy's approvers. Put a word with a colon in double quotes to search for it."
        ),
    ]
    text = "How to use /cloudops history" if not problem else "That history query cannot be run"
    return validated_message(text, blocks)


# ---------------------------------------------------------------------------------------------------------


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text, verbatim=True))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text, verbatim=True)])


def _cut(text: str, limit: int) -> str:
    return text if slack_len(text) <= limit else trim_plain(text, limit)
