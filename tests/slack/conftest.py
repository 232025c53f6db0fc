"""Fixtures for testing the Slack app end to end: the emulated Slack, the app served on loopback, the driver.

Nothing here knows CloudOps' listeners. A test module chooses what the app serves by overriding
``listener_groups`` (or ``slack_app`` for a different app altogether), then talks to it through ``driver``:

    @pytest.fixture
    def listener_groups() -> list[ListenerGroup]:
        return [events]

    async def test_mention(slack: SlackEmulator, driver: SlackDriver) -> None:
        delivery = await driver.app_mention(Seed.ALICE, Seed.GENERAL, "hello")
        ...

``serve_app`` serves any other AsyncApp for the length of an ``async with``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from slack_bolt.async_app import AsyncApp

from bot.settings import BotSettings, load_bot_settings
from bot.slack.app import ListenerGroup, create_app
from bot.slack.server import base_url, start_http
from tests.slack_emulator import SlackDriver, SlackEmulator

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

ServeApp = Callable[[AsyncApp], AbstractAsyncContextManager[str]]


@asynccontextmanager
async def serve_app(app: AsyncApp) -> AsyncIterator[str]:
    """Serve ``app`` over HTTP on 127.0.0.1 (a free port); yields the base URL, stops on exit."""
    runner = await start_http(app, "127.0.0.1", 0)
    try:
        yield base_url(runner)
    finally:
        await runner.cleanup()


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator() as emulator:
        yield emulator


@pytest.fixture
def signing_secret() -> str:
    return SIGNING_SECRET


@pytest.fixture
def bot_settings(slack: SlackEmulator, signing_secret: str) -> BotSettings:
    """HTTP-mode settings for the emulator, whatever the developer's environment or ``.env`` hold."""
    return load_bot_settings(
        _env_file=None,
        slack_bot_token=slack.bot_token,
        slack_app_token=None,
        slack_signing_secret=signing_secret,
        slack_api_url=slack.api_url,
        policy_path=None,
    )


@pytest.fixture
def listener_groups() -> list[ListenerGroup]:
    return []


@pytest.fixture
def slack_app(bot_settings: BotSettings, listener_groups: list[ListenerGroup]) -> AsyncApp:
    return create_app(bot_settings, listener_groups=listener_groups)


@pytest.fixture(name="serve_app")
def serve_app_fixture() -> ServeApp:
    return serve_app


@pytest.fixture
async def app_url(slack_app: AsyncApp) -> AsyncIterator[str]:
    async with serve_app(slack_app) as url:
        yield url


@pytest.fixture
async def driver(app_url: str, signing_secret: str, slack: SlackEmulator) -> AsyncIterator[SlackDriver]:
    async with SlackDriver(app_url, signing_secret, slack) as slack_driver:
        yield slack_driver
