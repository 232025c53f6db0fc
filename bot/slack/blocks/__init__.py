"""Every Block Kit payload CloudOps sends about plans and approvals.

* ``card``: ``PlanCard``, the view model a plan message is drawn from (``PlanCard.from_record``).
* ``plan_message``: the plan card as a message, with buttons while it awaits approval.
* ``modals``: the Edit and Reject modals.
* ``notices``: ephemeral explanations and the reply listing why a plan cannot run.
* ``actions``: action ids, callback ids, and the value binding a click to one plan version.
* ``mrkdwn``: escaping and sizing of text for Slack; ``limits``: the Block Kit limits planned around.
"""

from __future__ import annotations

from bot.slack.blocks.actions import (
    ACTIONS_BLOCK_ID,
    APPROVE,
    DRY_RUN,
    EDIT,
    EDIT_CALLBACK_ID,
    EDIT_NOTE_ACTION_ID,
    EDIT_NOTE_BLOCK_ID,
    EDIT_PLAN_ACTION_ID,
    EDIT_PLAN_BLOCK_ID,
    PLAN_ACTION_IDS,
    REJECT,
    REJECT_CALLBACK_ID,
    REJECT_REASON_ACTION_ID,
    REJECT_REASON_BLOCK_ID,
    ActionRef,
    ActionValueError,
    parse_action_value,
)
from bot.slack.blocks.card import (
    Approval,
    CardError,
    CommandProblem,
    CommandView,
    DryRunSummary,
    Outcome,
    PlanCard,
    PlanEdit,
    Rejection,
    Target,
)
from bot.slack.blocks.message import RenderedMessage
from bot.slack.blocks.modals import edit_modal, reject_modal
from bot.slack.blocks.mrkdwn import code_span, escape, risk_badge
from bot.slack.blocks.notices import ephemeral, plan_error_message, stale_click_notice
from bot.slack.blocks.plan_message import destructive_confirm_text, plan_message

__all__ = [
    "ACTIONS_BLOCK_ID",
    "APPROVE",
    "DRY_RUN",
    "EDIT",
    "EDIT_CALLBACK_ID",
    "EDIT_NOTE_ACTION_ID",
    "EDIT_NOTE_BLOCK_ID",
    "EDIT_PLAN_ACTION_ID",
    "EDIT_PLAN_BLOCK_ID",
    "PLAN_ACTION_IDS",
    "REJECT",
    "REJECT_CALLBACK_ID",
    "REJECT_REASON_ACTION_ID",
    "REJECT_REASON_BLOCK_ID",
    "ActionRef",
    "ActionValueError",
    "Approval",
    "CardError",
    "CommandProblem",
    "CommandView",
    "DryRunSummary",
    "Outcome",
    "PlanCard",
    "PlanEdit",
    "Rejection",
    "RenderedMessage",
    "Target",
    "code_span",
    "destructive_confirm_text",
    "edit_modal",
    "ephemeral",
    "escape",
    "parse_action_value",
    "plan_error_message",
    "plan_message",
    "reject_modal",
    "risk_badge",
    "stale_click_notice",
]
