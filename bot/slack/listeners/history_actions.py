"""Buttons on the ``/cloudops history`` answer: Next / Previous replace the ephemeral list with another page;
Details opens a modal with one whole record.

Each click is checked again for the person who made it: the page is recomputed from the query the button
carries, and Details shows a record only if that person may see it now, whatever the button says.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError

from bot.slack.blocks.history import (
    HISTORY_DETAILS,
    HISTORY_PAGE_ACTION_IDS,
    record_details_modal,
)
from bot.slack.blocks.message import RenderedMessage
from bot.slack.blocks.notices import ephemeral
from bot.slack.context import bot_context
from bot.slack.history_query import (
    NAMELESS_CHANNEL_NAMES,
    PageRefError,
    QueryError,
    audience_for,
    history_answer,
    parse_history_query,
    parse_page_value,
    query_text_of,
)
from engine.errors import StoreError
from engine.history.records import ExecutionRecord
from engine.history.store import HistoryStore

logger = logging.getLogger(__name__)

NOT_AVAILABLE = ":lock: That record is not available to you."


def register(app: AsyncApp) -> None:
    for action_id in HISTORY_PAGE_ACTION_IDS:
        app.action(action_id)(on_page)
    app.action(HISTORY_DETAILS)(on_details)


async def on_page(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext) -> None:
    await ack()
    user, (here, here_name) = body["user"]["id"], _channel(body)
    try:
        ref = parse_page_value(body["actions"][0].get("value"))
        text = query_text_of(ref, user=user)
        query = parse_history_query(text, requester=user, here=here, as_of=ref.as_of)
    except (PageRefError, QueryError) as exc:
        await _tell(respond, ephemeral(f":warning: That page cannot be shown: {str(exc).rstrip('.')}."))
        return
    message = await history_answer(
        bot_context(context), context.client, query, text=text, page=ref.p, user=user, here=here, here_name=here_name
    )
    await respond(text=message.text, blocks=message.block_dicts(), replace_original=True)


async def on_details(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext) -> None:
    await ack()
    bot = bot_context(context)
    user, (here, here_name) = body["user"]["id"], _channel(body)
    try:
        # Both are needed before the trigger id (good for three seconds) is spent, so both at once.
        record, audience = await asyncio.gather(
            _record(bot.store, body["actions"][0].get("value")),
            audience_for(context.client, bot, user=user, here=here, here_name=here_name),
        )
    except StoreError:
        logger.exception("a history record could not be read for Details")
        await _tell(respond, ephemeral(":warning: The execution history could not be read; try again."))
        return
    if record is None or not audience.may_see(record):
        await _tell(respond, ephemeral(NOT_AVAILABLE))
        return
    try:
        await context.client.views_open(trigger_id=body["trigger_id"], view=record_details_modal(record))
    except SlackApiError as exc:
        logger.warning("Details of %s not opened: %s", record.id, exc.response.get("error"))
        await _tell(respond, ephemeral(":hourglass: The details could not be opened in time; click again."))


async def _record(store: HistoryStore, value: object) -> ExecutionRecord | None:
    if not isinstance(value, str):
        return None
    try:
        return await store.get(value)
    except ValueError:  # not a record id
        return None


def _channel(body: dict[str, Any]) -> tuple[str, str | None]:
    channel = body.get("channel") or {}
    channel_id = channel.get("id") or (body.get("container") or {}).get("channel_id")
    name = channel.get("name")
    return str(channel_id), None if name in NAMELESS_CHANNEL_NAMES else name


async def _tell(respond: AsyncRespond, message: RenderedMessage) -> None:
    """A new ephemeral beside the list, which stays as it was."""
    await respond(text=message.text, blocks=message.block_dicts(), response_type="ephemeral", replace_original=False)
