"""Events: a mention in a channel (or a direct message) asks for a plan. Bolt acknowledges events itself
before the listener's work; the work is in ``bot.slack.workflow``."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.slack import audit_thread, workflow
from bot.slack.context import bot_context


def register(app: AsyncApp) -> None:
    app.event("app_mention")(on_mention)
    app.event("message")(on_message)


async def on_mention(event: dict[str, Any], context: AsyncBoltContext) -> None:
    # `@CloudOps audit`: the thread's audit summary instead of a plan.
    if audit_thread.is_audit_request(event.get("text")):
        team_id = event.get("team") or context.team_id or ""
        await audit_thread.handle_audit_mention(bot_context(context), context.client, event, team_id=team_id)
        return
    await workflow.handle_request(
        bot_context(context),
        context.client,
        event,
        team_id=event.get("team") or context.team_id or "",
        bot_user_id=context.bot_user_id,
    )


async def on_message(event: dict[str, Any], context: AsyncBoltContext) -> None:
    # Only a person's direct message to the bot; channel messages arrive as app_mention when meant for us.
    if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
        return
    if context.bot_user_id and event.get("user") == context.bot_user_id:
        return
    await workflow.handle_request(
        bot_context(context),
        context.client,
        event,
        team_id=event.get("team") or context.team_id or "",
        bot_user_id=context.bot_user_id,
    )
