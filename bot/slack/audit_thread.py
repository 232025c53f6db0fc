"""The audit summary of a Slack thread: asked for with a mention (``@CloudOps audit``) in the thread or with
the *Audit this thread* message shortcut on any message of it.

The summary covers every record of the conversation ``slack:<team>:<channel>:<thread_ts>`` and the audit
chain check for those records (``engine.history.conversation_audit``). It is posted in the thread, where the
plan cards already are: whoever can read the thread can read its audit. When the bot cannot post there (it
is not in the channel), the shortcut answers privately instead.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from bot.slack.blocks.audit import audit_summary_message, no_plans_message
from bot.slack.blocks.message import RenderedMessage
from bot.slack.context import BotContext
from bot.slack.replay import can_roll_back
from engine.history.conversation_audit import verify_conversation
from engine.history.records import slack_conversation_id

logger = logging.getLogger("cloudops.slack")

AUDIT_WORD = "audit"
AUDIT_SHORTCUT = "audit_thread"
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")


def is_audit_request(text: str | None) -> bool:
    """Whether a mention's text, without the mentions, is just ``audit``."""
    words = _MENTION.sub(" ", text or "").strip().rstrip(".!?").strip()
    return words.lower() == AUDIT_WORD


async def audit_message(bot: BotContext, conversation_id: str) -> RenderedMessage:
    records = await bot.store.by_conversation(conversation_id)
    if not records:
        return no_plans_message()
    audit = await verify_conversation(bot.store, conversation_id, records)
    possible = {str(record.id) for record in records if can_roll_back(record)}
    return audit_summary_message(conversation_id, records, audit, rollback_possible=possible)


async def post_audit(bot: BotContext, client: Any, *, team_id: str, channel: str, thread_ts: str) -> Any:
    """Post the thread's audit summary in the thread (raises what ``chat.postMessage`` raises)."""
    message = await audit_message(bot, slack_conversation_id(team_id, channel, thread_ts))
    return await client.chat_postMessage(
        channel=channel, thread_ts=thread_ts, text=message.text, blocks=message.block_dicts()
    )


async def handle_audit_mention(bot: BotContext, client: Any, event: dict[str, Any], *, team_id: str) -> None:
    channel = event["channel"]
    thread_ts = event.get("thread_ts") or event["ts"]
    await post_audit(bot, client, team_id=team_id, channel=channel, thread_ts=thread_ts)
