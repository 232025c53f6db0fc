"""The plan message: what a plan will do, how risky each step is, who must approve it, and how it ended.

The same renderer draws a plan awaiting approval (with buttons) and the card after a decision or a run
(outcome, no buttons): the message is updated in place, so the thread always shows one plan's whole story.

A plan of any size fits in one message. Commands are packed several to a section; an over-long command is
cut with a note saying how much is missing; when the 50-block limit is reached, a closing section says
exactly how many commands are not shown and where to read them. Nothing is dropped without saying so.
"""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.slack.blocks.actions import ACTIONS_BLOCK_ID, APPROVE, DRY_RUN, EDIT, REJECT
from bot.slack.blocks.card import CommandView, DryRunSummary, PlanCard, PlanEdit
from bot.slack.blocks.limits import (
    CONFIRM_TEXT_MAX,
    CONTEXT_TEXT_MAX,
    HEADER_TEXT_MAX,
    MESSAGE_MAX_BLOCKS,
    SECTION_FIELD_TEXT_MAX,
    SECTION_TEXT_MAX,
)
from bot.slack.blocks.message import RenderedMessage, validated_message
from bot.slack.blocks.mrkdwn import (
    COMMAND_STATUS_BADGE,
    ELLIPSIS,
    RECORD_STATUS_BADGE,
    RISK_EMOJI,
    code_block,
    code_span,
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
from engine.history.records import CommandStatus, RecordStatus
from engine.plan import ExecutionMode, FailurePolicy
from engine.risk import Risk

_ORDER = {
    ExecutionMode.SEQUENTIAL: "sequential: one after another, in the order listed",
    ExecutionMode.PARALLEL: "parallel: all at once",
    ExecutionMode.DEPENDENCY_GRAPH: "dependency graph: each after the commands it depends on",
}
_ON_FAILURE = {
    FailurePolicy.STOP: "stop at the first failure",
    FailurePolicy.ROLLBACK: "undo the finished commands with their rollback steps",
    FailurePolicy.CONTINUE: "carry on with the rest",
}

# Per-command parts other than the command and its rollback are capped so that those two always keep
# most of a section: a reviewer must be able to read what will run.
_DESCRIPTION_MAX = 400
_ERROR_MAX = 300
_DEPENDENCIES_SHOWN = 8
_ROLLBACK_STEP_MIN = 160
_ENTRY_SEPARATOR = "\n\n"
_HISTORY = "`cloudops history`"
# What a reviewer must know before approving a read that hands out secrets: the values are not shown.
RETURNS_SECRETS_NOTE = ":lock: _returns secrets: sensitive output withheld_"


def plan_message(card: PlanCard) -> RenderedMessage:
    """The plan card as a message: buttons while it awaits approval, the outcome once decided or run."""
    # A finished card has no Edit button, so cut text points at the history instead.
    where = "Edit" if card.awaiting_approval else _HISTORY

    top: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=trim_plain(card.plan.summary, HEADER_TEXT_MAX), emoji=False))
    ]
    if not card.awaiting_approval:
        top.append(_section(_status_text(card)))
    if slack_len(card.plan.summary) > HEADER_TEXT_MAX:
        top.append(_section(fit(card.plan.summary, SECTION_TEXT_MAX, where)))
    top.append(SectionBlock(fields=[_mrkdwn(text) for text in _facts(card)]))
    top.append(ContextBlock(elements=[_mrkdwn(text) for text in _identity(card)]))
    top.append(DividerBlock())

    bottom: list[Block] = []
    if card.dry_run is not None:
        bottom.append(_section(_dry_run_text(card.dry_run)))
    if card.awaiting_approval:
        bottom.append(_actions(card))

    # One block is kept for the "not shown" note whether or not it turns out to be needed.
    room = MESSAGE_MAX_BLOCKS - len(top) - len(bottom) - 1
    sections, shown = _command_sections(card, room, where)
    middle: list[Block] = [_section(text) for text in sections]
    hidden = card.commands[shown:]
    if hidden:
        middle.append(_section(_not_shown_text(card, hidden)))

    return validated_message(_fallback_text(card), [*top, *middle, *bottom])


# -- header part --------------------------------------------------------------------------------------------


def _mrkdwn(text: str) -> MarkdownTextObject:
    # verbatim: Slack would otherwise turn bare URLs and words like @channel in plan text into links and
    # mentions. Markup the renderer writes on purpose (<@U…>, <!date…>) still works.
    return MarkdownTextObject(text=text, verbatim=True)


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=_mrkdwn(text))


def _facts(card: PlanCard) -> list[str]:
    count = len(card.commands)
    facts = [
        f"*Risk*\n{RISK_EMOJI[card.risk]} *{card.risk.label}* · {count} command{'s' if count != 1 else ''}",
        f"*Order*\n{_ORDER[card.mode]}\non failure: {_ON_FAILURE[card.on_failure]}",
        f"*Target*\n{_target_text(card)}",
        f"*Requested by*\n{person(card.requested_by)}",
        f"*Approvals*\n{_approvals_text(card)}",
    ]
    if card.status in (RecordStatus.PENDING_APPROVAL, RecordStatus.APPROVED):
        facts.append(f"*Expires*\n{slack_date(card.expires_at)}")
    return [_fit_field(text) for text in facts]


def _fit_field(text: str) -> str:
    # Every part is short by construction; this guards Slack's limit should a profile name be enormous.
    return text if slack_len(text) <= SECTION_FIELD_TEXT_MAX else trim_plain(text, SECTION_FIELD_TEXT_MAX)


def _target_text(card: PlanCard) -> str:
    target = card.target
    lines = [
        f"profile {code_span(target.aws_profile, 100) if target.aws_profile else '_default_'}",
        f"region {code_span(target.region, 40) if target.region else '_default_'}",
    ]
    if target.environment:
        lines.append(f"environment {code_span(target.environment, 100)}")
    if target.account:
        lines.append(f"account {code_span(target.account, 40)}")
    return "\n".join(lines)


def _approvals_text(card: PlanCard) -> str:
    given = len(card.approvals)
    if card.approvals_required == 0 and not given:
        return "none needed"
    text = f"{given} of {card.approvals_required}"
    if given:
        text += f": {people([approval.user for approval in card.approvals], limit=15)}"
    return text


def _identity(card: PlanCard) -> list[str]:
    parts = [f"Plan {code_span(str(card.record_id))} · version {card.plan_version} · hash {code_span(card.short_hash)}"]
    if card.edit is not None:
        parts.append(_edit_text(card.edit))
    elif card.plan_version > 1:
        parts.append(f"edited: this is version {card.plan_version}")
    return [text if slack_len(text) <= CONTEXT_TEXT_MAX else trim_plain(text, CONTEXT_TEXT_MAX) for text in parts]


def _edit_text(edit: PlanEdit) -> str:
    changes = []
    if edit.changed:
        changes.append(f"commands changed: {id_list(edit.changed)}")
    if edit.added:
        changes.append(f"added: {id_list(edit.added)}")
    if edit.removed:
        changes.append(f"removed: {id_list(edit.removed)}")
    if edit.settings:
        changes.append(f"{', '.join(edit.settings)} changed")
    text = f":pencil2: edited by {person(edit.edited_by)}: version {edit.version}"
    if changes:
        text += ", " + "; ".join(changes)
    if edit.note:
        text += f" — “{fit(edit.note, 500, None)}”"
    return text


# -- status and outcome -------------------------------------------------------------------------------------


def _status_text(card: PlanCard) -> str:
    status = card.status
    outcome = card.outcome
    lines = [f"*Status:* {RECORD_STATUS_BADGE[status]}"]
    if outcome is not None and outcome.dry_run:
        lines[0] += " _(dry run)_"
    if outcome is not None and outcome.duration_seconds is not None:
        lines[0] += f" in {duration(outcome.duration_seconds)}"
    if outcome is not None and outcome.finished_at is not None:
        lines[0] += f" · {slack_date(outcome.finished_at)}"

    approvers = outcome.approvers if outcome is not None else [a.user for a in card.approvals]
    if status is RecordStatus.REJECTED:
        lines.extend(_rejection_lines(card))
    elif status is RecordStatus.EXPIRED:
        lines.append(
            f"Not approved in time: {len(card.approvals)} of {card.approvals_required} approvals "
            f"by {slack_date(card.expires_at)}. Nothing ran."
        )
    elif approvers:
        lines.append(f"Approved by {people(approvers)}")
    elif status is not RecordStatus.CANCELLED:
        lines.append("No approval was needed")

    if status is RecordStatus.INTERRUPTED:
        lines.append(
            "The run stopped before it finished (CloudOps was restarted). Some commands may have run: "
            "check the account before trying again."
        )
    if outcome is not None:
        for failure in outcome.failures[:5]:
            lines.append(f":x: {code_span(failure.id, 64)} {fit(failure.message, _ERROR_MAX, _HISTORY)}")
        if len(outcome.failures) > 5:
            lines.append(f"… and {len(outcome.failures) - 5} more failed commands")
        if outcome.rolled_back:
            lines.append(f"Rolled back: {id_list(outcome.rolled_back)}")
        if outcome.not_rolled_back:
            lines.append(f":warning: Not rolled back (check these by hand): {id_list(outcome.not_rolled_back)}")
        if outcome.cancelled_by:
            lines.append(f"Cancelled by {person(outcome.cancelled_by)}")
    return _join_within("\n", lines, SECTION_TEXT_MAX)


def _rejection_lines(card: PlanCard) -> list[str]:
    rejection = card.rejection
    if rejection is None:
        return ["Nothing ran."]
    when = f" · {slack_date(rejection.at)}" if rejection.at is not None else ""
    reason = f"Reason: {fit(rejection.reason, 1500, _HISTORY)}" if rejection.reason else "No reason given."
    return [f"Rejected by {person(rejection.user)}{when}", reason, "Nothing ran."]


def _dry_run_text(summary: DryRunSummary) -> str:
    head = ":test_tube: *Dry run*"
    if summary.duration_seconds is not None:
        head += f" ({duration(summary.duration_seconds)})"
    counts = []
    if summary.accepted:
        counts.append(f"{len(summary.accepted)} accepted by AWS")
    if summary.validated_only:
        counts.append(f"{len(summary.validated_only)} validated only (no dry-run mode, not sent to AWS)")
    if summary.failed:
        counts.append(f"{len(summary.failed)} would fail")
    if summary.skipped:
        counts.append(f"{len(summary.skipped)} skipped")
    lines = [f"{head}: {', '.join(counts) or 'nothing checked'}"]
    problems = [("would fail", p) for p in summary.failed] + [("skipped", p) for p in summary.skipped]
    for label, problem in problems[:8]:
        lines.append(f"• {code_span(problem.id, 64)} {label}: {fit(problem.message, _ERROR_MAX, None)}")
    if len(problems) > 8:
        lines.append(f"… and {len(problems) - 8} more")
    return _join_within("\n", lines, SECTION_TEXT_MAX)


def _join_within(separator: str, lines: list[str], limit: int) -> str:
    """Lines joined up to ``limit``; lines that do not fit are counted, not silently lost."""
    kept: list[str] = []
    for index, line in enumerate(lines):
        rest = len(lines) - index
        tail = f"{separator}{ELLIPSIS} {rest} more line{'s' if rest != 1 else ''} not shown"
        candidate = separator.join([*kept, line])
        is_last = index == len(lines) - 1
        if slack_len(candidate) + (0 if is_last else slack_len(tail)) <= limit:
            kept.append(line)
            continue
        return separator.join(kept) + tail
    return separator.join(kept)


# -- commands -----------------------------------------------------------------------------------------------


def _command_sections(card: PlanCard, room: int, where: str) -> tuple[list[str], int]:
    """Section texts holding as many commands as ``room`` sections allow, and how many commands they hold."""
    sections: list[str] = []
    shown = 0
    for index, view in enumerate(card.commands, start=1):
        entry = _command_entry(index, view, where)
        if sections and slack_len(sections[-1]) + len(_ENTRY_SEPARATOR) + slack_len(entry) <= SECTION_TEXT_MAX:
            sections[-1] += _ENTRY_SEPARATOR + entry
        elif len(sections) < room:
            sections.append(entry)
        else:
            break
        shown += 1
    return sections, shown


def _command_entry(index: int, view: CommandView, where: str) -> str:
    """One command, its risk, order, description and rollback, in at most one section's worth of text."""
    head = f"*{index}.* {code_span(view.id, 64)} · {RISK_EMOJI[view.risk]} *{view.risk.label}*"
    if view.depends_on:
        head += f" · after {id_list(view.depends_on, limit=_DEPENDENCIES_SHOWN)}"
    if view.status is not CommandStatus.PENDING:
        head += f" · {COMMAND_STATUS_BADGE[view.status]}"
    fixed = [head]
    if view.returns_secrets:
        fixed.append(RETURNS_SECRETS_NOTE)
    if view.description:
        fixed.append(fit(view.description, _DESCRIPTION_MAX, where))
    if view.error and view.status in (CommandStatus.FAILED, CommandStatus.SKIPPED):
        fixed.append(
            f"_{'failed' if view.status is CommandStatus.FAILED else 'skipped'}:_ {fit(view.error, _ERROR_MAX, where)}"
        )
    fixed_text = "\n".join(fixed)

    rollback_title = "*Rollback:*" if view.rollback else "*Rollback:* none"
    if len(view.rollback) > 1:
        rollback_title = f"*Rollback* ({len(view.rollback)} steps, in order):"

    unlimited = 10 * SECTION_TEXT_MAX + 10 * len(view.display)
    command = code_block(view.display, unlimited, where)
    steps = [code_block(step, unlimited, where) for step in view.rollback]
    entry = _assemble(fixed_text, command, rollback_title, steps)
    if slack_len(entry) <= SECTION_TEXT_MAX:
        return entry

    # Too long: the command keeps at least two thirds of what is left, the rollback steps the rest.
    overflow_note = f"_{ELLIPSIS} and {len(steps)} more rollback steps — full text in {where}_"
    remaining = SECTION_TEXT_MAX - slack_len(fixed_text) - slack_len(rollback_title) - 2
    remaining -= slack_len(overflow_note) + 1
    steps_need = sum(slack_len(step) + 1 for step in steps)
    steps_budget = min(steps_need, max(remaining // 3, remaining - slack_len(command)))
    command = code_block(view.display, remaining - steps_budget, where)

    shown_steps: list[str] = []
    left = steps_budget
    for step_index, step in enumerate(view.rollback):
        if left - 1 < _ROLLBACK_STEP_MIN:
            shown_steps.append(
                f"_{ELLIPSIS} and {len(view.rollback) - step_index} more rollback steps — full text in {where}_"
            )
            break
        text = code_block(step, left - 1, where)
        shown_steps.append(text)
        left -= slack_len(text) + 1
    entry = _assemble(fixed_text, command, rollback_title, shown_steps)
    if slack_len(entry) > SECTION_TEXT_MAX:  # pragma: no cover - the budgets above make this unreachable
        raise AssertionError(f"command {view.id} rendered longer than a section")
    return entry


def _assemble(fixed: str, command: str, rollback_title: str, steps: list[str]) -> str:
    return "\n".join([fixed, command, rollback_title, *steps])


def _not_shown_text(card: PlanCard, hidden: list[CommandView]) -> str:
    total = len(card.commands)
    first, last = hidden[0].id, hidden[-1].id
    span = code_span(first, 64) if len(hidden) == 1 else f"{code_span(first, 64)} to {code_span(last, 64)}"
    where = ["open *Edit* to read the whole plan"] if card.awaiting_approval else []
    history = "`cloudops history --json`"
    if card.conversation_id:
        history = f"`cloudops history --conversation {escape(card.conversation_id)} --json`"
    where.append(f"run {history}")
    return (
        f":warning: *{len(hidden)} of {total} commands are not shown here* ({span}): "
        f"a Slack message holds at most {MESSAGE_MAX_BLOCKS} blocks. "
        f"To see every command, {' or '.join(where)}."
    )


# -- buttons ------------------------------------------------------------------------------------------------


def _actions(card: PlanCard) -> ActionsBlock:
    value = card.action_ref.value
    version = f"version {card.plan_version}"
    return ActionsBlock(
        block_id=ACTIONS_BLOCK_ID,
        elements=[
            ButtonElement(
                text=PlainTextObject(text="Approve", emoji=False),
                action_id=APPROVE,
                value=value,
                style="primary",
                confirm=_destructive_confirm(card) if card.risk is Risk.DESTRUCTIVE else None,
                accessibility_label=f"Approve plan {version}",
            ),
            ButtonElement(
                text=PlainTextObject(text="Reject", emoji=False),
                action_id=REJECT,
                value=value,
                style="danger",
                accessibility_label=f"Reject plan {version}",
            ),
            ButtonElement(
                text=PlainTextObject(text="Edit", emoji=False),
                action_id=EDIT,
                value=value,
                accessibility_label=f"Edit plan {version}",
            ),
            ButtonElement(
                text=PlainTextObject(text="Dry run", emoji=False),
                action_id=DRY_RUN,
                value=value,
                accessibility_label=f"Dry run plan {version}",
            ),
        ],
    )


def destructive_confirm_text(card: PlanCard) -> str:
    """What the Approve confirmation names: the destructive commands, as many as fit in 300 characters."""
    destructive = [view for view in card.commands if view.risk is Risk.DESTRUCTIVE]
    if not destructive:
        return trim_plain(
            "The plan is marked destructive. Approving lets all of its commands run: "
            + "; ".join(view.display for view in card.commands),
            CONFIRM_TEXT_MAX,
        )
    count = len(destructive)
    text = f"Approving lets {count} destructive command{'s' if count != 1 else ''} run:"
    for index, view in enumerate(destructive):
        rest = count - index
        tail = f"\n… and {rest - 1} more" if rest > 1 else ""
        line = f"\n• {view.id}: {view.display}"
        room = CONFIRM_TEXT_MAX - slack_len(text) - slack_len(tail)
        if index > 0 and room < 40:
            return text + f"\n… and {rest} more"
        text += trim_plain(line, room)
    return text


def _destructive_confirm(card: PlanCard) -> ConfirmObject:
    # Plain text: the confirm dialog shows command text as is, so nothing in it can be read as markup.
    return ConfirmObject(
        title=PlainTextObject(text="Approve a destructive plan?", emoji=False),
        text=PlainTextObject(text=destructive_confirm_text(card), emoji=False),
        confirm=PlainTextObject(text="Approve", emoji=False),
        deny=PlainTextObject(text="Cancel", emoji=False),
        style="danger",
    )


# -- fallback text ------------------------------------------------------------------------------------------


def _fallback_text(card: PlanCard) -> str:
    summary = escape(trim_plain(card.plan.summary, 300))
    if card.awaiting_approval:
        return (
            f"{risk_badge(card.risk)} plan awaiting approval "
            f"({len(card.approvals)} of {card.approvals_required}): {summary}"
        )
    return f"Plan {RECORD_STATUS_BADGE[card.status].split(' ', 1)[1]}: {summary}"
