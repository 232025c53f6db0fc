"""The progress message's buttons: Cancel a run in progress; Retry failed commands / Roll back after a failure.

Cancel stops a run of this process (``bot.slack.runs.REGISTRY``); the requester and the approvers of the
plan's risk may use it. Retry and Roll back run nothing: each proposes a new plan in the same thread, which
then needs approval like any other plan.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.slack import runs, workflow
from bot.slack.blocks import ActionValueError, ephemeral, parse_action_value
from bot.slack.blocks.mrkdwn import escape
from bot.slack.blocks.run_controls import RUN_CANCEL, RUN_RETRY_FAILED, RUN_ROLLBACK
from bot.slack.context import BotContext, bot_context
from engine.approval import ApprovalError
from engine.errors import PlanError, PlanValidationError, StoreError
from engine.history.records import ExecutionRecord, RecordStatus
from engine.off_loop import off_loop
from engine.plan import Plan
from engine.validate import validate_plan

logger = logging.getLogger("cloudops.slack.runs")

FOLLOW_UP_NAMESPACE = uuid.UUID("0b6f7c1e-3d6a-4a53-9f3e-2f0d8c6e51a4")


def register(app: AsyncApp) -> None:
    app.action(RUN_CANCEL)(on_cancel)
    app.action(RUN_RETRY_FAILED)(on_follow_up)
    app.action(RUN_ROLLBACK)(on_follow_up)


async def on_cancel(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    await ack()
    await handle_cancel(bot_context(context), context.client, body)


async def on_follow_up(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    await ack()
    await handle_follow_up(bot_context(context), context.client, body)


async def _tell(client: Any, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
    message = ephemeral(text)
    options: dict[str, Any] = {"channel": channel, "user": user, "text": message.text, "blocks": message.block_dicts()}
    if thread_ts:
        options["thread_ts"] = thread_ts
    await client.chat_postEphemeral(**options)


def _click(body: dict[str, Any]) -> tuple[str, str, str | None, str | None, Any]:
    action = body["actions"][0]
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    message = body.get("message") or {}
    thread_ts = container.get("thread_ts") or message.get("thread_ts")
    return body["user"]["id"], channel, container.get("message_ts"), thread_ts, action.get("value")


async def _may_control(bot: BotContext, client: Any, record: ExecutionRecord, user: str, *also: str) -> bool:
    if user == record.requested_by or user in also:
        return True
    groups = await bot.user_groups(client, user)
    return bot.approvals.may_approve_level(record.risk, user, groups)


# ---------------------------------------------------------------------------------------------------------
# Cancel


async def handle_cancel(bot: BotContext, client: Any, body: dict[str, Any]) -> None:
    user, channel, message_ts, thread_ts, value = _click(body)
    try:
        ref = parse_action_value(value)
    except ActionValueError:
        await _tell(client, channel, user, ":warning: That button does not name a run; nothing was cancelled.")
        return
    record = await bot.store.get(ref.record_id)
    if record is None:
        await _tell(client, channel, user, ":warning: I have no record of that plan; nothing was cancelled.", thread_ts)
        return
    run = runs.REGISTRY.find(ref.record_id, message_ts)
    extra = (run.started_by,) if run is not None and run.dry_run else ()
    if not await _may_control(bot, client, record, user, *extra):
        await _tell(
            client,
            channel,
            user,
            f":no_entry: Only the requester (<@{record.requested_by}>) or an approver for "
            f"{record.risk.label} plans can cancel this run; nothing was cancelled.",
            thread_ts,
        )
        return
    if run is None or run.ref != ref:
        if record.status is RecordStatus.RUNNING:
            why = (
                "it is not running in this process (another instance of the bot started it), so I cannot stop it "
                "from here"
            )
        else:
            why = f"it is not running any more (the plan is {record.status.value.replace('_', ' ')})"
        await _tell(client, channel, user, f":information_source: Nothing was cancelled: {why}.", thread_ts)
        return
    if run.cancellation.cancelled:
        await _tell(
            client,
            channel,
            user,
            f":information_source: <@{run.cancellation.by}> already cancelled this run; it is stopping.",
            thread_ts,
        )
        return
    run.cancellation.cancel(by=user)
    logger.info("record %s: run cancelled by %s", record.id, user)
    if isinstance(run.sink, runs.SlackStreamSink):
        run.sink.refresh_progress()


# ---------------------------------------------------------------------------------------------------------
# Retry failed commands / Roll back


async def handle_follow_up(bot: BotContext, client: Any, body: dict[str, Any]) -> None:
    user, channel, _, thread_ts, value = _click(body)
    action_id = body["actions"][0]["action_id"]
    kind = "retry" if action_id == RUN_RETRY_FAILED else "rollback"
    what = "a retry of the failed commands" if kind == "retry" else "a rollback"
    try:
        ref = parse_action_value(value)
    except ActionValueError:
        await _tell(client, channel, user, ":warning: That button does not name a run; nothing was proposed.")
        return
    record = await bot.store.get(ref.record_id)
    if record is None:
        await _tell(client, channel, user, ":warning: I have no record of that run; nothing was proposed.", thread_ts)
        return
    if record.plan_version != ref.plan_version or record.plan_hash[: len(ref.plan_hash)] != ref.plan_hash:
        await _tell(
            client, channel, user, ":warning: That button is for another version of the plan; nothing was proposed."
        )
        return
    if not record.status.finished or record.status is RecordStatus.SUCCEEDED or record.dry_run:
        await _tell(
            client,
            channel,
            user,
            f":information_source: Nothing was proposed: the run is {record.status.value.replace('_', ' ')}.",
            thread_ts,
        )
        return
    if not await _may_control(bot, client, record, user):
        await _tell(
            client,
            channel,
            user,
            f":no_entry: Only the requester (<@{record.requested_by}>) or an approver for {record.risk.label} "
            f"plans can propose {what}; nothing was proposed.",
            thread_ts,
        )
        return
    thread = runs.record_thread(record)
    if thread is None:
        await _tell(client, channel, user, ":warning: I cannot tell which thread that run belongs to.", thread_ts)
        return
    try:
        plan: Plan | None = runs.retry_plan(record) if kind == "retry" else runs.rollback_plan(record)
    except PlanError as exc:
        await _tell(client, channel, user, f":warning: Nothing was proposed: {escape(str(exc))}", thread_ts)
        return
    if plan is None:
        nothing = "every command succeeded or was undone" if kind == "retry" else "nothing it did can be undone"
        await _tell(client, channel, user, f":information_source: Nothing to propose: {nothing}.", thread_ts)
        return
    try:
        validated = await off_loop(validate_plan, plan, bot.policy)
    except PlanValidationError as exc:
        problems = "; ".join(exc.problems)
        await _tell(client, channel, user, f":warning: The policy refuses {what}: {escape(problems)}", thread_ts)
        return
    record_id = uuid.uuid5(FOLLOW_UP_NAMESPACE, f"{record.id}|{record.plan_version}|{kind}")
    try:
        proposed = await bot.approvals.propose(
            validated,
            conversation_id=record.conversation_id,
            requested_by=user,
            user_prompt=f"{kind} of record {record.id} (plan version {record.plan_version})",
            channel=record.channel or thread[0],
            profile=record.aws_profile,
            region=record.aws_region,
            environment=record.environment,
            record_id=record_id,
        )
    except StoreError:
        if await bot.store.get(record_id) is not None:
            await _tell(
                client,
                channel,
                user,
                f":information_source: {what.capitalize()} was already proposed above.",
                thread_ts,
            )
            return
        raise
    except ApprovalError as exc:
        await _tell(client, channel, user, f":warning: Nothing was proposed: {escape(str(exc))}", thread_ts)
        return
    await workflow.post_plan(bot, client, proposed, thread[0], thread[1], started_by=user)
