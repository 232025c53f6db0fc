"""The approval flow end to end: the real app over signed HTTP, the emulated Slack, a real Edge history store
and the moto server for execution."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from slack_bolt.async_app import AsyncApp

from bot.planner import LLMSettings, OpenAIPlanner
from bot.settings import BotSettings
from bot.slack.app import create_app
from bot.slack.blocks import (
    APPROVE,
    DRY_RUN,
    EDIT,
    EDIT_CALLBACK_ID,
    EDIT_PLAN_ACTION_ID,
    EDIT_PLAN_BLOCK_ID,
    REJECT,
    REJECT_CALLBACK_ID,
    REJECT_REASON_ACTION_ID,
    REJECT_REASON_BLOCK_ID,
    parse_action_value,
)
from bot.slack.context import BotContext
from bot.slack.listeners import actions, events, views
from bot.slack.workflow import record_id_for
from engine.config import EngineSettings
from engine.history import HistorySettings, HistoryStore, RecordStatus, open_history_store, slack_conversation_id
from engine.policy import ChannelPolicy, Policy
from engine.risk import Risk
from tests.fake_llm import FakeLLM, structured
from tests.fake_llm import error as llm_error
from tests.slack.conftest import serve_app
from tests.slack_emulator import Seed, SlackDriver, SlackEmulator
from tests.slack_emulator.state import Message

POLICY = Policy(
    approvers={Risk.MODIFY: [Seed.ALICE, Seed.APPROVERS], Risk.DESTRUCTIVE: [Seed.ADMIN, Seed.ALICE]},
    min_approvals={Risk.READ_ONLY: 0, Risk.MODIFY: 1, Risk.DESTRUCTIVE: 2},
    self_approval={Risk.READ_ONLY: True, Risk.MODIFY: True, Risk.DESTRUCTIVE: False},
)


@pytest.fixture
def policy() -> Policy:
    return POLICY


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "history"


@pytest.fixture
async def store(data_dir: Path) -> AsyncIterator[HistoryStore]:
    opened = await open_history_store(HistorySettings(data_dir=data_dir))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def engine_settings(aws: str) -> EngineSettings:
    return EngineSettings(_env_file=None, retry={"max_attempts": 1})


@pytest.fixture
def planner() -> Any:
    return None


@pytest.fixture
def bot(policy: Policy, store: HistoryStore, engine_settings: EngineSettings, planner: Any) -> BotContext:
    return BotContext.build(policy=policy, store=store, engine_settings=engine_settings, planner=planner)


@pytest.fixture
def slack_app(bot_settings: BotSettings, bot: BotContext) -> AsyncApp:
    return create_app(bot_settings, listener_groups=[events, actions, views], context=bot)


# -- helpers -------------------------------------------------------------------------------------------------


def _has_action(message: Message, action_id: str) -> bool:
    return any(
        element.get("action_id") == action_id
        for block in message.blocks or []
        for element in block.get("elements", []) or []
        if isinstance(element, dict)
    )


def _is_plan_card(message: Message) -> bool:
    return any("Plan `" in str(block) or block.get("block_id") == "plan_actions" for block in message.blocks or [])


async def plan_card(slack: SlackEmulator, channel: str, root_ts: str) -> Message:
    return await slack.wait_for(
        lambda: next((m for m in slack.thread(channel, root_ts)[1:] if m.bot_id and _is_plan_card(m)), None),
        what="plan message in the thread",
    )


def button_value(message: Message, action_id: str) -> str:
    for block in message.blocks or []:
        for element in block.get("elements", []) or []:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(element["value"])
    raise LookupError(action_id)


async def record_status(store: HistoryStore, record_id: Any, *statuses: RecordStatus, slack: SlackEmulator) -> Any:
    async def check() -> Any:
        record = await store.get(record_id)
        return record if record is not None and record.status in statuses else None

    return await slack.wait_for(check, timeout=20, what=f"record in {statuses}")


def replies_text(slack: SlackEmulator, channel: str, root_ts: str) -> str:
    return "\n".join(m.text for m in slack.thread(channel, root_ts)[1:])


def bucket_names() -> set[str]:
    return {b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]}


async def propose(driver: SlackDriver, slack: SlackEmulator, user: str, text: str) -> tuple[str, Message, Any]:
    delivery = await driver.app_mention(user, Seed.GENERAL, text)
    assert delivery.response.status == 200
    assert delivery.message is not None
    card = await plan_card(slack, Seed.GENERAL, delivery.message.ts)
    ref = parse_action_value(button_value(card, APPROVE))
    return delivery.message.ts, card, ref


async def linked(store: HistoryStore, record_id: Any, slack: SlackEmulator) -> Any:
    async def check() -> Any:
        record = await store.get(record_id)
        return record if record is not None and record.link else None

    return await slack.wait_for(check, what="plan message link in the record")


# -- tests ---------------------------------------------------------------------------------------------------


async def test_mention_posts_plan_and_approval_runs_it(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore
) -> None:
    root, card, ref = await propose(driver, slack, Seed.BOB, "aws s3api create-bucket --bucket flow-one")
    assert card.thread_ts == root
    for action_id in (APPROVE, REJECT, EDIT, DRY_RUN):
        assert _has_action(card, action_id)
    record = await linked(store, ref.record_id, slack)
    assert record.status is RecordStatus.PENDING_APPROVAL
    assert record.conversation_id == slack_conversation_id(slack.team_id, Seed.GENERAL, root)
    assert record.requested_by == Seed.BOB and record.link and card.ts.replace(".", "") in record.link
    assert "flow-one" not in bucket_names()

    click = await driver.block_action(Seed.ALICE, Seed.GENERAL, card.ts, APPROVE)
    assert click.response.status == 200
    done = await record_status(store, ref.record_id, RecordStatus.SUCCEEDED, RecordStatus.FAILED, slack=slack)
    assert done.status is RecordStatus.SUCCEEDED, done.commands
    assert "flow-one" in bucket_names()
    await slack.wait_for(lambda: "Run succeeded" in replies_text(slack, Seed.GENERAL, root), what="result reply")
    final = slack.message(Seed.GENERAL, card.ts)
    assert not _has_action(final, APPROVE)
    assert any(a.user == Seed.ALICE for a in done.approvals)


def ephemeral_texts(slack: SlackEmulator, user: str) -> str:
    return "\n".join(e.text for e in slack.ephemerals(user=user))


async def test_a_mention_that_would_delete_a_secret_deletes_nothing_before_approval(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore
) -> None:
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name="prod-db", SecretString="kept-value-9Lp")
    text = "aws secretsmanager delete-secret --secret-id prod-db --force-delete-without-recovery"
    _, card, ref = await propose(driver, slack, Seed.BOB, text)
    record = await linked(store, ref.record_id, slack)
    assert record.status is RecordStatus.PENDING_APPROVAL and record.risk is Risk.DESTRUCTIVE
    # Proposed, validated and shown for approval: the secret is still there.
    assert [s["Name"] for s in secrets.list_secrets()["SecretList"]] == ["prod-db"]
    assert _has_action(card, APPROVE)


async def test_reject_through_the_modal(slack: SlackEmulator, driver: SlackDriver, store: HistoryStore) -> None:
    root, card, ref = await propose(driver, slack, Seed.BOB, "aws s3api create-bucket --bucket flow-rejected")
    await linked(store, ref.record_id, slack)
    await driver.block_action(Seed.ALICE, Seed.GENERAL, card.ts, REJECT)
    view = await slack.wait_for(
        lambda: next(
            (v for v in slack.views(user=Seed.ALICE) if v.definition.get("callback_id") == REJECT_CALLBACK_ID), None
        ),
        what="reject modal",
    )
    values = {REJECT_REASON_BLOCK_ID: {REJECT_REASON_ACTION_ID: {"type": "plain_text_input", "value": "not today"}}}
    submitted = await driver.view_submission(Seed.ALICE, view.id, values)
    assert submitted.response.status == 200
    record = await record_status(store, ref.record_id, RecordStatus.REJECTED, slack=slack)
    assert record.approvals[-1].user == Seed.ALICE and record.approvals[-1].comment == "not today"
    await slack.wait_for(lambda: "rejected this plan" in replies_text(slack, Seed.GENERAL, root), what="reply")
    assert not _has_action(slack.message(Seed.GENERAL, card.ts), APPROVE)
    assert "flow-rejected" not in bucket_names()


async def test_unauthorized_approver_is_refused_and_nothing_runs(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore
) -> None:
    _, card, ref = await propose(driver, slack, Seed.ALICE, "aws s3api create-bucket --bucket flow-unauth")
    await driver.block_action(Seed.BOB, Seed.GENERAL, card.ts, APPROVE)
    await slack.wait_for(lambda: "not an approver" in ephemeral_texts(slack, Seed.BOB), what="ephemeral refusal")
    record = await store.get(ref.record_id)
    assert record is not None and record.status is RecordStatus.PENDING_APPROVAL
    assert [a.decision.value for a in record.approvals] == ["denied"]
    assert _has_action(slack.message(Seed.GENERAL, card.ts), APPROVE)
    assert "flow-unauth" not in bucket_names()


async def test_group_member_may_approve(slack: SlackEmulator, driver: SlackDriver, store: HistoryStore) -> None:
    # ADMIN is an approver only through the APPROVERS user group.
    _, card, ref = await propose(driver, slack, Seed.BOB, "aws s3api create-bucket --bucket flow-group")
    await driver.block_action(Seed.ADMIN, Seed.GENERAL, card.ts, APPROVE)
    record = await record_status(store, ref.record_id, RecordStatus.SUCCEEDED, RecordStatus.FAILED, slack=slack)
    assert record.status is RecordStatus.SUCCEEDED
    assert slack.calls("usergroups.users.list")


async def test_self_approval_of_destructive_plan_is_refused(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore
) -> None:
    boto3.client("s3").create_bucket(Bucket="flow-keep")
    _, card, ref = await propose(driver, slack, Seed.ALICE, "aws s3api delete-bucket --bucket flow-keep")
    await driver.block_action(Seed.ALICE, Seed.GENERAL, card.ts, APPROVE)
    await slack.wait_for(lambda: "own" in ephemeral_texts(slack, Seed.ALICE), what="self-approval refusal")
    record = await store.get(ref.record_id)
    assert record is not None and record.status is RecordStatus.PENDING_APPROVAL
    assert "flow-keep" in bucket_names()


async def test_destructive_plan_needs_two_approvals(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore
) -> None:
    boto3.client("s3").create_bucket(Bucket="flow-two")
    _, card, ref = await propose(driver, slack, Seed.BOB, "aws s3api delete-bucket --bucket flow-two")
    await driver.block_action(Seed.ADMIN, Seed.GENERAL, card.ts, APPROVE)
    await slack.wait_for(lambda: len(slack.edit_history(Seed.GENERAL, card.ts)) > 1, what="card shows 1 of 2")
    record = await store.get(ref.record_id)
    assert record is not None and record.status is RecordStatus.PENDING_APPROVAL
    assert "flow-two" in bucket_names()
    assert _has_action(slack.message(Seed.GENERAL, card.ts), APPROVE)
    await driver.block_action(Seed.ALICE, Seed.GENERAL, card.ts, APPROVE)
    record = await record_status(store, ref.record_id, RecordStatus.SUCCEEDED, RecordStatus.FAILED, slack=slack)
    assert record.status is RecordStatus.SUCCEEDED
    assert "flow-two" not in bucket_names()


async def _edit(driver: SlackDriver, slack: SlackEmulator, user: str, card: Message, plan_yaml: str) -> Any:
    await driver.block_action(user, Seed.GENERAL, card.ts, EDIT)
    view = await slack.wait_for(
        lambda: next(
            (
                v
                for v in slack.views(user=user)
                if v.definition.get("callback_id") == EDIT_CALLBACK_ID and v.closed_at is None
            ),
            None,
        ),
        what="edit modal",
    )
    values = {EDIT_PLAN_BLOCK_ID: {EDIT_PLAN_ACTION_ID: {"type": "plain_text_input", "value": plan_yaml}}}
    return await driver.view_submission(user, view.id, values)


EDITED = (
    "summary: the edited bucket\ncommands:\n  - id: bucket\n    cli: aws s3api create-bucket --bucket flow-edited\n"
)


async def test_edit_makes_a_new_version_and_old_clicks_are_stale(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore
) -> None:
    root, card, ref = await propose(driver, slack, Seed.BOB, "aws s3api create-bucket --bucket flow-original")
    await linked(store, ref.record_id, slack)
    old_value = button_value(card, APPROVE)
    submitted = await _edit(driver, slack, Seed.BOB, card, EDITED)
    assert submitted.response.status == 200 and not submitted.response.body
    record = await slack.wait_for(lambda: _version(store, ref.record_id, 2), what="version 2 saved")
    assert record.plan_version == 2
    await slack.wait_for(lambda: "edited the plan" in replies_text(slack, Seed.GENERAL, root), what="edit note")
    updated = slack.message(Seed.GENERAL, card.ts)
    assert parse_action_value(button_value(updated, APPROVE)).plan_version == 2

    # A click on the old card's button is refused and counts for nothing.
    await driver.block_action(Seed.ALICE, Seed.GENERAL, card.ts, APPROVE, value=old_value)
    await slack.wait_for(lambda: "was edited" in ephemeral_texts(slack, Seed.ALICE), what="stale notice")
    record = await store.get(ref.record_id)
    assert record is not None and record.status is RecordStatus.PENDING_APPROVAL

    await driver.block_action(Seed.ALICE, Seed.GENERAL, card.ts, APPROVE)
    done = await record_status(store, ref.record_id, RecordStatus.SUCCEEDED, RecordStatus.FAILED, slack=slack)
    assert done.status is RecordStatus.SUCCEEDED
    names = bucket_names()
    assert "flow-edited" in names and "flow-original" not in names


async def _version(store: HistoryStore, record_id: Any, version: int) -> Any:
    record = await store.get(record_id)
    return record if record is not None and record.plan_version == version else None


async def test_invalid_edit_shows_errors_in_the_modal_and_saves_nothing(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore
) -> None:
    _, card, ref = await propose(driver, slack, Seed.BOB, "aws s3api create-bucket --bucket flow-bad-edit")
    bad = "summary: bad\ncommands:\n  - id: x\n    cli: rm -rf /\n"
    submitted = await _edit(driver, slack, Seed.BOB, card, bad)
    answer = submitted.response.json()
    assert answer["response_action"] == "errors" and EDIT_PLAN_BLOCK_ID in answer["errors"]
    record = await store.get(ref.record_id)
    assert record is not None and record.plan_version == 1


async def test_dry_run_posts_result_and_changes_nothing(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore
) -> None:
    root, card, ref = await propose(driver, slack, Seed.BOB, "aws s3api create-bucket --bucket flow-dry")
    await driver.block_action(Seed.BOB, Seed.GENERAL, card.ts, DRY_RUN)
    await slack.wait_for(lambda: "Dry run" in replies_text(slack, Seed.GENERAL, root), timeout=20, what="dry run")
    record = await store.get(ref.record_id)
    assert record is not None and record.status is RecordStatus.PENDING_APPROVAL
    assert "flow-dry" not in bucket_names()


def _result_replies(slack: SlackEmulator, root: str) -> int:
    return sum("*Run " in m.text for m in slack.thread(Seed.GENERAL, root)[1:])


async def test_double_click_and_concurrent_approvers_run_once(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore
) -> None:
    root, card, ref = await propose(driver, slack, Seed.BOB, "aws s3api create-bucket --bucket flow-double")
    await asyncio.gather(
        driver.block_action(Seed.ALICE, Seed.GENERAL, card.ts, APPROVE),
        driver.block_action(Seed.ALICE, Seed.GENERAL, card.ts, APPROVE),
        driver.block_action(Seed.ADMIN, Seed.GENERAL, card.ts, APPROVE),
    )
    done = await record_status(store, ref.record_id, RecordStatus.SUCCEEDED, RecordStatus.FAILED, slack=slack)
    assert done.status is RecordStatus.SUCCEEDED
    await slack.wait_for(lambda: _result_replies(slack, root) >= 1, what="result reply")
    await asyncio.sleep(0.5)
    assert _result_replies(slack, root) == 1
    assert len([r for r in await store.by_conversation(done.conversation_id) if not r.dry_run]) == 1
    final = slack.message(Seed.GENERAL, card.ts)
    assert not _has_action(final, APPROVE) and "succeeded" in final.text.lower()


async def test_event_retry_makes_one_plan(slack: SlackEmulator, driver: SlackDriver, store: HistoryStore) -> None:
    delivery = await driver.app_mention(Seed.BOB, Seed.GENERAL, "aws s3api create-bucket --bucket flow-retry")
    assert delivery.message is not None
    retries = await asyncio.gather(driver.redeliver(delivery, retry_num=1), driver.redeliver(delivery, retry_num=2))
    assert all(r.status == 200 for r in retries)
    await plan_card(slack, Seed.GENERAL, delivery.message.ts)
    await asyncio.sleep(0.5)
    cards = [m for m in slack.thread(Seed.GENERAL, delivery.message.ts)[1:] if _is_plan_card(m)]
    assert len(cards) == 1
    conversation = slack_conversation_id(slack.team_id, Seed.GENERAL, delivery.message.ts)
    records = await store.by_conversation(conversation)
    assert [r.id for r in records] == [record_id_for(conversation, delivery.message.ts)]


async def test_approval_works_after_a_restart(
    slack: SlackEmulator,
    driver: SlackDriver,
    store: HistoryStore,
    data_dir: Path,
    bot_settings: BotSettings,
    signing_secret: str,
    engine_settings: EngineSettings,
) -> None:
    root, card, ref = await propose(driver, slack, Seed.BOB, "aws s3api create-bucket --bucket flow-restart")
    await linked(store, ref.record_id, slack)
    await store.close()  # the first process stops

    reopened = await open_history_store(HistorySettings(data_dir=data_dir))
    try:
        bot = BotContext.build(policy=POLICY, store=reopened, engine_settings=engine_settings)
        await bot.executions.recover()
        app = create_app(bot_settings, listener_groups=[events, actions, views], context=bot)
        async with serve_app(app) as url, SlackDriver(url, signing_secret, slack) as second:
            await second.block_action(Seed.ALICE, Seed.GENERAL, card.ts, APPROVE)
            done = await record_status(
                reopened, ref.record_id, RecordStatus.SUCCEEDED, RecordStatus.FAILED, slack=slack
            )
            assert done.status is RecordStatus.SUCCEEDED
            await slack.wait_for(lambda: _result_replies(slack, root) == 1, what="result reply")
    finally:
        await reopened.close()
    assert "flow-restart" in bucket_names()


@contextlib.asynccontextmanager
async def app_with(
    bot: BotContext, bot_settings: BotSettings, signing_secret: str, slack: SlackEmulator
) -> AsyncIterator[SlackDriver]:
    app = create_app(bot_settings, listener_groups=[events, actions, views], context=bot)
    async with serve_app(app) as url, SlackDriver(url, signing_secret, slack) as other:
        yield other


async def test_llm_planner_makes_the_plan(
    slack: SlackEmulator,
    store: HistoryStore,
    bot_settings: BotSettings,
    signing_secret: str,
    engine_settings: EngineSettings,
) -> None:
    plan = {
        "summary": "Create the llm bucket",
        "commands": [{"id": "bucket", "cli": "aws s3api create-bucket --bucket flow-llm"}],
    }
    async with FakeLLM(api_key="sk-test", model="test-model") as llm:
        llm.script(structured(plan, reply="Here is the plan."))
        async with OpenAIPlanner(LLMSettings(base_url=llm.base_url, api_key="sk-test", model="test-model")) as planner:
            bot = BotContext.build(policy=POLICY, store=store, engine_settings=engine_settings, planner=planner)
            async with app_with(bot, bot_settings, signing_secret, slack) as driver:
                delivery = await driver.app_mention(Seed.BOB, Seed.GENERAL, "please make me a bucket called flow-llm")
                assert delivery.message is not None
                card = await plan_card(slack, Seed.GENERAL, delivery.message.ts)
                ref = parse_action_value(button_value(card, APPROVE))
                record = await store.get(ref.record_id)
                assert record is not None and record.summary == "Create the llm bucket"
                assert "flow-llm" in record.commands[0].command
                assert slack.calls("conversations.replies")
                assert llm.protocol_errors == []


async def test_planner_error_is_a_threaded_reply(
    slack: SlackEmulator,
    store: HistoryStore,
    bot_settings: BotSettings,
    signing_secret: str,
    engine_settings: EngineSettings,
) -> None:
    async with FakeLLM(api_key="sk-test", model="test-model") as llm:
        llm.script(llm_error(500, "boom"), llm_error(500, "boom"))
        async with OpenAIPlanner(LLMSettings(base_url=llm.base_url, api_key="sk-test", model="test-model")) as planner:
            bot = BotContext.build(policy=POLICY, store=store, engine_settings=engine_settings, planner=planner)
            async with app_with(bot, bot_settings, signing_secret, slack) as driver:
                delivery = await driver.app_mention(Seed.BOB, Seed.GENERAL, "make me a bucket")
                assert delivery.message is not None
                root = delivery.message.ts
                await slack.wait_for(
                    lambda: "could not make a plan" in replies_text(slack, Seed.GENERAL, root), what="planner error"
                )
    assert await store.count() == 0


async def test_invalid_plan_gets_the_problems_in_the_thread(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore
) -> None:
    delivery = await driver.app_mention(Seed.BOB, Seed.GENERAL, "aws s3api create-bucket --bucket x --profile prod")
    assert delivery.message is not None
    root = delivery.message.ts
    await slack.wait_for(lambda: "cannot run" in replies_text(slack, Seed.GENERAL, root), what="error reply")
    assert await store.count() == 0


async def test_channels_not_in_the_policy_are_refused_and_read_only_runs_at_once(
    slack: SlackEmulator,
    store: HistoryStore,
    bot_settings: BotSettings,
    signing_secret: str,
    engine_settings: EngineSettings,
) -> None:
    policy = POLICY.model_copy(
        update={"channels": {Seed.OPS: ChannelPolicy(region="us-east-1", environment="staging")}}
    )
    bot = BotContext.build(policy=policy, store=store, engine_settings=engine_settings)
    async with app_with(bot, bot_settings, signing_secret, slack) as driver:
        refused = await driver.app_mention(Seed.BOB, Seed.GENERAL, "aws s3api list-buckets")
        assert refused.message is not None
        await slack.wait_for(
            lambda: "don't take requests" in replies_text(slack, Seed.GENERAL, refused.message.ts), what="refusal"
        )
        asked = await driver.app_mention(Seed.ALICE, Seed.OPS, "aws s3api list-buckets")
        assert asked.message is not None
        card = await plan_card(slack, Seed.OPS, asked.message.ts)
        await slack.wait_for(
            lambda: "Run succeeded" in "\n".join(m.text for m in slack.thread(Seed.OPS, asked.message.ts)),
            timeout=20,
            what="read-only plan ran without approval",
        )
        assert not _has_action(slack.message(Seed.OPS, card.ts), APPROVE)
    records = await store.latest()
    assert len(records) == 1 and records[0].environment == "staging" and records[0].aws_region == "us-east-1"


async def test_direct_message_makes_a_plan(slack: SlackEmulator, driver: SlackDriver, store: HistoryStore) -> None:
    dm = slack.open_dm(Seed.BOB)
    delivery = await driver.user_message(Seed.BOB, dm.id, "aws s3api create-bucket --bucket flow-dm")
    assert delivery.message is not None
    card = await plan_card(slack, dm.id, delivery.message.ts)
    record = await linked(store, parse_action_value(button_value(card, APPROVE)).record_id, slack)
    assert record.requested_by == Seed.BOB and record.channel == dm.id


async def test_an_expired_plan_cannot_be_approved(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore
) -> None:
    _, card, ref = await propose(driver, slack, Seed.BOB, "aws s3api create-bucket --bucket flow-expired")
    record = await linked(store, ref.record_id, slack)
    # The approval window passes: move the record's expiry into the past, as the clock would.
    past = record.expires_at - timedelta(days=1)
    moved = await store.transition(
        record.id, expected_status=RecordStatus.PENDING_APPROVAL, changes={"expires_at": past}
    )
    assert moved.applied

    await driver.block_action(Seed.ALICE, Seed.GENERAL, card.ts, APPROVE)

    await slack.wait_for(lambda: "expired" in ephemeral_texts(slack, Seed.ALICE), what="expiry refusal")
    record = await record_status(store, ref.record_id, RecordStatus.EXPIRED, slack=slack)
    assert [a.decision.value for a in record.approvals] != ["approve"]
    await slack.wait_for(lambda: not _has_action(slack.message(Seed.GENERAL, card.ts), APPROVE), what="buttons gone")
    assert "flow-expired" not in bucket_names()
