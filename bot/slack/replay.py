"""Turning a past record into a new proposal: *Run again* (the same plan) and *Roll back* (the rollback
commands of what succeeded).

Either way the result is an ordinary proposal: a NEW record in the record's Slack thread, validated against
the policy as it is now, stored through ``ApprovalService.propose`` with the clicker as requester, and posted
with the plan card. Nothing runs on the click; the new record needs the approvals any plan of its risk needs
(a read-only plan runs at once only where ``auto_run_read_only`` says so, exactly as for a mention).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from bot.slack import workflow
from bot.slack.blocks import plan_error_message
from bot.slack.blocks.message import RenderedMessage
from bot.slack.context import BotContext
from engine.approval import ApprovalError
from engine.errors import PlanError, PlanValidationError, StoreError
from engine.history.records import CommandStatus, ExecutionRecord
from engine.off_loop import off_loop
from engine.plan import ExecutionMode, FailurePolicy, Plan, PlanCommand, plan_from_data
from engine.policy import ChannelPolicy
from engine.validate import validate_plan

logger = logging.getLogger("cloudops.slack")

ReplayKind = Literal["run_again", "roll_back"]
REPLAY_NAMESPACE = uuid.UUID("0b8f5c7e-2d4a-4f61-9c3e-6a1d7e5b9f24")
_SUMMARY_MAX = 2_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ReplayRefused(Exception):
    """Why no proposal was made; the message is mrkdwn for the person who clicked."""


# ---------------------------------------------------------------------------------------------------------
# Plans


def run_again_plan(record: ExecutionRecord) -> Plan:
    """The record's plan as stored (the version that was proposed last)."""
    return plan_from_data(record.execution_plan)


def rollback_plan(record: ExecutionRecord) -> Plan | None:
    """The rollback commands of the record's succeeded commands (not already rolled back), newest first.

    None when there is nothing to roll back: nothing succeeded, everything that did was already undone, or
    the commands that succeeded have no rollback.
    """
    try:
        plan = plan_from_data(record.execution_plan)
    except PlanError:
        return None
    specs = {command.id: command for command in plan.commands}
    already = set(record.rollback.rolled_back) if record.rollback else set()
    order = {command.id: index for index, command in enumerate(plan.commands)}
    done = [
        command
        for command in record.commands
        if command.status is CommandStatus.SUCCEEDED
        and command.id not in already
        and not any(step.status is CommandStatus.SUCCEEDED for step in command.rollback)
        and command.id in specs
        and specs[command.id].rollback
    ]
    if not done:
        return None
    # Reverse completion order; commands without a completion time go by their place in the plan.
    done.sort(key=lambda c: (c.completed_at or _EPOCH, order.get(c.id, 0)), reverse=True)
    commands: list[PlanCommand] = []
    for command in done:
        steps = specs[command.id].rollback
        for n, step in enumerate(steps, start=1):
            suffix = f"-{n}" if len(steps) > 1 else ""
            commands.append(
                PlanCommand(
                    id=_command_id(f"undo-{command.id}", suffix),
                    cli=step.cli,
                    sdk=step.sdk,
                    description=f"Undo {command.id}",
                )
            )
    summary = f"Roll back: {record.summary}"
    if len(summary) > _SUMMARY_MAX:
        summary = summary[: _SUMMARY_MAX - 1] + "…"
    return Plan(summary=summary, mode=ExecutionMode.SEQUENTIAL, on_failure=FailurePolicy.STOP, commands=commands)


def can_roll_back(record: ExecutionRecord) -> bool:
    return rollback_plan(record) is not None


def _command_id(base: str, suffix: str) -> str:
    return base[: 64 - len(suffix)] + suffix


def replay_record_id(record: ExecutionRecord, kind: ReplayKind, click_id: str) -> UUID:
    """One click makes at most one proposal, whatever Slack's retries."""
    return uuid.uuid5(REPLAY_NAMESPACE, f"{record.conversation_id}|{record.id}|{kind}|{click_id}")


# ---------------------------------------------------------------------------------------------------------
# Proposing


async def propose_replay(
    bot: BotContext, client: Any, record: ExecutionRecord, kind: ReplayKind, *, user: str, click_id: str
) -> ExecutionRecord | None:
    """Propose ``kind`` of ``record`` in its thread with ``user`` as requester and post the plan card.

    Raises ``ReplayRefused`` (nothing stored) when there is nothing to propose or the plan is not valid under
    the current policy; returns None when this click was already handled.
    """
    thread = workflow.thread_of(record)
    if thread is None:
        raise ReplayRefused("This record did not come from a Slack thread, so there is no thread to propose it in.")
    channel, thread_ts = thread
    channel_policy = bot.policy.channels.get(channel)
    if bot.policy.channels and channel_policy is None:
        raise ReplayRefused("The CloudOps policy no longer lists that channel, so no plan can be proposed there.")
    channel_policy = channel_policy or ChannelPolicy()

    if kind == "roll_back":
        plan = rollback_plan(record)
        if plan is None:
            raise ReplayRefused(
                "Nothing to roll back: no command of this plan succeeded with a rollback that has not already run."
            )
        prompt = f"Roll back of record {record.id}"
    else:
        try:
            plan = run_again_plan(record)
        except PlanError as exc:
            raise ReplayRefused(f"The stored plan cannot be read: {exc}") from None
        prompt = f"Run again of record {record.id}"

    try:
        validated = await off_loop(validate_plan, plan, bot.policy)
    except PlanValidationError as exc:
        raise _Invalid(exc.problems) from None
    except PlanError as exc:
        raise _Invalid([str(exc)]) from None

    record_id = replay_record_id(record, kind, click_id)
    if await bot.store.get(record_id) is not None:
        return None
    try:
        proposed = await bot.approvals.propose(
            validated,
            conversation_id=record.conversation_id,
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
            return None
        raise
    except ApprovalError as exc:
        raise _Invalid([str(exc)]) from None

    what = "roll back" if kind == "roll_back" else "run again"
    await client.chat_postMessage(
        channel=channel,
        thread_ts=thread_ts,
        text=f":repeat: <@{user}> asked to {what} “{record.summary[:200]}”; a new plan follows and needs approval "
        "like any other.",
    )
    return await workflow.post_plan(bot, client, proposed, channel, thread_ts, started_by=user)


class _Invalid(ReplayRefused):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))

    def message(self) -> RenderedMessage:
        return plan_error_message(self.problems)
