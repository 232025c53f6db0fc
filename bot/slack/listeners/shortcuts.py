"""The *Audit this thread* message shortcut: the audit summary of the thread the message belongs to.

Posted in that thread, like the plans it covers. When the bot cannot post there (it is not a member of the
channel, or the channel is gone), the person who asked gets the summary privately on the response URL.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError

from bot.slack.audit_thread import AUDIT_SHORTCUT, audit_message, post_audit
from bot.slack.context import bot_context
from engine.history.records import slack_conversation_id

logger = logging.getLogger(__name__)


def register(app: AsyncApp) -> None:
    app.shortcut(AUDIT_SHORTCUT)(on_audit_thread)


async def on_audit_thread(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    await ack()
    bot = bot_context(context)
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id")
    team_id = (body.get("team") or {}).get("id") or context.team_id or ""
    thread_ts = message.get("thread_ts") or message.get("ts") or body.get("message_ts")
    if not channel or not thread_ts:
        await respond(text=":warning: That message is not in a conversation I can audit.", response_type="ephemeral")
        return
    try:
        await post_audit(bot, context.client, team_id=team_id, channel=channel, thread_ts=thread_ts)
    except SlackApiError as exc:
        logger.info("audit not posted in %s (%s); answering privately", channel, exc.response.get("error"))
        summary = await audit_message(bot, slack_conversation_id(team_id, channel, thread_ts))
        await respond(
            text=summary.text, blocks=summary.block_dicts(), response_type="ephemeral", replace_original=False
        )
