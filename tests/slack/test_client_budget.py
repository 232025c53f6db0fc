"""The shared Web API call budget: cooldowns after 429s, pacing under Slack's tiers, one budget for all callers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.client import BudgetedWebClient, Pace, SlackCallBudget, retry_after_seconds
from tests.slack_emulator import Seed, SlackEmulator

GENERAL, OPS = Seed.GENERAL, Seed.OPS


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def budgeted(slack: SlackEmulator, http: aiohttp.ClientSession, budget: SlackCallBudget) -> BudgetedWebClient:
    return BudgetedWebClient(budget=budget, token=slack.bot_token, base_url=slack.api_url, session=http)


async def bot_messages(slack: SlackEmulator, http: aiohttp.ClientSession, count: int) -> list[str]:
    """Messages to edit, posted by a plain client with Slack's per-channel pace lifted for the set-up."""
    slack.limits.configure(post_message_channel_limit=1000)
    plain = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, session=http, retry_handlers=[])
    return [(await plain.chat_postMessage(channel=GENERAL, text=f"step {n}"))["ts"] for n in range(count)]


# ---------------------------------------------------------------------- against the emulated Slack


async def test_twenty_concurrent_updates_under_a_429_storm_all_land_without_a_retry_after_violation(
    slack: SlackEmulator, http: aiohttp.ClientSession
) -> None:
    timestamps = await bot_messages(slack, http, 20)
    # All twenty leave before the first 429 comes back; the emulator must count them as in flight, not as
    # calls that ignored a Retry-After they could not have seen yet.
    slack.limits.configure(in_flight_grace_seconds=0.5)
    slack.limits.storm("chat.update", 3, retry_after=1)
    client = budgeted(slack, http, SlackCallBudget())

    await asyncio.gather(*(client.chat_update(channel=GENERAL, ts=ts, text="done") for ts in timestamps))

    assert all(slack.edit_history(GENERAL, ts)[-1].text == "done" for ts in timestamps)
    assert slack.violations() == []
    storm_hits = [hit for hit in slack.rate_limited("chat.update") if hit.reason == "storm"]
    assert len(storm_hits) == 3
    # The first wave all meets the first 429; after that a single call at a time tests each cooldown,
    # rather than all twenty trying again together.
    assert slack.count_429("chat.update") == len(timestamps) + len(storm_hits) - 1


async def test_pacing_keeps_a_burst_under_the_configured_limit_with_no_429_at_all(
    slack: SlackEmulator, http: aiohttp.ClientSession
) -> None:
    timestamps = await bot_messages(slack, http, 1)
    slack.limits.configure(window_seconds=1.0, method_limits={"chat.update": 5})
    budget = SlackCallBudget({"chat.update": Pace(5, 1.0)}, margin_seconds=0.2)
    client = budgeted(slack, http, budget)

    started = time.monotonic()
    await asyncio.gather(*(client.chat_update(channel=GENERAL, ts=timestamps[0], text=f"v{n}") for n in range(12)))
    elapsed = time.monotonic() - started

    assert slack.count_429() == 0
    assert len(slack.calls("chat.update")) == 12
    # Twelve calls at five per window take three windows: the pace, not luck, kept Slack happy.
    assert elapsed >= 2 * 1.0


async def test_a_cooldown_one_coroutine_learns_of_holds_back_another_coroutine_on_its_own_client(
    slack: SlackEmulator, http: aiohttp.ClientSession
) -> None:
    [ts] = await bot_messages(slack, http, 1)
    slack.limits.storm("chat.update", 1, retry_after=2)
    budget = SlackCallBudget(paces={})
    first, second = budgeted(slack, http, budget), budgeted(slack, http, budget)

    rate_limited = asyncio.create_task(first.chat_update(channel=GENERAL, ts=ts, text="from the first"))
    await slack.wait_for(lambda: budget.cooldown_remaining("chat.update") > 0, what="the first call's 429")
    await asyncio.gather(rate_limited, second.chat_update(channel=GENERAL, ts=ts, text="from the second"))

    [hit] = slack.rate_limited("chat.update")
    [second_call] = [c for c in slack.calls("chat.update") if c.args.get("text") == "from the second"]
    assert second_call.ok and second_call.at >= hit.at + hit.retry_after - 0.01
    assert slack.violations() == []


async def test_post_message_is_paced_per_channel(slack: SlackEmulator, http: aiohttp.ClientSession) -> None:
    budget = SlackCallBudget({"chat.postMessage": Pace(2, 1.0, per_channel=True)}, margin_seconds=0.1)
    client = budgeted(slack, http, budget)
    for n in range(2):
        await client.chat_postMessage(channel=GENERAL, text=f"general {n}")

    assert budget.wait_time("chat.postMessage", GENERAL) > 0.5
    assert budget.wait_time("chat.postMessage", OPS) == 0
    started = time.monotonic()
    await client.chat_postMessage(channel=OPS, text="ops goes at once")
    assert time.monotonic() - started < 0.5
    await client.chat_postMessage(channel=GENERAL, text="general waits its turn")
    assert time.monotonic() - started >= 0.5
    assert slack.count_429() == 0


# ---------------------------------------------------------------------- the budget alone


async def test_after_a_cooldown_one_caller_goes_first_and_the_rest_follow_its_answer() -> None:
    budget = SlackCallBudget(paces={})
    budget.note_rate_limited("chat.update", 0.2)
    assert 0.1 < budget.cooldown_remaining("chat.update") <= 0.2

    callers = [asyncio.create_task(budget.acquire("chat.update")) for _ in range(3)]
    await asyncio.sleep(0.1)
    assert not any(c.done() for c in callers)
    await asyncio.sleep(0.2)
    assert [c.done() for c in callers].count(True) == 1

    budget.note_answered("chat.update")
    await asyncio.wait_for(asyncio.gather(*callers), timeout=1)
    assert budget.cooldown_remaining("chat.update") == 0


async def test_a_caller_that_gets_no_answer_hands_the_first_turn_to_the_next() -> None:
    budget = SlackCallBudget(paces={})
    budget.note_rate_limited("views.update", 0.05)
    callers = {asyncio.create_task(budget.acquire("views.update")) for _ in range(2)}
    first, waiting = await asyncio.wait(callers, timeout=1, return_when=asyncio.FIRST_COMPLETED)
    await asyncio.sleep(0.05)
    assert len(first) == 1 and not any(c.done() for c in waiting)

    budget.abandon("views.update")
    await asyncio.wait_for(asyncio.gather(*waiting), timeout=1)


async def test_a_cancelled_wait_gives_back_its_slot() -> None:
    budget = SlackCallBudget({"chat.update": Pace(1, 5.0)}, margin_seconds=0)
    await budget.acquire("chat.update")
    waiting = asyncio.create_task(budget.acquire("chat.update"))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    # Only the call that went counts: the next caller waits for one window, not two.
    assert 4.5 < budget.wait_time("chat.update") <= 5.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"Retry-After": "30"}, 30.0), ({"retry-after": ["2"]}, 2.0), ({}, 1.0), ({"Retry-After": "soon"}, 1.0)],
)
def test_retry_after_is_read_from_either_header_shape_and_defaults_to_one_second(
    headers: dict[str, object], seconds: float
) -> None:
    assert retry_after_seconds(headers) == seconds
