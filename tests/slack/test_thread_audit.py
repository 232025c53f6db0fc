"""The thread audit end to end: `@CloudOps audit` in a thread and the *Audit this thread* message shortcut,
over signed HTTP with the emulated Slack, a real Edge history store and moto for the run."""

from __future__ import annotations

import pytest
import qdrant_edge as qe
from slack_bolt.async_app import AsyncApp

from bot.settings import BotSettings
from bot.slack.app import create_app
from bot.slack.blocks import APPROVE, parse_action_value
from bot.slack.blocks.audit import REPLAY_ROLL_BACK, REPLAY_RUN_AGAIN
from bot.slack.context import BotContext
from bot.slack.listeners import actions, events, replay_actions, shortcuts, views
from engine.history import HistoryStore, RecordStatus
from engine.history.edge import EdgeHistoryStore
from tests.slack.test_approval_flow import (  # noqa: F401  (fixtures)
    EDITED,
    _edit,
    _version,
    bot,
    button_value,
    data_dir,
    engine_settings,
    linked,
    planner,
    policy,
    propose,
    record_status,
    store,
)
from tests.slack_emulator import Seed, SlackDriver, SlackEmulator
from tests.slack_emulator.state import Message


@pytest.fixture
def slack_app(bot_settings: BotSettings, bot: BotContext) -> AsyncApp:  # noqa: F811
    return create_app(bot_settings, listener_groups=[events, actions, views, shortcuts, replay_actions], context=bot)


def _is_audit(message: Message) -> bool:
    return bool(message.bot_id) and message.text.startswith("Audit of this thread")


def blocks_text(message: Message) -> str:
    return "\n".join(str(block) for block in message.blocks or [])


async def audit_reply(slack: SlackEmulator, root: str, after: int = 0) -> Message:
    return await slack.wait_for(
        lambda: next((m for m in [m for m in slack.thread(Seed.GENERAL, root)[1:] if _is_audit(m)][after:]), None),
        timeout=20,
        what="audit summary in the thread",
    )


async def two_plans(slack: SlackEmulator, driver: SlackDriver, store: HistoryStore) -> tuple[str, object, object]:  # noqa: F811
    """A thread with an edited plan (left pending) and a second plan approved and run."""
    root, card, first = await propose(driver, slack, Seed.BOB, "aws s3api create-bucket --bucket audit-original")
    await linked(store, first.record_id, slack)
    await _edit(driver, slack, Seed.BOB, card, EDITED)
    await slack.wait_for(lambda: _version(store, first.record_id, 2), what="version 2")
    delivery = await driver.app_mention(
        Seed.BOB, Seed.GENERAL, "aws s3api create-bucket --bucket audit-second", thread_ts=root
    )
    assert delivery.response.status == 200
    second_card = await slack.wait_for(
        lambda: next(
            (
                m
                for m in slack.thread(Seed.GENERAL, root)[1:]
                if m.bot_id
                and m.ts != card.ts
                and "audit-second" in blocks_text(m)
                and "plan_actions" in blocks_text(m)
            ),
            None,
        ),
        what="second plan card",
    )
    second = parse_action_value(button_value(second_card, APPROVE))
    await linked(store, second.record_id, slack)
    await driver.block_action(Seed.ALICE, Seed.GENERAL, second_card.ts, APPROVE)
    done = await record_status(store, second.record_id, RecordStatus.SUCCEEDED, RecordStatus.FAILED, slack=slack)
    assert done.status is RecordStatus.SUCCEEDED
    return root, first, second


async def test_audit_mention_summarizes_the_thread(
    slack: SlackEmulator,
    driver: SlackDriver,
    store: HistoryStore,  # noqa: F811
) -> None:
    root, first, _ = await two_plans(slack, driver, store)
    delivery = await driver.app_mention(Seed.ADMIN, Seed.GENERAL, "audit", thread_ts=root)
    assert delivery.response.status == 200
    summary = await audit_reply(slack, root)
    text = blocks_text(summary)
    assert "2 plans" in summary.text and "chain OK" in summary.text
    assert "v1 → v2" in text and f"<@{Seed.BOB}>" in text
    assert "approved by <@" + Seed.ALICE in text
    assert "audit-second" in text and "succeeded" in text
    assert "Audit chain OK" in text
    assert text.count(REPLAY_RUN_AGAIN) == 2
    # Nothing new was proposed: the word `audit` is not a plan.
    assert len(await store.by_conversation((await store.get(first.record_id)).conversation_id)) == 2
    assert not slack.violations()


async def test_tampering_is_named_in_the_summary(
    slack: SlackEmulator,
    driver: SlackDriver,
    store: HistoryStore,  # noqa: F811
) -> None:
    root, _, second = await two_plans(slack, driver, store)
    assert isinstance(store, EdgeHistoryStore)
    op = qe.UpdateOperation.set_payload([str(second.record_id)], {"requested_by": "U0MALLORY1"})
    await store.run_in_shard_thread(lambda records, audit: records.update(op))
    await driver.app_mention(Seed.ALICE, Seed.GENERAL, "audit", thread_ts=root)
    summary = await audit_reply(slack, root)
    text = blocks_text(summary)
    assert "chain OK" not in summary.text
    assert "Audit chain problems" in text and str(second.record_id) in text and "changed" in text


async def test_message_shortcut_posts_the_summary_in_the_thread(
    slack: SlackEmulator,
    driver: SlackDriver,
    store: HistoryStore,  # noqa: F811
) -> None:
    root, card, ref = await propose(driver, slack, Seed.BOB, "aws s3api create-bucket --bucket audit-shortcut")
    await linked(store, ref.record_id, slack)
    answer = await driver.message_shortcut(Seed.ALICE, Seed.GENERAL, card.ts, "audit_thread")
    assert answer.response.status == 200
    summary = await audit_reply(slack, root)
    assert "1 plan" in summary.text and "audit-shortcut" in blocks_text(summary)
    assert REPLAY_ROLL_BACK not in blocks_text(summary)  # nothing ran, nothing to roll back


async def test_shortcut_where_the_bot_cannot_post_answers_privately(
    slack: SlackEmulator,
    driver: SlackDriver,
) -> None:
    # RANDOM does not have the bot in it: the summary goes to the person who asked, on the response URL.
    message = slack.post_as_user(Seed.BOB, Seed.RANDOM, "what happened here?")
    answer = await driver.message_shortcut(Seed.BOB, Seed.RANDOM, message.ts, "audit_thread")
    assert answer.response.status == 200
    post = await slack.wait_for(
        lambda: next(iter(slack.response_url_posts()), None), what="private answer on the response URL"
    )
    assert post.payload.get("response_type") == "ephemeral"
    assert "nothing to audit" in post.payload.get("text", "")
    assert len(slack.thread(Seed.RANDOM, message.ts)) == 1
