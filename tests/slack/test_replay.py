"""*Run again* and *Roll back* end to end: a click proposes a new plan in the thread that needs approval like
any other; once approved it runs against moto. Nothing runs on the click."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from slack_bolt.async_app import AsyncApp

from bot.settings import BotSettings
from bot.slack.app import create_app
from bot.slack.blocks import APPROVE, parse_action_value
from bot.slack.blocks.audit import REPLAY_ROLL_BACK, REPLAY_RUN_AGAIN
from bot.slack.blocks.history import record_details_modal
from bot.slack.context import BotContext
from bot.slack.listeners import actions, events, replay_actions, views
from bot.slack.replay import rollback_plan
from engine.history import HistoryStore, RecordStatus
from tests.slack.test_approval_flow import (  # noqa: F401  (fixtures)
    _has_action,
    _is_plan_card,
    bot,
    bucket_names,
    button_value,
    data_dir,
    engine_settings,
    ephemeral_texts,
    linked,
    planner,
    policy,
    record_status,
    store,
)
from tests.slack_emulator import Seed, SlackDriver, SlackEmulator
from tests.slack_emulator.state import Message

PLAN = """```
summary: make the replay bucket
commands:
  - id: bucket
    cli: aws s3api create-bucket --bucket replay-one
    rollback: aws s3api delete-bucket --bucket replay-one
  - id: tag
    cli: aws s3api put-bucket-versioning --bucket replay-one --versioning-configuration Status=Enabled
```"""


@pytest.fixture
def slack_app(bot_settings: BotSettings, bot: BotContext) -> AsyncApp:  # noqa: F811
    return create_app(bot_settings, listener_groups=[events, actions, views, replay_actions], context=bot)


def cards(slack: SlackEmulator, root: str) -> list[Message]:
    """Plan cards in the thread that still offer Approve (a card loses its buttons once decided)."""
    return [m for m in slack.thread(Seed.GENERAL, root)[1:] if m.bot_id and _has_action(m, APPROVE)]


async def new_card(slack: SlackEmulator, root: str, seen: set[str]) -> tuple[Message, Any]:
    card = await slack.wait_for(
        lambda: next((m for m in cards(slack, root) if m.ts not in seen), None), timeout=20, what="new plan card"
    )
    seen.add(card.ts)
    return card, parse_action_value(button_value(card, APPROVE))


async def audit_summary(driver: SlackDriver, slack: SlackEmulator, root: str) -> Message:
    before = len([m for m in slack.thread(Seed.GENERAL, root) if m.text.startswith("Audit of this thread")])
    await driver.app_mention(Seed.BOB, Seed.GENERAL, "audit", thread_ts=root)
    return await slack.wait_for(
        lambda: next(
            iter([m for m in slack.thread(Seed.GENERAL, root) if m.text.startswith("Audit of this thread")][before:]),
            None,
        ),
        timeout=20,
        what="audit summary",
    )


async def ran_plan(driver: SlackDriver, slack: SlackEmulator, store: HistoryStore) -> tuple[str, Any, set[str]]:  # noqa: F811
    delivery = await driver.app_mention(Seed.BOB, Seed.GENERAL, PLAN)
    root = delivery.message.ts
    seen: set[str] = set()
    card, ref = await new_card(slack, root, seen)
    await linked(store, ref.record_id, slack)
    await driver.block_action(Seed.ALICE, Seed.GENERAL, card.ts, APPROVE)
    done = await record_status(store, ref.record_id, RecordStatus.SUCCEEDED, RecordStatus.FAILED, slack=slack)
    assert done.status is RecordStatus.SUCCEEDED, done.commands
    assert "replay-one" in bucket_names()
    return root, ref, seen


async def test_roll_back_proposes_the_rollback_and_undoes_it_once_approved(
    slack: SlackEmulator,
    driver: SlackDriver,
    store: HistoryStore,  # noqa: F811
) -> None:
    root, original, seen = await ran_plan(driver, slack, store)
    summary = await audit_summary(driver, slack, root)
    await driver.block_action(Seed.BOB, Seed.GENERAL, summary.ts, REPLAY_ROLL_BACK)
    card, ref = await new_card(slack, root, seen)
    record = await linked(store, ref.record_id, slack)
    assert record.id != original.record_id and record.status is RecordStatus.PENDING_APPROVAL
    assert record.conversation_id == (await store.get(original.record_id)).conversation_id
    assert record.requested_by == Seed.BOB
    assert record.summary == "Roll back: make the replay bucket"
    assert [c.command for c in record.commands] == ["aws s3api delete-bucket --bucket replay-one"]
    assert "replay-one" in bucket_names()  # nothing ran on the click

    # Deleting a bucket is destructive: two approvals, as for any destructive plan.
    assert record.risk.value == "destructive"
    await driver.block_action(Seed.ALICE, Seed.GENERAL, card.ts, APPROVE)
    await slack.wait_for(lambda: len(slack.edit_history(Seed.GENERAL, card.ts)) > 1, what="card shows 1 of 2")
    assert (await store.get(ref.record_id)).status is RecordStatus.PENDING_APPROVAL
    assert "replay-one" in bucket_names()
    await driver.block_action(Seed.ADMIN, Seed.GENERAL, card.ts, APPROVE)
    done = await record_status(store, ref.record_id, RecordStatus.SUCCEEDED, RecordStatus.FAILED, slack=slack)
    assert done.status is RecordStatus.SUCCEEDED, done.commands
    assert "replay-one" not in bucket_names()


async def test_run_again_proposes_the_same_plan_as_a_new_pending_record(
    slack: SlackEmulator,
    driver: SlackDriver,
    store: HistoryStore,  # noqa: F811
) -> None:
    root, original, seen = await ran_plan(driver, slack, store)
    boto3.client("s3").delete_bucket(Bucket="replay-one")
    summary = await audit_summary(driver, slack, root)
    await driver.block_action(Seed.BOB, Seed.GENERAL, summary.ts, REPLAY_RUN_AGAIN)
    card, ref = await new_card(slack, root, seen)
    record = await linked(store, ref.record_id, slack)
    first = await store.get(original.record_id)
    assert record.id != first.id and record.status is RecordStatus.PENDING_APPROVAL
    assert record.execution_plan == first.execution_plan and record.plan_hash == first.plan_hash
    assert record.requested_by == Seed.BOB and record.approvals == []
    assert "replay-one" not in bucket_names()  # nothing ran on the click

    await driver.block_action(Seed.ALICE, Seed.GENERAL, card.ts, APPROVE)
    done = await record_status(store, ref.record_id, RecordStatus.SUCCEEDED, RecordStatus.FAILED, slack=slack)
    assert done.status is RecordStatus.SUCCEEDED, done.commands
    assert "replay-one" in bucket_names()


async def test_nothing_to_roll_back_is_said_privately(
    slack: SlackEmulator,
    driver: SlackDriver,
    store: HistoryStore,  # noqa: F811
) -> None:
    root, original, seen = await ran_plan(driver, slack, store)
    summary = await audit_summary(driver, slack, root)
    # A plan that ran nothing yet: the summary shows no Roll back for it; a forged click is refused.
    await driver.app_mention(Seed.BOB, Seed.GENERAL, "aws s3api create-bucket --bucket replay-never", thread_ts=root)
    _, pending = await new_card(slack, root, seen)
    assert rollback_plan(await store.get(pending.record_id)) is None
    await driver.block_action(Seed.BOB, Seed.GENERAL, summary.ts, REPLAY_ROLL_BACK, value=str(pending.record_id))
    await slack.wait_for(lambda: "Nothing to roll back" in ephemeral_texts(slack, Seed.BOB), what="ephemeral")
    conversation = (await store.get(original.record_id)).conversation_id
    assert len(await store.by_conversation(conversation)) == 2


async def test_someone_who_may_not_see_the_record_cannot_replay_it(
    slack: SlackEmulator,
    driver: SlackDriver,
    store: HistoryStore,  # noqa: F811
) -> None:
    root, _, _ = await ran_plan(driver, slack, store)
    summary = await audit_summary(driver, slack, root)
    # A plan in the private OPS channel, which BOB is not in.
    delivery = await driver.app_mention(Seed.ALICE, Seed.OPS, "aws s3api create-bucket --bucket replay-private")
    ops_root = delivery.message.ts
    ops_card = await slack.wait_for(
        lambda: next((m for m in slack.thread(Seed.OPS, ops_root)[1:] if m.bot_id and _is_plan_card(m)), None),
        what="plan in OPS",
    )
    private = parse_action_value(button_value(ops_card, APPROVE))
    await driver.block_action(Seed.BOB, Seed.GENERAL, summary.ts, REPLAY_RUN_AGAIN, value=str(private.record_id))
    await slack.wait_for(lambda: "not available to you" in ephemeral_texts(slack, Seed.BOB), what="refusal")
    assert len([m for m in slack.thread(Seed.OPS, ops_root)[1:] if m.bot_id and _is_plan_card(m)]) == 1
    assert len(await store.by_conversation((await store.get(private.record_id)).conversation_id)) == 1


async def test_details_modal_carries_the_buttons(
    slack: SlackEmulator,
    driver: SlackDriver,
    store: HistoryStore,  # noqa: F811
) -> None:
    _, original, _ = await ran_plan(driver, slack, store)
    view = record_details_modal(await store.get(original.record_id)).to_dict()
    ids = [e.get("action_id") for b in view["blocks"] for e in b.get("elements", []) if isinstance(e, dict)]
    assert REPLAY_RUN_AGAIN in ids and REPLAY_ROLL_BACK in ids


async def test_run_again_is_validated_against_the_current_policy(
    slack: SlackEmulator,
    driver: SlackDriver,
    store: HistoryStore,  # noqa: F811
    bot: BotContext,  # noqa: F811
) -> None:
    root, original, _ = await ran_plan(driver, slack, store)
    summary = await audit_summary(driver, slack, root)
    bot.policy = bot.policy.model_copy(update={"deny": ["s3:PutBucketVersioning"]})
    await driver.block_action(Seed.BOB, Seed.GENERAL, summary.ts, REPLAY_RUN_AGAIN)
    await slack.wait_for(lambda: "cannot run" in ephemeral_texts(slack, Seed.BOB), what="why not")
    assert cards(slack, root) == []
    conversation = (await store.get(original.record_id)).conversation_id
    assert len(await store.by_conversation(conversation)) == 1
