"""The App Home tab end to end: pending approvals for an approver, none for anyone else, and the latest
executions each person may see."""

from __future__ import annotations

import time

import pytest
from slack_bolt.async_app import AsyncApp

from bot.settings import BotSettings
from bot.slack.app import create_app
from bot.slack.blocks import APPROVE
from bot.slack.blocks.home import LATEST_BLOCK_PREFIX, PENDING_BLOCK_PREFIX
from bot.slack.context import BotContext
from bot.slack.listeners import actions, events, home, views
from engine.history import HistoryStore, RecordStatus
from tests.slack.test_approval_flow import (  # noqa: F401  (fixtures)
    bot,
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
from tests.slack_emulator.state import StoredView


@pytest.fixture
def slack_app(bot_settings: BotSettings, bot: BotContext) -> AsyncApp:  # noqa: F811
    return create_app(bot_settings, listener_groups=[events, actions, views, home], context=bot)


async def open_home(driver: SlackDriver, slack: SlackEmulator, user: str) -> StoredView:
    published = len(slack.calls("views.publish"))
    event = {
        "type": "app_home_opened",
        "user": user,
        "channel": "D0HOME0001",
        "tab": "home",
        "event_ts": f"{time.time():.6f}",
    }
    delivery = await driver.deliver(driver.event_envelope(event))
    assert delivery.response.status == 200
    await slack.wait_for(lambda: len(slack.calls("views.publish")) > published, what="views.publish")
    return next(v for v in slack.views(user=user) if v.type == "home")


def block_ids(view: StoredView, prefix: str) -> list[str]:
    return [
        b.get("block_id", "")[len(prefix) :]
        for b in view.definition["blocks"]
        if b.get("block_id", "").startswith(prefix)
    ]


async def test_home_shows_pending_approvals_and_latest_executions(
    slack: SlackEmulator,
    driver: SlackDriver,
    store: HistoryStore,  # noqa: F811
) -> None:
    _, card, ran = await propose(driver, slack, Seed.BOB, "aws s3api create-bucket --bucket home-ran")
    await linked(store, ran.record_id, slack)
    await driver.block_action(Seed.ALICE, Seed.GENERAL, card.ts, APPROVE)
    await record_status(store, ran.record_id, RecordStatus.SUCCEEDED, slack=slack)
    _, _, waiting = await propose(driver, slack, Seed.BOB, "aws s3api create-bucket --bucket home-waiting")
    pending_record = await linked(store, waiting.record_id, slack)

    alice = await open_home(driver, slack, Seed.ALICE)
    assert block_ids(alice, PENDING_BLOCK_PREFIX) == [str(waiting.record_id)]
    assert block_ids(alice, LATEST_BLOCK_PREFIX) == [str(ran.record_id)]
    assert pending_record.link in str(alice.definition)
    assert len(alice.definition["blocks"]) <= 100

    # BOB may see the run (he is in the channel) but approves nothing.
    bob = await open_home(driver, slack, Seed.BOB)
    assert block_ids(bob, PENDING_BLOCK_PREFIX) == []
    assert block_ids(bob, LATEST_BLOCK_PREFIX) == [str(ran.record_id)]
    assert "Nothing is waiting for your approval" in str(bob.definition)

    assert not slack.violations()
