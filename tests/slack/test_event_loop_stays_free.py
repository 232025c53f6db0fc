"""Reading and validating plans never holds up the event loop: while the app works on a mention carrying an
alias bomb and one carrying a 50-command plan, health checks and acks for other requests are answered at once.

The real app over signed HTTP, with the emulated Slack and a real Edge history store (in memory where the
machine allows, as in the engine tests: a flush to a busy disk holds the interpreter lock for a while, which is
the store's cost, not validation's). Validating the 50 commands takes a few hundred milliseconds of CPU, so on
the event loop it would show in every latency below.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import urlsplit
from uuid import UUID

import pytest
import yaml
from slack_bolt.async_app import AsyncApp

from bot.settings import BotSettings
from bot.slack.app import create_app
from bot.slack.context import BotContext
from bot.slack.listeners import actions, events, views
from bot.slack.workflow import record_id_for
from engine.config import EngineSettings
from engine.history import HistoryStore, slack_conversation_id
from engine.policy import Policy
from engine.risk import Risk
from engine.validate import validate_text
from tests.hostile_plans import alias_bomb
from tests.slack_emulator import Seed, SlackDriver, SlackEmulator

MAX_DELAY_SECONDS = 0.1
ATTEMPTS = 3
COMMANDS = 50
POLICY = Policy(approvers={Risk.MODIFY: [Seed.ALICE], Risk.DESTRUCTIVE: [Seed.ALICE]}, max_commands=COMMANDS)


@pytest.fixture
def slack_app(bot_settings: BotSettings, store: HistoryStore) -> AsyncApp:
    bot = BotContext.build(policy=POLICY, store=store, engine_settings=EngineSettings(_env_file=None))
    return create_app(bot_settings, listener_groups=[events, actions, views], context=bot)


def costly_plan() -> str:
    """Fifty commands, each with options and shorthand values for the aws CLI's argument tables to read."""
    commands = [
        {
            "id": f"launch-{n}",
            "cli": f"aws ec2 run-instances --image-id ami-{n:08x} --instance-type t3.micro --count 1 "
            f"--subnet-id subnet-{n:08x} --security-group-ids sg-1 sg-2 --monitoring Enabled=true "
            f"--tag-specifications 'ResourceType=instance,Tags=[{{Key=name,Value=web-{n}}},{{Key=team,Value=ops}}]' "
            "'ResourceType=volume,Tags=[{Key=team,Value=ops}]' --metadata-options HttpTokens=required "
            "--block-device-mappings 'DeviceName=/dev/xvda,Ebs={VolumeSize=20,VolumeType=gp3}'",
        }
        for n in range(COMMANDS)
    ]
    return yaml.safe_dump({"summary": "Launch the web fleet", "commands": commands}, sort_keys=False, width=1 << 16)


class Poller(threading.Thread):
    """Sends one kind of request back to back from a thread of its own, timing each answer, until stopped.

    Not on the app's event loop: a client there would stop sending while the loop is blocked, and so never
    see the delay it is there to measure.
    """

    def __init__(self, url: str, request: Callable[[], tuple[str, bytes | None, dict[str, str]]]) -> None:
        super().__init__(daemon=True)
        self.url = urlsplit(url)
        self.request = request
        self.samples: list[tuple[float, float]] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        connection = http.client.HTTPConnection(self.url.hostname or "", self.url.port, timeout=10)
        try:
            while not self.stop.is_set():
                method, body, headers = self.request()
                sent = time.perf_counter()
                connection.request(method, self.url.path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                self.samples.append((sent, time.perf_counter() - sent))
                if response.status != 200:
                    self.failures.append(f"{self.url.path}: HTTP {response.status}")
                time.sleep(0.002)
        finally:
            connection.close()

    def during(self, start: float, end: float) -> list[float]:
        """Round trips of the requests that were waiting at any time between ``start`` and ``end``."""
        return [took for sent, took in self.samples if sent <= end and sent + took >= start]


def health_check() -> tuple[str, bytes | None, dict[str, str]]:
    return "GET", None, {}


def signed_request(driver: SlackDriver) -> Callable[[], tuple[str, bytes | None, dict[str, str]]]:
    def request() -> tuple[str, bytes | None, dict[str, str]]:
        signed = driver.sign_json({"token": "t", "challenge": "c", "type": "url_verification"})
        headers = {
            "Content-Type": signed.content_type,
            "X-Slack-Request-Timestamp": signed.timestamp,
            "X-Slack-Signature": signed.signature,
        }
        return "POST", signed.body, headers

    return request


async def _linked(store: HistoryStore, record_id: UUID) -> bool:
    record = await store.get(record_id)
    return record is not None and bool(record.link)


def replies(slack: SlackEmulator, root: str) -> list[str]:
    return [m.text for m in slack.thread(Seed.GENERAL, root)[1:] if m.bot_id]


class Attempt(NamedTuple):
    health: list[float]
    acks: list[float]

    @property
    def worst(self) -> float:
        return max(self.health + self.acks)

    def __str__(self) -> str:
        return (
            f"{len(self.health)} health checks (slowest {max(self.health) * 1000:.0f} ms), "
            f"{len(self.acks)} acks (slowest {max(self.acks) * 1000:.0f} ms)"
        )


async def propose_both(slack: SlackEmulator, driver: SlackDriver, store: HistoryStore, app_url: str) -> Attempt:
    """Both mentions at once while the pollers run; the latencies of what was waiting meanwhile."""
    health = Poller(f"{app_url}/healthz", health_check)
    acks = Poller(driver.url, signed_request(driver))
    for poller in (health, acks):
        poller.start()
    try:
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        bomb, plan = await asyncio.gather(
            driver.app_mention(Seed.BOB, Seed.GENERAL, f"```yaml\n{alias_bomb()}```"),
            driver.app_mention(Seed.BOB, Seed.GENERAL, f"```yaml\n{costly_plan()}```"),
        )
        assert bomb.response.status == 200 and plan.response.status == 200
        assert bomb.message is not None and plan.message is not None
        await slack.wait_for(
            lambda: any("anchors" in text for text in replies(slack, bomb.message.ts)), what="the refusal"
        )
        await slack.wait_for(
            lambda: any("launch-49" in str(m.blocks) for m in slack.thread(Seed.GENERAL, plan.message.ts)[1:]),
            timeout=30,
            what="the plan message",
        )
        finished = time.perf_counter()
        # The app's last steps (permalink, record update) finish before the next attempt or the store's close.
        record_id = record_id_for(slack_conversation_id(slack.team_id, Seed.GENERAL, plan.message.ts), plan.message.ts)
        await slack.wait_for(lambda: _linked(store, record_id), what="the record's link")
    finally:
        for poller in (health, acks):
            poller.stop.set()
        for poller in (health, acks):
            await asyncio.to_thread(poller.join, 10)
    assert health.failures == [] and acks.failures == []
    return Attempt(health.during(started, finished), acks.during(started, finished))


async def test_plans_are_read_and_validated_off_the_event_loop(
    slack: SlackEmulator, driver: SlackDriver, app_url: str, store: HistoryStore
) -> None:
    # What is measured is validation itself, not one-time costs: the app's start-up (auth.test) and botocore's
    # first load of the ec2 model, a single json.loads in C that holds the interpreter lock for ~150 ms
    # whichever thread runs it.
    assert (await driver.url_verification()).status == 200
    await asyncio.to_thread(validate_text, costly_plan(), POLICY)
    # Up to three tries: on a busy machine another process can stall any one of them for a moment, but
    # validation on the event loop (300 ms and more) shows in every one.
    attempts: list[Attempt] = []
    while len(attempts) < ATTEMPTS:
        attempts.append(await propose_both(slack, driver, store, app_url))
        if attempts[-1].worst < MAX_DELAY_SECONDS:
            break
    assert attempts[-1].worst < MAX_DELAY_SECONDS, "; ".join(map(str, attempts))
    # The measurements really overlapped the work.
    assert len(attempts[-1].health) >= 10 and len(attempts[-1].acks) >= 10, str(attempts[-1])
