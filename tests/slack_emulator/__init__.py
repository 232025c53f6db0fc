"""An in-process Slack for end-to-end tests: a Web API emulator and a driver that signs requests like Slack.

async with SlackEmulator() as slack:
    app = AsyncApp(
        client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url),
        signing_secret=SECRET,
    )
    ...  # serve app.web_app() on 127.0.0.1
    async with SlackDriver(app_url, SECRET, slack) as driver:
        delivery = await driver.app_mention(Seed.ALICE, Seed.GENERAL, "stop i-123")
        await slack.wait_for(lambda: len(slack.thread(Seed.GENERAL, delivery.message.ts)) > 1)
    assert slack.violations() == []
"""

from tests.slack_emulator.driver import AppResponse, EventDelivery, Interaction, SlackDriver
from tests.slack_emulator.limits import RateLimitConfig, RateLimitHit, Violation
from tests.slack_emulator.server import Seed, SlackEmulator

__all__ = [
    "AppResponse",
    "EventDelivery",
    "Interaction",
    "RateLimitConfig",
    "RateLimitHit",
    "Seed",
    "SlackDriver",
    "SlackEmulator",
    "Violation",
]
