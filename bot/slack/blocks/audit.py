"""The audit summary of one Slack thread, and the *Run again* / *Roll back* buttons of a record.

One section per plan (what was proposed, its versions and edits, every decision incl. refused attempts,
what ran and how it ended, the rollback) followed by that plan's buttons, then the audit chain check.
Slack allows 50 blocks a message: a thread with more plans than fit shows the newest and counts the rest
by status, and each section is cut visibly (never silently) to Slack's 3,000 characters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.slack.blocks.limits import CONTEXT_TEXT_MAX, MESSAGE_MAX_BLOCKS, SECTION_TEXT_MAX
from bot.slack.blocks.message import RenderedMessage, validated_message
from bot.slack.blocks.mrkdwn import (
    COMMAND_STATUS_BADGE,
    ELLIPSIS,
    RECORD_STATUS_BADGE,
    code_span,
    duration,
    escape,
    fit,
    person,
    risk_badge,
    slack_date,
    slack_len,
    trim_plain,
)
from engine.history.conversation_audit import ConversationAudit
from engine.history.records import CommandStatus, Decision, ExecutionRecord

REPLAY_RUN_AGAIN = "replay_run_again"
REPLAY_ROLL_BACK = "replay_roll_back"
REPLAY_ACTION_IDS = (REPLAY_RUN_AGAIN, REPLAY_ROLL_BACK)
REPLAY_BLOCK_PREFIX = "replay_"

_DECISION_BADGE = {
    Decision.APPROVE: ":white_check_mark: approved",
    Decision.REJECT: ":no_entry: rejected",
    Decision.DENIED: ":no_entry_sign: refused (not allowed)",
}
# Header, chain check, and the note on plans left out.
_FIXED_BLOCKS = 3
_PROBLEMS_SHOWN = 10


def replay_actions_block(record: ExecutionRecord, *, can_roll_back: bool) -> ActionsBlock:
    """*Run again* always; *Roll back* only when some succeeded command has a rollback left to run."""
    elements = [
        ButtonElement(
            text=PlainTextObject(text="Run again", emoji=False),
            action_id=REPLAY_RUN_AGAIN,
            value=str(record.id),
        )
    ]
    if can_roll_back:
        elements.append(
            ButtonElement(
                text=PlainTextObject(text="Roll back", emoji=False),
                action_id=REPLAY_ROLL_BACK,
                value=str(record.id),
            )
        )
    return ActionsBlock(block_id=f"{REPLAY_BLOCK_PREFIX}{record.id}", elements=elements)


def audit_summary_message(
    conversation_id: str,
    records: Sequence[ExecutionRecord],
    audit: ConversationAudit,
    *,
    rollback_possible: set[str] | None = None,
) -> RenderedMessage:
    """The summary for ``records`` (oldest first) of one thread; ``rollback_possible`` holds record ids."""
    rollback_possible = rollback_possible or set()
    count = len(records)
    statuses = Counter(record.status.value.replace("_", " ") for record in records)
    tally = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    header = f":mag: *Audit of this thread*: {count} plan{'s' if count != 1 else ''}" + (f" ({tally})" if tally else "")
    blocks: list[Block] = [_section(header)]

    room = (MESSAGE_MAX_BLOCKS - _FIXED_BLOCKS) // 2
    shown = list(records) if count <= room else list(records)[-room:]
    left_out = list(records)[: count - len(shown)]
    first_number = count - len(shown) + 1
    for number, record in enumerate(shown, start=first_number):
        blocks.append(_section(_plan_text(number, record, audit)))
        blocks.append(replay_actions_block(record, can_roll_back=str(record.id) in rollback_possible))
    if left_out:
        by_status = Counter(r.status.value.replace("_", " ") for r in left_out)
        blocks.append(
            _context(
                f"{len(left_out)} earlier plan{'s' if len(left_out) != 1 else ''} not shown here "
                f"({', '.join(f'{n} {s}' for s, n in sorted(by_status.items()))}); "
                f"`cloudops history --conversation {conversation_id}` lists them all."
            )
        )
    blocks.append(_section(_chain_text(audit)))
    verdict = "chain OK" if audit.ok else f"{len(audit.problems)} audit problem(s)"
    text = f"Audit of this thread: {count} plan{'s' if count != 1 else ''}, {verdict}"
    return validated_message(text, blocks)


def no_plans_message() -> RenderedMessage:
    text = "No plans were proposed in this thread, so there is nothing to audit."
    return validated_message(text, [_section(f":mag: {text}")])


# ---------------------------------------------------------------------------------------------------------


def _plan_text(number: int, record: ExecutionRecord, audit: ConversationAudit) -> str:
    head = (
        f"*{number}. {fit(record.summary, 200, None)}*\n"
        f"{RECORD_STATUS_BADGE[record.status]} · {risk_badge(record.risk)} · asked by {person(record.requested_by)} "
        f"{slack_date(record.timestamp)} · version {record.plan_version} `{record.plan_hash[:12]}` · "
        f"record `{str(record.id)[:8]}`"
    )
    lines: list[str] = []
    for edit in record.edits:
        changes = [
            f"{label} {', '.join(code_span(i, 40) for i in ids[:5])}{' …' if len(ids) > 5 else ''}"
            for label, ids in (("changed", edit.changed), ("added", edit.added), ("removed", edit.removed))
            if ids
        ]
        if edit.settings:
            changes.append("settings " + ", ".join(escape(s) for s in edit.settings))
        line = f":pencil2: v{edit.from_version} → v{edit.to_version} by {person(edit.by)} {slack_date(edit.at)}"
        if changes:
            line += ": " + "; ".join(changes)
        if edit.note:
            line += f" — {fit(edit.note, 150, None)}"
        lines.append(line)
    if not record.approvals:
        lines.append("Decisions: none")
    for decision in record.approvals:
        badge = _DECISION_BADGE[decision.decision]
        line = f"{badge} by {person(decision.user)} {slack_date(decision.at)} (v{decision.plan_version})"
        if decision.comment:
            line += f": {fit(decision.comment, 150, None)}"
        lines.append(line)
    ran = record.started_at is not None or any(c.status is not CommandStatus.PENDING for c in record.commands)
    if ran:
        took = f" in {duration(record.duration_seconds)}" if record.duration_seconds is not None else ""
        by = (
            f" by {person(record.started_by)}" if record.started_by and record.started_by.startswith(("U", "W")) else ""
        )
        lines.append(f"Run{by}{took}:")
        for command in record.commands:
            line = f"• {code_span(command.id, 40)} {COMMAND_STATUS_BADGE[command.status]}"
            if command.duration_seconds is not None:
                line += f" ({duration(command.duration_seconds)})"
            if command.error_code:
                line += f" {code_span(command.error_code, 60)}"
            line += f": {code_span(command.command, 160)}"
            if command.error_message:
                line += f" — {fit(command.error_message, 150, None)}"
            elif command.skipped_reason:
                line += f" — {fit(command.skipped_reason, 150, None)}"
            lines.append(line)
            output = " ".join(command.output.split())
            if output:
                lines.append(f"  → {code_span(output, 150)}")
            for step in command.rollback:
                rollback = f"  ↩ rollback {COMMAND_STATUS_BADGE[step.status]}: {code_span(step.command, 120)}"
                if step.error_code or step.error_message:
                    rollback += f" — {fit(' '.join(filter(None, [step.error_code, step.error_message])), 120, None)}"
                lines.append(rollback)
    else:
        lines.append(
            f"Commands ({len(record.commands)}), not run: "
            + ", ".join(code_span(c.command, 80) for c in record.commands[:5])
        )
    if record.rollback and (record.rollback.rolled_back or record.rollback.not_rolled_back):
        parts = []
        if record.rollback.rolled_back:
            parts.append("rolled back " + ", ".join(code_span(i, 40) for i in record.rollback.rolled_back[:10]))
        if record.rollback.not_rolled_back:
            parts.append("NOT rolled back " + ", ".join(code_span(i, 40) for i in record.rollback.not_rolled_back[:10]))
        lines.append("Rollback: " + "; ".join(parts))
    problems = audit.problems_of(record.id)
    if problems:
        lines.append(
            f":rotating_light: Audit: {len(problems)} problem{'s' if len(problems) != 1 else ''} with this record"
        )
    return _within(head, lines, SECTION_TEXT_MAX)


def _chain_text(audit: ConversationAudit) -> str:
    if audit.ok:
        text = (
            f":lock: *Audit chain OK* for the {_count(len(audit.record_ids), 'record')} "
            f"of this thread (chain of {audit.entries} entries, head `{audit.head_hash[:12]}`)."
        )
    else:
        lines = [
            f"• {escape(p.kind.value)}: record `{p.record_id}`: {fit(p.detail, 300, None)}"
            for p in audit.problems[:_PROBLEMS_SHOWN]
        ]
        more = len(audit.problems) - _PROBLEMS_SHOWN
        if more > 0:
            lines.append(f"{ELLIPSIS} and {more} more; `cloudops audit verify` lists them all.")
        text = _within(
            f":rotating_light: *Audit chain problems* with this thread's records ({len(audit.problems)}):",
            lines,
            SECTION_TEXT_MAX - 200,
        )
    if audit.other_problems:
        text += (
            f"\n:warning: The chain has {audit.other_problems} other problem{'s' if audit.other_problems != 1 else ''} "
            "outside this thread; run `cloudops audit verify`."
        )
    return text


def _within(head: str, lines: list[str], limit: int) -> str:
    text = head
    for index, line in enumerate(lines):
        left = len(lines) - index
        marker = (
            f"\n{ELLIPSIS} {left} more line{'s' if left != 1 else ''} not shown; `cloudops history` has the record."
        )
        if slack_len(text) + 1 + slack_len(line) + slack_len(marker) > limit:
            return text + marker
        text += "\n" + line
    return text


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text, verbatim=True))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=trim_plain(text, CONTEXT_TEXT_MAX), verbatim=True)])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"
