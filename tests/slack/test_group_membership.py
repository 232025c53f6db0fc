"""Approver groups are resolved through usergroups.users.list once per refresh, whatever the burst."""

from __future__ import annotations

import asyncio
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.context import BotContext
from engine.config import EngineSettings
from engine.history import EdgeHistoryStore
from engine.policy import Policy
from engine.risk import Risk
from tests.slack_emulator import Seed, SlackEmulator


async def test_a_burst_of_clicks_asks_slack_for_the_group_once(slack: SlackEmulator, tmp_path: Path) -> None:
    store = await EdgeHistoryStore(tmp_path / "data").open()
    try:
        bot = BotContext.build(
            policy=Policy(approvers={Risk.MODIFY: [Seed.APPROVERS]}),
            store=store,
            engine_settings=EngineSettings(_env_file=None),
        )
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        users = [Seed.ALICE, Seed.BOB, Seed.ADMIN] * 10

        answers = await asyncio.gather(*(bot.user_groups(client, user) for user in users))

        assert len(slack.calls("usergroups.users.list")) == 1
        assert {user: groups for user, groups in zip(users, answers, strict=True)} == {
            Seed.ALICE: frozenset({Seed.APPROVERS}),
            Seed.BOB: frozenset(),
            Seed.ADMIN: frozenset({Seed.APPROVERS}),
        }
    finally:
        await store.close()
