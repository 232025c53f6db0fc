"""The ``/cloudops`` slash command: ``history [words] [filters]`` and ``help``; anything else gets the help.

Slack waits three seconds for the acknowledgement. Help and a query that cannot be parsed need no I/O, so
they are the acknowledgement itself; a history search acknowledges first and answers on the response URL.
Every answer is ephemeral: the history can name what ran where, and only the person asking sees it.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.context.async_context import AsyncBoltContext

from bot.slack.blocks.history import history_help_message
from bot.slack.blocks.message import RenderedMessage
from bot.slack.blocks.mrkdwn import code_span
from bot.slack.context import bot_context
from bot.slack.history_query import NAMELESS_CHANNEL_NAMES, QueryError, as_of_now, history_answer, parse_history_query

COMMAND = "/cloudops"
SUBCOMMANDS = ("history", "help")


def register(app: AsyncApp) -> None:
    app.command(COMMAND)(on_cloudops)


async def on_cloudops(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext) -> None:
    words = (command.get("text") or "").strip().split(maxsplit=1)
    subcommand = words[0].lower() if words else "help"
    rest = words[1] if len(words) > 1 else ""
    if subcommand == "history":
        await _history(ack, command, respond, context, rest)
    elif subcommand == "help":
        await _ack_with(ack, history_help_message())
    else:
        problem = (
            f"{code_span(COMMAND + ' ' + words[0], 100)} is not a command. "
            f"Use {', '.join(code_span(COMMAND + ' ' + name) for name in SUBCOMMANDS)}."
        )
        await _ack_with(ack, history_help_message(problem=problem))


async def _history(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext, text: str
) -> None:
    user, here = command["user_id"], command["channel_id"]
    try:
        query = parse_history_query(text, requester=user, here=here, as_of=as_of_now())
    except QueryError as exc:
        await _ack_with(ack, history_help_message(problem=str(exc)))
        return
    await ack()
    message = await history_answer(
        bot_context(context),
        context.client,
        query,
        text=text,
        page=0,
        user=user,
        here=here,
        here_name=None if command.get("channel_name") in NAMELESS_CHANNEL_NAMES else command.get("channel_name"),
    )
    await respond(text=message.text, blocks=message.block_dicts(), response_type="ephemeral")


async def _ack_with(ack: AsyncAck, message: RenderedMessage) -> None:
    await ack(text=message.text, blocks=message.block_dicts(), response_type="ephemeral")
