"""The buttons of a run's progress message: Cancel while it runs; Retry failed commands / Roll back after a failure.

Every value is the ``ActionRef`` of the record that ran (``<record id>:<plan version>:<hash12>``), so a click
names exactly one run of one plan version. Nothing here runs anything: Cancel stops a run already approved,
and the two failure buttons only propose new plans, which need their own approval.
"""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
)

from bot.slack.blocks.actions import ActionRef

RUN_CANCEL = "run_cancel"
RUN_RETRY_FAILED = "run_retry_failed"
RUN_ROLLBACK = "run_rollback"
RUN_ACTION_IDS = (RUN_CANCEL, RUN_RETRY_FAILED, RUN_ROLLBACK)

RUN_CONTROLS_BLOCK_ID = "run_controls"
RUN_FOLLOW_UP_BLOCK_ID = "run_follow_up"


def cancel_controls(ref: ActionRef, *, cancelled_by: str | None = None) -> list[Block]:
    """The Cancel button while the run goes on; once someone cancelled, a note saying who instead."""
    if cancelled_by is not None:
        return [
            ContextBlock(
                block_id=RUN_CONTROLS_BLOCK_ID,
                elements=[MarkdownTextObject(text=f":octagonal_sign: Cancel requested by <@{cancelled_by}>…")],
            )
        ]
    return [
        ActionsBlock(
            block_id=RUN_CONTROLS_BLOCK_ID,
            elements=[
                ButtonElement(
                    text="Cancel",
                    action_id=RUN_CANCEL,
                    value=ref.value,
                    style="danger",
                    confirm=ConfirmObject(
                        title="Cancel this run?",
                        text="Commands running now are stopped and the rest are skipped.",
                        confirm="Cancel the run",
                        deny="Keep running",
                    ),
                )
            ],
        )
    ]


def follow_up_controls(ref: ActionRef, *, retry: bool, rollback: bool) -> list[Block]:
    """After a failed run: propose a retry of what did not succeed, and/or the undoing of what did."""
    buttons: list[ButtonElement] = []
    if retry:
        buttons.append(ButtonElement(text="Retry failed commands", action_id=RUN_RETRY_FAILED, value=ref.value))
    if rollback:
        buttons.append(ButtonElement(text="Roll back", action_id=RUN_ROLLBACK, value=ref.value, style="danger"))
    if not buttons:
        return []
    return [
        ActionsBlock(block_id=RUN_FOLLOW_UP_BLOCK_ID, elements=buttons),
        ContextBlock(
            elements=[
                MarkdownTextObject(text="Either button proposes a new plan in this thread; it runs once approved.")
            ]
        ),
    ]
