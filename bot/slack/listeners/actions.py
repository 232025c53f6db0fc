"""Plan card buttons: Approve, Reject, Edit, Dry run. Each acks at once, then, once the app has answered the
requests it holds, hands the click to the workflow."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.slack import workflow
from bot.slack.app import after_acks
from bot.slack.blocks import PLAN_ACTION_IDS
from bot.slack.context import bot_context


def register(app: AsyncApp) -> None:
    for action_id in PLAN_ACTION_IDS:
        app.action(action_id)(on_plan_action)


async def on_plan_action(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    await ack()
    # Answer this click (and any others in hand) before working on it: the work would otherwise delay them.
    await after_acks(context)
    handler = workflow.ACTION_HANDLERS[body["actions"][0]["action_id"]]
    await handler(bot_context(context), context.client, body)
