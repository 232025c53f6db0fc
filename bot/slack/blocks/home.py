"""The App Home tab: the person's pending approvals (with a link to each plan message) and the latest
executions they may see. Within Slack's 100 blocks: each list is capped and says how many more there are."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.slack.blocks.history import thread_link
from bot.slack.blocks.limits import CONTEXT_TEXT_MAX, SECTION_TEXT_MAX
from bot.slack.blocks.modals import validated_view
from bot.slack.blocks.mrkdwn import RECORD_STATUS_BADGE, duration, fit, person, risk_badge, slack_date, trim_plain
from engine.history.records import ExecutionRecord

HOME_CALLBACK_ID = "cloudops_home"
PENDING_SHOWN = 30
LATEST_SHOWN = 30
PENDING_BLOCK_PREFIX = "home_pending_"
LATEST_BLOCK_PREFIX = "home_latest_"


def home_view(
    *,
    pending: Sequence[ExecutionRecord],
    latest: Sequence[ExecutionRecord],
    note: str | None = None,
) -> View:
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text="CloudOps", emoji=False))]
    if note:
        blocks.append(_context(f":information_source: {note}"))
    blocks.append(_section(f"*Waiting for your approval* ({len(pending)})"))
    if not pending:
        blocks.append(_context("Nothing is waiting for your approval."))
    for record in pending[:PENDING_SHOWN]:
        blocks.append(_section(_pending_text(record), block_id=f"{PENDING_BLOCK_PREFIX}{record.id}"))
    if len(pending) > PENDING_SHOWN:
        blocks.append(
            _context(f"{len(pending) - PENDING_SHOWN} more not shown; `/cloudops history status:pending` lists them.")
        )
    blocks.append(DividerBlock())
    blocks.append(_section("*Latest executions you can see*"))
    if not latest:
        blocks.append(_context("No executions yet."))
    for record in latest[:LATEST_SHOWN]:
        blocks.append(_section(_latest_text(record), block_id=f"{LATEST_BLOCK_PREFIX}{record.id}"))
    blocks.append(_context("`/cloudops history` searches everything you may see."))
    # At most 9 + PENDING_SHOWN + LATEST_SHOWN blocks: well within a Home tab's MODAL_MAX_BLOCKS (100).
    return validated_view(View(type="home", callback_id=HOME_CALLBACK_ID, blocks=blocks))


def _pending_text(record: ExecutionRecord) -> str:
    link = thread_link(record)
    title = f"<{link}|{fit(record.summary, 200, None)}>" if link else fit(record.summary, 200, None)
    where = f" in <#{record.channel}>" if record.channel else ""
    return trim_plain(
        f"{risk_badge(record.risk)} *{title}*\n"
        f"asked by {person(record.requested_by)}{where} {slack_date(record.timestamp)}"
        f" · version {record.plan_version} · {len(record.commands)} command{'s' if len(record.commands) != 1 else ''}",
        SECTION_TEXT_MAX,
    )


def _latest_text(record: ExecutionRecord) -> str:
    link = thread_link(record)
    title = f"<{link}|{fit(record.summary, 200, None)}>" if link else fit(record.summary, 200, None)
    took = f" in {duration(record.duration_seconds)}" if record.duration_seconds is not None else ""
    where = f"<#{record.channel}>" if record.channel else "command line"
    return trim_plain(
        f"{RECORD_STATUS_BADGE[record.status]}{took} · *{title}*\n"
        f"{risk_badge(record.risk)} · {person(record.requested_by)}"
        f" · {where} · {slack_date(record.timestamp)}",
        SECTION_TEXT_MAX,
    )


def _section(text: str, *, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text, verbatim=True), block_id=block_id)


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=trim_plain(text, CONTEXT_TEXT_MAX), verbatim=True)])
