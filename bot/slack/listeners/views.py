"""Modal submissions: the Edit modal (validated before it closes) and the Reject modal."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.slack import workflow
from bot.slack.blocks import EDIT_CALLBACK_ID, REJECT_CALLBACK_ID
from bot.slack.context import bot_context


def register(app: AsyncApp) -> None:
    app.view(EDIT_CALLBACK_ID)(on_edit_submitted)
    app.view(REJECT_CALLBACK_ID)(on_reject_submitted)


async def on_edit_submitted(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    bot = bot_context(context)
    # Validated and saved before the answer, so problems show in the modal and nothing is saved with them.
    errors, record = await workflow.check_edit(bot, context.client, body)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    await ack()
    if record is not None:
        await workflow.after_edit(bot, context.client, record, body["user"]["id"])


async def on_reject_submitted(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    await ack()
    await workflow.submit_reject(bot_context(context), context.client, body)
