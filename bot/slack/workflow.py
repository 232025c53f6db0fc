"""The Slack side of a plan's life: gather the thread, plan, validate, propose, post; votes, edits, runs.

Listeners parse a payload, ``ack()``, and call one function here. Everything that decides anything (who may
approve, what counts, what runs) is the engine's; this module only turns Slack payloads into engine calls
and engine records into Slack messages.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any
from uuid import UUID

import yaml

from bot.plan_text import extract_plan_text
from bot.planner import ConversationMessage, PlannerError, PlanningContext
from bot.slack import runs
from bot.slack.blocks import (
    APPROVE,
    DRY_RUN,
    EDIT,
    EDIT_NOTE_ACTION_ID,
    EDIT_NOTE_BLOCK_ID,
    EDIT_PLAN_ACTION_ID,
    EDIT_PLAN_BLOCK_ID,
    REJECT,
    REJECT_REASON_ACTION_ID,
    REJECT_REASON_BLOCK_ID,
    ActionRef,
    ActionValueError,
    PlanCard,
    PlanEdit,
    RenderedMessage,
    edit_modal,
    ephemeral,
    parse_action_value,
    plan_error_message,
    plan_message,
    reject_modal,
    stale_click_notice,
)
from bot.slack.blocks.mrkdwn import defuse_fences, escape
from bot.slack.context import BotContext
from engine.approval import ApprovalError, plan_binds
from engine.errors import CloudOpsError, PlanError, PlanValidationError, StoreError
from engine.execution import ExecutionRefused
from engine.history.records import ExecutionRecord, RecordStatus, parse_conversation_id, slack_conversation_id
from engine.off_loop import off_loop
from engine.policy import ChannelPolicy
from engine.results import PlanResult
from engine.runtime import execution_context
from engine.validate import validate_text

logger = logging.getLogger("cloudops.slack")

# Deterministic record ids: one triggering message makes at most one plan, whatever the retries or processes.
RECORD_NAMESPACE = uuid.UUID("6f1c2f0e-54b7-4c1e-9a55-0c8d3b1f7a10")
_PERMALINK_TS = re.compile(r"/archives/(?P<channel>[A-Z0-9]+)/p(?P<secs>\d{10})(?P<frac>\d{6})")
_RESULT_TEXT_MAX = 3_500
_OUTPUT_PER_COMMAND = 600


def record_id_for(conversation_id: str, message_ts: str) -> UUID:
    return uuid.uuid5(RECORD_NAMESPACE, f"{conversation_id}|{message_ts}")


# ---------------------------------------------------------------------------------------------------------
# Rendering


def card_for(bot: BotContext, record: ExecutionRecord, *, dry_run: PlanResult | None = None) -> PlanCard:
    edit = None
    if record.edits and record.edits[-1].to_version == record.plan_version:
        last = record.edits[-1]
        edit = PlanEdit(
            edited_by=last.by,
            version=last.to_version,
            changed=list(last.changed),
            added=list(last.added),
            removed=list(last.removed),
            settings=list(last.settings),
            note=last.note,
        )
    return PlanCard.from_record(
        record,
        approvals_required=bot.approvals.required_for(record),
        expires_at=bot.approvals.expires_at(record),
        environment=record.environment,
        edit=edit,
        dry_run=dry_run if dry_run is not None and dry_run.dry_run else None,
    )


def plan_message_location(record: ExecutionRecord) -> tuple[str, str] | None:
    """(channel, ts) of the plan message, from the permalink kept in the record."""
    if not record.link:
        return None
    match = _PERMALINK_TS.search(record.link)
    if match is None:
        return None
    return match["channel"], f"{match['secs']}.{match['frac']}"


def thread_of(record: ExecutionRecord) -> tuple[str, str] | None:
    try:
        ref = parse_conversation_id(record.conversation_id)
    except CloudOpsError:
        return None
    if ref.kind != "slack" or ref.channel is None or ref.thread_ts is None:
        return None
    return ref.channel, ref.thread_ts


async def update_plan_message(
    bot: BotContext,
    client: Any,
    record: ExecutionRecord,
    *,
    location: tuple[str, str] | None = None,
    dry_run: PlanResult | None = None,
) -> None:
    where = location or plan_message_location(record)
    if where is None:
        return
    # Updates from concurrent clicks can arrive out of order; always draw the newest state of the record.
    latest = await bot.store.get(record.id)
    if latest is not None and latest.version > record.version:
        if dry_run is not None and latest.plan_version != record.plan_version:
            dry_run = None
        record = latest
    message = plan_message(card_for(bot, record, dry_run=dry_run))
    await client.chat_update(channel=where[0], ts=where[1], text=message.text, blocks=message.block_dicts())


async def _reply(client: Any, channel: str, thread_ts: str, message: RenderedMessage | str) -> Any:
    if isinstance(message, str):
        return await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=message)
    return await client.chat_postMessage(
        channel=channel, thread_ts=thread_ts, text=message.text, blocks=message.block_dicts()
    )


async def _tell(client: Any, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> None:
    message = ephemeral(text)
    options: dict[str, Any] = {"channel": channel, "user": user, "text": message.text, "blocks": message.block_dicts()}
    if thread_ts:
        options["thread_ts"] = thread_ts
    await client.chat_postEphemeral(**options)


_STATUS_EMOJI = {
    RecordStatus.SUCCEEDED: ":white_check_mark:",
    RecordStatus.FAILED: ":x:",
    RecordStatus.ROLLED_BACK: ":leftwards_arrow_with_hook:",
    RecordStatus.CANCELLED: ":no_entry_sign:",
    RecordStatus.INTERRUPTED: ":warning:",
}


def result_text(record: ExecutionRecord) -> str:
    status = record.status.value.replace("_", " ")
    took = f" in {record.duration_seconds:.1f}s" if record.duration_seconds is not None else ""
    lines = [
        f"{_STATUS_EMOJI.get(record.status, ':information_source:')} *Run {status}*{took}: "
        f"{escape(record.summary)} (version {record.plan_version})"
    ]
    for command in record.commands:
        line = f"• `{command.id}` {command.status.value.replace('_', ' ')}"
        if command.error_code or command.error_message:
            line += f": {escape(' '.join(filter(None, [command.error_code, command.error_message])))[:300]}"
        elif command.skipped_reason:
            line += f": {escape(command.skipped_reason)[:300]}"
        lines.append(line)
        output = command.output.strip()
        if output:
            shown = defuse_fences(output[:_OUTPUT_PER_COMMAND])
            lines.append(f"```{shown}{'…' if len(output) > _OUTPUT_PER_COMMAND else ''}```")
    text = "\n".join(lines)
    return text if len(text) <= _RESULT_TEXT_MAX else text[: _RESULT_TEXT_MAX - 1] + "…"


def dry_run_text(result: PlanResult, record: ExecutionRecord) -> str:
    lines = [f":test_tube: *Dry run* of version {record.plan_version}: {result.state.value.replace('_', ' ')}"]
    for outcome in result.commands:
        line = f"• `{outcome.id}` {outcome.state.value.replace('_', ' ')}"
        if outcome.skipped_reason:
            line += f": {escape(outcome.skipped_reason)[:300]}"
        elif outcome.result is not None and (outcome.result.error_code or outcome.result.error_message):
            detail = " ".join(filter(None, [outcome.result.error_code, outcome.result.error_message]))
            line += f": {escape(detail)[:300]}"
        lines.append(line)
    text = "\n".join(lines)
    return text if len(text) <= _RESULT_TEXT_MAX else text[: _RESULT_TEXT_MAX - 1] + "…"


# ---------------------------------------------------------------------------------------------------------
# A request: mention or direct message


def _strip_mention(text: str, bot_user_id: str | None) -> str:
    if bot_user_id:
        text = text.replace(f"<@{bot_user_id}>", " ")
    return text.strip()


async def gather_thread(
    client: Any, channel: str, thread_ts: str, bot_user_id: str | None
) -> list[ConversationMessage]:
    answer = await client.conversations_replies(channel=channel, ts=thread_ts, limit=200)
    conversation: list[ConversationMessage] = []
    for message in answer.get("messages") or []:
        text = message.get("text") or ""
        if not text.strip():
            continue
        mine = bool(message.get("bot_id")) or (bot_user_id is not None and message.get("user") == bot_user_id)
        conversation.append(
            ConversationMessage(
                role="assistant" if mine else "user",
                author=message.get("user"),
                text=_strip_mention(text, bot_user_id) or text,
            )
        )
    return conversation


async def handle_request(
    bot: BotContext, client: Any, event: dict[str, Any], *, team_id: str, bot_user_id: str | None
) -> None:
    """A mention (or a direct message): plan, validate, propose and post the plan card in the thread."""
    channel = event["channel"]
    user = event.get("user")
    message_ts = event["ts"]
    thread_ts = event.get("thread_ts") or message_ts
    if not user:
        return
    bot_user_id = bot_user_id or bot.bot_user_id
    channel_policy: ChannelPolicy | None = bot.policy.channels.get(channel)
    if bot.policy.channels and channel_policy is None:
        await _reply(
            client,
            channel,
            thread_ts,
            ":wave: Sorry, I don't take requests in this conversation. Ask me in one of the channels the "
            "CloudOps policy lists.",
        )
        return
    channel_policy = channel_policy or ChannelPolicy()
    conversation_id = slack_conversation_id(team_id, channel, thread_ts)
    record_id = record_id_for(conversation_id, message_ts)
    if await bot.store.get(record_id) is not None:
        return  # a retry of an event already handled (or being handled)

    prompt = _strip_mention(event.get("text") or "", bot_user_id)
    # Reading and validating a plan is CPU work on text anyone in the channel can send: never on the event loop.
    plan_text = await off_loop(extract_plan_text, prompt)
    if plan_text is None and bot.planner is not None:
        conversation = await gather_thread(client, channel, thread_ts, bot_user_id)
        context = PlanningContext.from_policy(bot.policy, channel_policy, requester=user)
        try:
            answer = await bot.planner.plan(conversation, context)
        except PlannerError as exc:
            await _reply(client, channel, thread_ts, f":warning: I could not make a plan: {escape(str(exc))}")
            return
        if answer.plan_text is None:
            await _reply(client, channel, thread_ts, escape(answer.reply or "I have no plan for that."))
            return
        plan_text = answer.plan_text
    elif plan_text is None:
        await _reply(
            client,
            channel,
            thread_ts,
            "I found no plan in that message. Send `aws ...` command lines or a plan in a code block "
            "(no LLM planner is configured).",
        )
        return

    try:
        validated = await off_loop(validate_text, plan_text, bot.policy)
    except PlanValidationError as exc:
        await _reply(client, channel, thread_ts, plan_error_message(exc.problems))
        return
    except PlanError as exc:
        await _reply(client, channel, thread_ts, plan_error_message([str(exc)]))
        return

    try:
        record = await bot.approvals.propose(
            validated,
            conversation_id=conversation_id,
            requested_by=user,
            user_prompt=prompt,
            channel=channel,
            profile=channel_policy.aws_profile,
            region=channel_policy.region,
            environment=channel_policy.environment,
            record_id=record_id,
        )
    except StoreError:
        if await bot.store.get(record_id) is not None:
            return  # another delivery of the same event got there first
        raise
    except ApprovalError as exc:
        await _reply(client, channel, thread_ts, plan_error_message([str(exc)]))
        return

    await post_plan(bot, client, record, channel, thread_ts, started_by=user)


async def post_plan(
    bot: BotContext, client: Any, record: ExecutionRecord, channel: str, thread_ts: str, *, started_by: str
) -> ExecutionRecord:
    """Post a proposed record's plan message in the thread and keep its permalink in the record; a plan that
    needs no approvals (read-only under auto_run_read_only) runs at once."""
    message = plan_message(card_for(bot, record))
    posted = await _reply(client, channel, thread_ts, message)
    link: str | None = None
    try:
        link = (await client.chat_getPermalink(channel=channel, message_ts=posted["ts"])).get("permalink")
    except Exception:
        logger.warning("no permalink for plan message %s", posted.get("ts"))
    if link:
        saved = await bot.store.transition(
            record.id,
            expected_status={RecordStatus.PENDING_APPROVAL, RecordStatus.APPROVED},
            changes={"link": link},
        )
        record = saved.record
    if record.status is RecordStatus.APPROVED:
        # No approvals needed (read-only under auto_run_read_only): run at once.
        await start_run(bot, client, record, started_by=started_by, location=(channel, posted["ts"]))
    return record


# ---------------------------------------------------------------------------------------------------------
# Runs


async def start_run(
    bot: BotContext, client: Any, record: ExecutionRecord, *, started_by: str, location: tuple[str, str] | None = None
) -> None:
    """Run an approved record (the execution service claims it, so it runs once), live in the thread, and
    report the result there."""
    thread = thread_of(record)
    context = execution_context(bot.engine_settings, profile=record.aws_profile, region=record.aws_region)
    try:
        outcome = await runs.run_approved(bot, client, record, context=context, started_by=started_by)
    except ExecutionRefused as exc:
        if thread is not None:
            await _reply(client, thread[0], thread[1], f":warning: Nothing ran: {escape(str(exc))}")
        return
    done = outcome.record
    if not outcome.started:
        # Another click or process started it, or the engine refused it (then the record says failed, and why).
        if done is not None and done.status is RecordStatus.FAILED and done.started_by == started_by:
            await update_plan_message(bot, client, done, location=location)
            if thread is not None:
                await _reply(client, thread[0], thread[1], f":warning: Nothing ran: {escape(outcome.reason or '')}")
        return
    if done is None:
        return
    await update_plan_message(bot, client, done, location=location)
    if thread is not None:
        await _reply(client, thread[0], thread[1], result_text(done))


# ---------------------------------------------------------------------------------------------------------
# Clicks


def _click(body: dict[str, Any]) -> tuple[str, str, str, dict[str, Any]]:
    action = body["actions"][0]
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    return body["user"]["id"], channel, container.get("message_ts"), action


async def _record_for_click(
    bot: BotContext, client: Any, user: str, channel: str, value: Any
) -> tuple[ActionRef, ExecutionRecord] | None:
    try:
        ref = parse_action_value(value)
    except ActionValueError:
        await _tell(client, channel, user, ":warning: That button does not name a plan; nothing was done.")
        return None
    record = await bot.store.get(ref.record_id)
    if record is None:
        await _tell(client, channel, user, ":warning: I have no record of that plan; nothing was done.")
        return None
    return ref, record


async def handle_vote(bot: BotContext, client: Any, body: dict[str, Any]) -> None:
    """An Approve click: count it (or refuse it, with the reason, to that user only); run on quorum."""
    user, channel, message_ts, action = _click(body)
    found = await _record_for_click(bot, client, user, channel, action.get("value"))
    if found is None:
        return
    ref, _ = found
    groups = await bot.user_groups(client, user)
    outcome = await bot.approvals.decide(
        ref.record_id,
        user=user,
        user_groups=groups,
        decision="approve",
        plan_version=ref.plan_version,
        plan_hash=ref.plan_hash,
    )
    record = outcome.record
    thread_ts = thread_of(record)[1] if thread_of(record) else None
    if not outcome.accepted:
        if not plan_binds(record, ref.plan_version, ref.plan_hash) and record.status is RecordStatus.PENDING_APPROVAL:
            notice = stale_click_notice(ref, record.plan_version)
            await client.chat_postEphemeral(
                channel=channel, user=user, text=notice.text, blocks=notice.block_dicts(), thread_ts=thread_ts
            )
        else:
            await _tell(client, channel, user, f":no_entry: Not counted: {escape(outcome.reason or 'refused')}.")
        if record.status is RecordStatus.EXPIRED:
            await update_plan_message(bot, client, record, location=(channel, message_ts) if message_ts else None)
        return
    if outcome.already_counted:
        await _tell(client, channel, user, f":information_source: {escape(outcome.reason or 'already counted')}.")
        return
    location = (channel, message_ts) if message_ts else None
    await update_plan_message(bot, client, record, location=location)
    if outcome.now_approved:
        await start_run(bot, client, record, started_by=user, location=location)


async def _current_record_for_click(bot: BotContext, client: Any, body: dict[str, Any]) -> ExecutionRecord | None:
    """The record a button click names, if the click is on its current version; the clicker is told why not."""
    user, channel, _, action = _click(body)
    found = await _record_for_click(bot, client, user, channel, action.get("value"))
    if found is None:
        return None
    ref, record = found
    if not _current(ref, record):
        await _stale(client, channel, user, ref, record)
        return None
    return record


async def open_reject(bot: BotContext, client: Any, body: dict[str, Any]) -> None:
    record = await _current_record_for_click(bot, client, body)
    if record is None:
        return
    await client.views_open(trigger_id=body["trigger_id"], view=reject_modal(card_for(bot, record)).to_dict())


async def open_edit(bot: BotContext, client: Any, body: dict[str, Any]) -> None:
    record = await _current_record_for_click(bot, client, body)
    if record is None:
        return
    plan_yaml = yaml.safe_dump(record.execution_plan, sort_keys=False, allow_unicode=True)
    await client.views_open(trigger_id=body["trigger_id"], view=edit_modal(card_for(bot, record), plan_yaml).to_dict())


async def handle_dry_run(bot: BotContext, client: Any, body: dict[str, Any]) -> None:
    user, channel, message_ts, _ = _click(body)
    record = await _current_record_for_click(bot, client, body)
    if record is None:
        return
    thread = thread_of(record)
    context = execution_context(bot.engine_settings, profile=record.aws_profile, region=record.aws_region, dry_run=True)
    try:
        result = await runs.run_dry(bot, client, record, context=context, requested_by=user)
    except ExecutionRefused as exc:
        await _tell(client, channel, user, f":warning: The dry run was refused: {escape(str(exc))}")
        return
    if thread is not None:
        await _reply(client, thread[0], thread[1], dry_run_text(result, record))
    current = await bot.store.get(record.id)
    if current is not None and current.plan_version == record.plan_version:
        await update_plan_message(
            bot, client, current, location=(channel, message_ts) if message_ts else None, dry_run=result
        )


def _current(ref: ActionRef, record: ExecutionRecord) -> bool:
    return plan_binds(record, ref.plan_version, ref.plan_hash)


async def _stale(client: Any, channel: str, user: str, ref: ActionRef, record: ExecutionRecord) -> None:
    notice = stale_click_notice(ref, record.plan_version)
    await client.chat_postEphemeral(channel=channel, user=user, text=notice.text, blocks=notice.block_dicts())


ACTION_HANDLERS = {APPROVE: handle_vote, REJECT: open_reject, EDIT: open_edit, DRY_RUN: handle_dry_run}


# ---------------------------------------------------------------------------------------------------------
# Modal submissions


def _input(view: dict[str, Any], block_id: str, action_id: str) -> str | None:
    value = ((view.get("state") or {}).get("values") or {}).get(block_id, {}).get(action_id, {}).get("value")
    return value if isinstance(value, str) and value.strip() else None


async def submit_reject(bot: BotContext, client: Any, body: dict[str, Any]) -> None:
    """After the Reject modal closed: record the rejection (or say why not) and update the plan message."""
    view = body["view"]
    user = body["user"]["id"]
    ref = parse_action_value(view.get("private_metadata"))
    reason = _input(view, REJECT_REASON_BLOCK_ID, REJECT_REASON_ACTION_ID)
    groups = await bot.user_groups(client, user)
    outcome = await bot.approvals.decide(
        ref.record_id,
        user=user,
        user_groups=groups,
        decision="reject",
        plan_version=ref.plan_version,
        plan_hash=ref.plan_hash,
        comment=reason,
    )
    record = outcome.record
    channel = record.channel or (thread_of(record) or (None, None))[0]
    if not outcome.accepted:
        if channel:
            if (
                not plan_binds(record, ref.plan_version, ref.plan_hash)
                and record.status is RecordStatus.PENDING_APPROVAL
            ):
                notice = stale_click_notice(ref, record.plan_version)
                await client.chat_postEphemeral(
                    channel=channel, user=user, text=notice.text, blocks=notice.block_dicts()
                )
            else:
                await _tell(client, channel, user, f":no_entry: Not rejected: {escape(outcome.reason or 'refused')}.")
        return
    await update_plan_message(bot, client, record)
    thread = thread_of(record)
    if thread is not None:
        why = f": {escape(reason)}" if reason else ""
        await _reply(client, thread[0], thread[1], f":no_entry_sign: <@{user}> rejected this plan{why}")


async def check_edit(
    bot: BotContext, client: Any, body: dict[str, Any]
) -> tuple[dict[str, str] | None, ExecutionRecord | None]:
    """Validate and save an edit; (errors for the modal, None) or (None, the new record). Nothing is saved on errors."""
    view = body["view"]
    user = body["user"]["id"]
    try:
        ref = parse_action_value(view.get("private_metadata"))
    except ActionValueError:
        return {EDIT_PLAN_BLOCK_ID: "This form does not name a plan; close it and click Edit again."}, None
    text = _input(view, EDIT_PLAN_BLOCK_ID, EDIT_PLAN_ACTION_ID)
    note = _input(view, EDIT_NOTE_BLOCK_ID, EDIT_NOTE_ACTION_ID)
    if text is None:
        return {EDIT_PLAN_BLOCK_ID: "The plan is empty."}, None
    try:
        validated = await off_loop(validate_text, text, bot.policy)
    except PlanValidationError as exc:
        return {EDIT_PLAN_BLOCK_ID: _modal_error("; ".join(exc.problems))}, None
    except PlanError as exc:
        return {EDIT_PLAN_BLOCK_ID: _modal_error(str(exc))}, None
    groups = await bot.user_groups(client, user)
    try:
        record = await bot.approvals.edit(
            ref.record_id,
            validated,
            editor=user,
            plan_version=ref.plan_version,
            plan_hash=ref.plan_hash,
            note=note,
            editor_groups=groups,
        )
    except ApprovalError as exc:
        return {EDIT_PLAN_BLOCK_ID: _modal_error(str(exc))}, None
    return None, record


def _modal_error(text: str) -> str:
    return text if len(text) <= 1_900 else text[:1_899] + "…"


async def after_edit(bot: BotContext, client: Any, record: ExecutionRecord, editor: str) -> None:
    await update_plan_message(bot, client, record)
    thread = thread_of(record)
    if thread is not None:
        last = record.edits[-1] if record.edits else None
        what = ""
        if last is not None:
            parts = [
                f"changed {', '.join(last.changed)}" if last.changed else "",
                f"added {', '.join(last.added)}" if last.added else "",
                f"removed {', '.join(last.removed)}" if last.removed else "",
            ]
            what = "; ".join(p for p in parts if p)
        await _reply(
            client,
            thread[0],
            thread[1],
            f":pencil2: <@{editor}> edited the plan: version {record.plan_version}"
            + (f" ({escape(what)})" if what else "")
            + ". Earlier approvals no longer count.",
        )
    if record.status is RecordStatus.APPROVED:
        await start_run(bot, client, record, started_by=editor)
