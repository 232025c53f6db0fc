"""*Run again* and *Roll back* on a record (audit summary, Details modal): a new proposal in the record's thread.

Anyone who may see the record (the history's visibility rules) may click; the new plan's requester is the
clicker, and it needs approval like any other plan. Nothing runs on the click.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.slack.blocks.audit import REPLAY_ROLL_BACK, REPLAY_RUN_AGAIN
from bot.slack.blocks.notices import ephemeral
from bot.slack.context import BotContext, bot_context
from bot.slack.history_query import NAMELESS_CHANNEL_NAMES, audience_for
from bot.slack.replay import ReplayKind, ReplayRefused, _Invalid, propose_replay
from bot.slack.workflow import thread_of
from engine.errors import StoreError
from engine.history.records import ExecutionRecord

logger = logging.getLogger(__name__)

NOT_AVAILABLE = ":lock: That record is not available to you."
_KINDS: dict[str, ReplayKind] = {REPLAY_RUN_AGAIN: "run_again", REPLAY_ROLL_BACK: "roll_back"}


def register(app: AsyncApp) -> None:
    for action_id in _KINDS:
        app.action(action_id)(on_replay)


async def on_replay(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    await ack()
    bot = bot_context(context)
    client = context.client
    action = body["actions"][0]
    kind = _KINDS[action["action_id"]]
    user = body["user"]["id"]
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    channel_name = (body.get("channel") or {}).get("name")
    record = await _record(bot, action.get("value"))
    # Where to answer privately: the channel clicked in, else (a modal) the record's own thread.
    answer_in = channel or (record.channel if record is not None else None)
    if record is None:
        await _tell(client, answer_in, user, NOT_AVAILABLE)
        return
    audience = await audience_for(
        client,
        bot,
        user=user,
        here=channel or "",
        here_name=None if channel_name in NAMELESS_CHANNEL_NAMES else channel_name,
    )
    if not audience.may_see(record):
        await _tell(client, answer_in, user, NOT_AVAILABLE)
        return
    click_id = str(action.get("action_ts") or body.get("trigger_id") or "")
    try:
        await propose_replay(bot, client, record, kind, user=user, click_id=click_id)
    except _Invalid as exc:
        message = exc.message()
        thread = thread_of(record)
        if answer_in:
            await client.chat_postEphemeral(
                channel=answer_in,
                user=user,
                text=message.text,
                blocks=message.block_dicts(),
                **({"thread_ts": thread[1]} if thread and thread[0] == answer_in else {}),
            )
    except ReplayRefused as exc:
        await _tell(client, answer_in, user, f":information_source: {exc}")
    except StoreError:
        logger.exception("a replay of %s could not be stored", record.id)
        await _tell(client, answer_in, user, ":warning: The history could not be written, so nothing was proposed.")


async def _record(bot: BotContext, value: object) -> ExecutionRecord | None:
    if not isinstance(value, str):
        return None
    try:
        return await bot.store.get(value)
    except (ValueError, StoreError):
        return None


async def _tell(client: Any, channel: str | None, user: str, text: str) -> None:
    if not channel:
        return
    message = ephemeral(text)
    await client.chat_postEphemeral(channel=channel, user=user, text=message.text, blocks=message.block_dicts())
