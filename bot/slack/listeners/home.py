"""The App Home tab: on ``app_home_opened`` publish the person's pending approvals and the latest executions
they may see (the history's visibility rules, ``bot.slack.history_query``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.slack.blocks.home import LATEST_SHOWN, home_view
from bot.slack.context import BotContext, bot_context
from bot.slack.history_query import Audience, HistoryQuery, audience_for, find_page
from engine.approval import plan_binds
from engine.errors import StoreError
from engine.history.filters import RecordFilter
from engine.history.qdrant_store import MAX_LIMIT
from engine.history.records import Decision, ExecutionRecord, RecordStatus

logger = logging.getLogger(__name__)

EXECUTED = [
    RecordStatus.RUNNING,
    RecordStatus.SUCCEEDED,
    RecordStatus.FAILED,
    RecordStatus.ROLLED_BACK,
    RecordStatus.CANCELLED,
    RecordStatus.INTERRUPTED,
]


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(on_home_opened)


async def on_home_opened(event: dict[str, Any], context: AsyncBoltContext) -> None:
    if event.get("tab", "home") != "home":
        return
    user = event.get("user")
    if not user:
        return
    bot = bot_context(context)
    # No channel is "here" on the Home tab: only the channels Slack says the person is in count.
    audience = await audience_for(context.client, bot, user=user, here="", here_name=None)
    note = audience.note
    try:
        pending = await pending_approvals(bot, context.client, audience)
        latest = await latest_executions(bot, audience)
    except StoreError:
        logger.exception("the history could not be read for the Home tab of %s", user)
        pending, latest, note = [], [], "The execution history could not be read; open the tab again in a moment."
    if not audience.membership_known:
        note = (
            "Slack did not say which channels you are in, so nothing can be shown yet. Open the tab again in a moment."
        )
    await context.client.views_publish(user_id=user, view=home_view(pending=pending, latest=latest, note=note))


async def latest_executions(bot: BotContext, audience: Audience) -> list[ExecutionRecord]:
    query = HistoryQuery(status=EXECUTED, as_of=datetime.now(UTC))
    page = await find_page(bot.store, query, audience, 0)
    return page.records[:LATEST_SHOWN]


async def pending_approvals(bot: BotContext, client: Any, audience: Audience) -> list[ExecutionRecord]:
    """Plans awaiting approval that ``audience.user`` may see and approve, and has not approved yet."""
    user = audience.user
    groups = await bot.user_groups(client, user)
    now = datetime.now(UTC)
    waiting = await bot.store.latest(limit=MAX_LIMIT, filters=RecordFilter(status=[RecordStatus.PENDING_APPROVAL]))
    found: list[ExecutionRecord] = []
    for record in waiting:
        if not audience.may_see(record) or bot.approvals.expires_at(record) <= now:
            continue
        if bot.approvals.approval_refusal(record, user, groups) is not None:
            continue
        if any(
            a.user == user and a.decision is Decision.APPROVE and plan_binds(record, a.plan_version, a.plan_hash)
            for a in record.approvals
        ):
            continue
        found.append(record)
    return found
