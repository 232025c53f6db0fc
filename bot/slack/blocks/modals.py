"""The Edit and Reject modals.

Both carry the card's ``ActionRef`` in private_metadata, so a submission binds to the plan version the
person was looking at when they opened the modal, not whatever the record holds by the time they submit.
"""

from __future__ import annotations

import json

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.slack.blocks.actions import (
    EDIT_CALLBACK_ID,
    EDIT_NOTE_ACTION_ID,
    EDIT_NOTE_BLOCK_ID,
    EDIT_PLAN_ACTION_ID,
    EDIT_PLAN_BLOCK_ID,
    REJECT_CALLBACK_ID,
    REJECT_REASON_ACTION_ID,
    REJECT_REASON_BLOCK_ID,
)
from bot.slack.blocks.card import PlanCard
from bot.slack.blocks.limits import (
    CONTEXT_TEXT_MAX,
    MODAL_MAX_BLOCKS,
    PLAIN_TEXT_INPUT_MAX,
    SECTION_TEXT_MAX,
    VIEW_MAX_BYTES,
)
from bot.slack.blocks.mrkdwn import code_span, escape, fit, person, risk_badge, slack_len, split_code

EDIT_NOTE_MAX = 300
REJECT_REASON_MAX = 1_000
# Room under Slack's 250 kB view limit for everything that is not the plan text itself.
_VIEW_BYTES_FOR_YAML = VIEW_MAX_BYTES - 20_000


def edit_modal(card: PlanCard, plan_yaml: str, error: str | None = None) -> View:
    """The Edit modal, with ``plan_yaml`` in a text box; ``error`` (after a failed save) is shown above it.

    Slack's text box holds at most 3,000 characters. A longer plan is shown read-only, with the steps to
    edit it outside Slack, and the modal has no Save button.
    """
    ref = card.action_ref
    blocks: list[Block] = [_context(_editing_text(card))]
    if error:
        blocks.append(_section(_error_text(error)))

    if slack_len(plan_yaml) <= PLAIN_TEXT_INPUT_MAX and plan_yaml.strip():
        blocks.append(
            InputBlock(
                block_id=EDIT_PLAN_BLOCK_ID,
                label=PlainTextObject(text="Plan (YAML)", emoji=False),
                element=PlainTextInputElement(
                    action_id=EDIT_PLAN_ACTION_ID,
                    multiline=True,
                    initial_value=plan_yaml,
                    min_length=1,
                    max_length=PLAIN_TEXT_INPUT_MAX,
                    focus_on_load=True,
                ),
                hint=PlainTextObject(
                    text="The plan format that cloudops validate reads. Saving checks it again.", emoji=False
                ),
            )
        )
        blocks.append(
            InputBlock(
                block_id=EDIT_NOTE_BLOCK_ID,
                label=PlainTextObject(text="What changed and why", emoji=False),
                element=PlainTextInputElement(action_id=EDIT_NOTE_ACTION_ID, max_length=EDIT_NOTE_MAX),
                optional=True,
            )
        )
        view = View(
            type="modal",
            callback_id=EDIT_CALLBACK_ID,
            title=PlainTextObject(text="Edit plan", emoji=False),
            submit=PlainTextObject(text="Save new version", emoji=False),
            close=PlainTextObject(text="Cancel", emoji=False),
            private_metadata=ref.value,
            blocks=blocks,
        )
        return validated_view(view)

    blocks.append(_section(_too_long_text(card, plan_yaml)))
    blocks.extend(_read_only_yaml(plan_yaml, room=MODAL_MAX_BLOCKS - len(blocks), card=card))
    view = View(
        type="modal",
        callback_id=EDIT_CALLBACK_ID,
        title=PlainTextObject(text="Edit plan", emoji=False),
        close=PlainTextObject(text="Close", emoji=False),
        private_metadata=ref.value,
        blocks=blocks,
    )
    return validated_view(view)


def reject_modal(card: PlanCard) -> View:
    """The Reject modal: which plan version is being rejected, and an optional reason."""
    summary = fit(card.plan.summary, 600, None)
    text = (
        f"Reject {risk_badge(card.risk)} plan *{summary}*\n"
        f"version {card.plan_version} · hash {code_span(card.short_hash)} · requested by {person(card.requested_by)}\n"
        "Nothing in it will run. The reason is posted in the thread."
    )
    view = View(
        type="modal",
        callback_id=REJECT_CALLBACK_ID,
        title=PlainTextObject(text="Reject plan", emoji=False),
        submit=PlainTextObject(text="Reject", emoji=False),
        close=PlainTextObject(text="Cancel", emoji=False),
        private_metadata=card.action_ref.value,
        blocks=[
            _section(text),
            InputBlock(
                block_id=REJECT_REASON_BLOCK_ID,
                label=PlainTextObject(text="Reason", emoji=False),
                element=PlainTextInputElement(
                    action_id=REJECT_REASON_ACTION_ID, multiline=True, max_length=REJECT_REASON_MAX
                ),
                optional=True,
            ),
        ],
    )
    return validated_view(view)


def validated_view(view: View) -> View:
    """``view`` after the checks Slack makes on views.open / views.update; raises ``SlackObjectFormationError``."""
    view.validate_json()
    data = view.to_dict()
    size = len(json.dumps(data, separators=(",", ":")).encode())
    if size > VIEW_MAX_BYTES:
        raise SlackObjectFormationError(f"view is {size} bytes; Slack accepts at most {VIEW_MAX_BYTES}")
    return view


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text, verbatim=True))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text, verbatim=True)])


def _editing_text(card: PlanCard) -> str:
    version = card.plan_version
    text = (
        f"Editing version {version} (hash {code_span(card.short_hash)}) of *{fit(card.plan.summary, 300, None)}*. "
        f"Saving makes version {version + 1}: it is checked again and needs new approvals "
        f"(approvals of version {version} do not carry over)."
    )
    return text if slack_len(text) <= CONTEXT_TEXT_MAX else fit(text, CONTEXT_TEXT_MAX, None)


def _error_text(error: str) -> str:
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    text = ":warning: *The edited plan was not saved:*\n" + "\n".join(f"• {escape(line)}" for line in lines)
    if slack_len(text) <= SECTION_TEXT_MAX:
        return text
    return ":warning: *The edited plan was not saved:*\n" + fit(error, SECTION_TEXT_MAX - 60, None)


def _history_command(card: PlanCard) -> str:
    if card.conversation_id:
        return f"`cloudops history --conversation {escape(card.conversation_id)} --json`"
    return "`cloudops history --json`"


def _too_long_text(card: PlanCard, plan_yaml: str) -> str:
    return (
        f":information_source: This plan is {len(plan_yaml):,} characters of YAML; a Slack text box holds at "
        f"most {PLAIN_TEXT_INPUT_MAX:,}, so it cannot be edited here.\n"
        f"To change it: copy it from below (or get it exactly with {_history_command(card)}), edit it, check it "
        "with `cloudops validate plan.yaml`, and post the new plan in this thread as a fenced YAML code block. "
        "It is then proposed as a new plan and needs its own approvals."
    )


def _read_only_yaml(plan_yaml: str, *, room: int, card: PlanCard) -> list[Block]:
    chunks = split_code(plan_yaml, SECTION_TEXT_MAX)
    blocks: list[Block] = []
    used_bytes = 0
    # One block is kept for the note on what could not be shown.
    for index, chunk in enumerate(chunks):
        # Measured as JSON text, the way the view is sent: escapes and non-ASCII characters take more room.
        size = len(json.dumps(chunk))
        if len(blocks) >= room - 1 or used_bytes + size > _VIEW_BYTES_FOR_YAML:
            missing = len(chunks) - index
            blocks.append(
                _section(
                    f":warning: The last {missing} of {len(chunks)} parts of the plan do not fit in this window; "
                    f"get the whole plan with {_history_command(card)}."
                )
            )
            break
        blocks.append(_section(chunk))
        used_bytes += size
    return blocks
