"""Interaction ack latency under concurrent button clicks: the real CloudOps app against a bare Bolt app.

Both apps are served the same way (``bot.slack.server.start_http``: aiohttp, ``POST /slack/events``, Bolt's
signature verification with the same signing secret) on 127.0.0.1, in this process, in the same run.

(a) ours: ``create_app`` with the default (real) listener groups and a real ``BotContext`` (an Edge history
    store in a temporary directory, a policy), the Slack emulator as Slack. Plans are posted first through
    signed ``app_mention`` events (``aws s3api create-bucket ...``, a modify plan that needs one approval), so
    the clicks land on real plan cards. Each click is Approve by a channel member who is not an approver:
    after the ack the app reads the record, records the refused vote in the store (a versioned transition
    plus an audit-chain entry, retried when another click's write got there first) and tells the user why
    with an ephemeral message (``chat.postEphemeral``).
(b) bare: an ``AsyncApp`` whose only listeners ack the four plan-card action ids.

Each round fires N signed ``block_actions`` POSTs at once (one aiohttp ``ClientSession``, ``asyncio.gather``)
and times each from sending to receiving the HTTP response (the ack). Rounds alternate a, b, a, b, ...;
after every round the bench waits for all listener work started by it to finish before the next round, so
no round pays for another's work; every round starts after a full garbage collection and once other
processes leave the shared machine nearly idle (see ``MachineLoad``). The emulator's
rate limits are off so that every refusal's ephemeral is delivered at once (the heavier case for the app);
the app's own call budget is left as it ships.

Run from the repository root: python -m bench.ack_latency [--clicks 200] [--rounds 5] [--plans 10]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import BotSettings, load_bot_settings
from bot.slack.app import create_app
from bot.slack.blocks import APPROVE, PLAN_ACTION_IDS, parse_action_value
from bot.slack.context import BotContext
from bot.slack.server import EVENTS_PATH, base_url, start_http
from engine.config import EngineSettings
from engine.history import HistorySettings, HistoryStore, RecordStatus, open_history_store
from engine.policy import Policy
from engine.risk import Risk
from tests.slack_emulator import AppResponse, Interaction, RateLimitConfig, Seed, SlackDriver, SlackEmulator
from tests.slack_emulator.driver import SLACK_USER_AGENT, SignedBody
from tests.slack_emulator.state import Message

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TARGET_RATIO = 1.2
BACKGROUND_TIMEOUT_SECONDS = 300.0
SERVER_KEEPALIVE_SECONDS = 75.0  # aiohttp.web's default keepalive_timeout, which start_http keeps
# Before each round, wait (at most QUIET_WAIT_SECONDS) until other processes use at most this many cores.
QUIET_CORES = 0.2
QUIET_WAIT_SECONDS = 20.0

# Modify plans need one approval from alice or admin; nobody else may approve. Approvers are named users, not
# a user group: the group lookup is cached for a minute, and when it runs out while a round is in flight every
# click of the round calls usergroups.users.list through the app's Tier 2 pace (18 a minute), so a round's
# work after the acks would take minutes.
POLICY = Policy(
    approvers={Risk.MODIFY: [Seed.ALICE, Seed.ADMIN], Risk.DESTRUCTIVE: [Seed.ADMIN, Seed.ALICE]},
    min_approvals={Risk.READ_ONLY: 0, Risk.MODIFY: 1, Risk.DESTRUCTIVE: 2},
    self_approval={Risk.READ_ONLY: True, Risk.MODIFY: True, Risk.DESTRUCTIVE: False},
)


# ---------------------------------------------------------------------------------------------------------
# Clicks, built by the emulator's driver exactly as for a real click, signed when fired


class ClickBuilder(SlackDriver):
    """The driver's ``block_action`` payloads (trigger id and response URL issued by the emulator), not sent."""

    async def _interact(
        self, payload: dict[str, Any], *, trigger_id: str | None, response_url: str | None
    ) -> Interaction:
        unsent = AppResponse(status=0, headers={}, body="", elapsed=0.0)
        return Interaction(response=unsent, payload=payload, trigger_id=trigger_id, response_url=response_url)

    async def click_body(self, user: str, channel: str, message_ts: str, action_id: str) -> dict[str, str]:
        interaction = await self.block_action(user, channel, message_ts, action_id)
        return {"payload": json.dumps(interaction.payload)}


@dataclass
class Click:
    user: str
    channel: str
    message_ts: str
    action_id: str


async def fire(
    session: aiohttp.ClientSession, url: str, signer: SlackDriver, forms: Sequence[dict[str, str]]
) -> list[tuple[int, float]]:
    """POST every form at once, each signed as Slack signs; (status, seconds to the response) per request."""
    signed = [signer.sign_form(form) for form in forms]
    start_line = asyncio.Event()

    async def one(body: SignedBody) -> tuple[int, float]:
        headers = {
            "Content-Type": body.content_type,
            "User-Agent": SLACK_USER_AGENT,
            "X-Slack-Request-Timestamp": body.timestamp,
            "X-Slack-Signature": body.signature,
        }
        await start_line.wait()
        started = time.perf_counter()
        async with session.post(url, data=body.body, headers=headers) as response:
            await response.read()
            return response.status, time.perf_counter() - started

    requests = [asyncio.ensure_future(one(body)) for body in signed]
    await asyncio.sleep(0)  # every request is waiting at the start line
    start_line.set()
    return list(await asyncio.gather(*requests))


# ---------------------------------------------------------------------------------------------------------
# Work Bolt runs after the ack


def listener_tasks() -> set[asyncio.Task[Any]]:
    """Bolt's tasks running listeners after their ack (``AsyncioListenerRunner``'s fire-and-forget futures)."""
    return {
        task
        for task in asyncio.all_tasks()
        if not task.done() and "run_ack_function_asynchronously" in getattr(task.get_coro(), "__qualname__", "")
    }


async def drain(timeout: float) -> tuple[float, int]:
    """Wait for every listener task to finish; (seconds waited, tasks cancelled because they overran)."""
    started = time.perf_counter()
    deadline = started + timeout
    cancelled = 0
    while pending := listener_tasks():
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            cancelled += len(pending)
            break
        await asyncio.wait(pending, timeout=remaining)
    return time.perf_counter() - started, cancelled


class ErrorCounter(logging.Handler):
    """Counts error logs (the app's unhandled-listener-error handler logs there)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.count = 0
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if self.first is None:
            lines = record.getMessage().strip().splitlines()
            self.first = lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"


# ---------------------------------------------------------------------------------------------------------
# The two apps


def bare_app(slack: SlackEmulator) -> AsyncApp:
    app = AsyncApp(
        name="bare",
        client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url),
        signing_secret=SIGNING_SECRET,
    )

    async def just_ack(ack: AsyncAck) -> None:
        await ack()

    for action_id in PLAN_ACTION_IDS:
        app.action(action_id)(just_ack)
    return app


def settings_for(slack: SlackEmulator) -> BotSettings:
    return load_bot_settings(
        _env_file=None,
        slack_bot_token=slack.bot_token,
        slack_app_token=None,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        policy_path=None,
    )


def _is_plan_card(message: Message) -> bool:
    return any(block.get("block_id") == "plan_actions" for block in message.blocks or [])


async def post_plan(driver: SlackDriver, slack: SlackEmulator, store: HistoryStore, channel: str, n: int) -> Message:
    """Ask ours for a plan with a signed app_mention; return the plan card once its record is linked to it."""
    delivery = await driver.app_mention(Seed.BOB, channel, f"aws s3api create-bucket --bucket ack-bench-{n}")
    if delivery.response.status != 200 or delivery.message is None:
        raise RuntimeError(f"the mention was answered {delivery.response.status}")
    root = delivery.message.ts
    card = await slack.wait_for(
        lambda: next((m for m in slack.thread(channel, root)[1:] if m.bot_id and _is_plan_card(m)), None),
        timeout=30,
        what="plan card",
    )
    value = next(
        element["value"]
        for block in card.blocks or []
        for element in block.get("elements", []) or []
        if isinstance(element, dict) and element.get("action_id") == APPROVE
    )
    record_id = parse_action_value(value).record_id

    async def linked() -> Any:
        record = await store.get(record_id)
        return record if record is not None and record.link else None

    record = await slack.wait_for(linked, timeout=30, what="plan linked to its card")
    if record.status is not RecordStatus.PENDING_APPROVAL:
        raise RuntimeError(f"the plan is {record.status.value}, not pending approval")
    return card


# ---------------------------------------------------------------------------------------------------------
# Measuring


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Side:
    name: str
    url: str
    samples: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    round_p50: list[float] = field(default_factory=list)
    round_p99: list[float] = field(default_factory=list)
    drain_seconds: list[float] = field(default_factory=list)
    cancelled: int = 0
    new_connections: int = 0
    busy_starts: int = 0
    round_others: list[float] = field(default_factory=list)


class MachineLoad:
    """CPU used by other processes (whole machine from /proc/stat minus this process), in cores."""

    def __init__(self) -> None:
        self.available = os.path.exists("/proc/stat")
        self._tick = os.sysconf("SC_CLK_TCK") if self.available else 100
        self._cores = os.cpu_count() or 1
        self._mark: tuple[int, int, float] | None = None

    def _sample(self) -> tuple[int, int, float]:
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:9]]
        idle = values[3] + values[4]
        own = os.times()
        return sum(values) - idle, sum(values), own.user + own.system

    def start(self) -> None:
        self._mark = self._sample() if self.available else None

    def others(self) -> float:
        """Cores used by other processes since ``start()``."""
        if self._mark is None:
            return float("nan")
        busy, total, own = self._sample()
        elapsed = total - self._mark[1]
        if elapsed <= 0:
            return 0.0
        others = (busy - self._mark[0]) - (own - self._mark[2]) * self._tick
        return max(0.0, others / elapsed * self._cores)

    async def quiet(self) -> bool:
        """Wait until other processes leave the machine nearly idle; False if they never did in time."""
        if not self.available:
            return True
        deadline = time.perf_counter() + QUIET_WAIT_SECONDS
        while True:
            self.start()
            await asyncio.sleep(0.2)
            if self.others() <= QUIET_CORES:
                return True
            if time.perf_counter() >= deadline:
                return False


class ConnectionCounter:
    """Counts the TCP connections the client opens while a round is being fired."""

    def __init__(self) -> None:
        self.opened = 0
        self.trace = aiohttp.TraceConfig()
        self.trace.on_connection_create_end.append(self._opened)

    async def _opened(self, session: Any, context: Any, params: Any) -> None:
        self.opened += 1


async def run_round(
    side: Side,
    session: aiohttp.ClientSession,
    builder: ClickBuilder,
    clicks: Sequence[Click],
    connections: ConnectionCounter,
    load: MachineLoad,
    *,
    record: bool,
) -> None:
    forms = [await builder.click_body(c.user, c.channel, c.message_ts, c.action_id) for c in clicks]
    # The whole process (client, emulator, both apps) shares one heap: a full collection that happens to fall
    # in a round would land on whichever side is being measured. Every round starts from a collected heap.
    gc.collect()
    # The machine is shared: a round starts once other processes leave it (nearly) idle.
    quiet = await load.quiet()
    opened_before = connections.opened
    load.start()
    results = await fire(session, side.url, builder, forms)
    others = load.others()
    opened = connections.opened - opened_before
    waited, cancelled = await drain(BACKGROUND_TIMEOUT_SECONDS)
    elapsed = [seconds for _, seconds in results]
    print(
        f"  {side.name}: {len(clicks)} clicks, p50 {ms(percentile(elapsed, 50))} ms, "
        f"{opened} new connections, other processes {others:.2f} cores{'' if quiet else ' (machine busy)'}, "
        f"work after the acks {waited:.2f}s{'' if record else ' (warm-up)'}",
        file=sys.stderr,
        flush=True,
    )
    if not record:
        return
    side.samples.extend(elapsed)
    for status, _ in results:
        side.statuses[status] = side.statuses.get(status, 0) + 1
    side.round_p50.append(percentile(elapsed, 50))
    side.round_p99.append(percentile(elapsed, 99))
    side.drain_seconds.append(waited)
    side.cancelled += cancelled
    side.new_connections += opened
    side.busy_starts += not quiet
    side.round_others.append(others)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=200, help="concurrent clicks per round (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per side (default 5)")
    parser.add_argument("--plans", type=int, default=10, help="plan cards the clicks are spread over (default 10)")
    args = parser.parse_args()
    if args.clicks < 1 or args.rounds < 1 or not 1 <= args.plans <= args.clicks:
        parser.error("need clicks >= 1, rounds >= 1 and 1 <= plans <= clicks")

    errors = ErrorCounter()
    logging.getLogger().addHandler(errors)
    with tempfile.TemporaryDirectory(prefix="ack-bench-") as tmp:
        async with SlackEmulator(rate_limits=RateLimitConfig(enabled=False), trigger_ttl_seconds=600) as slack:
            clickers = [slack.add_user(f"clicker{i:03d}").id for i in range(args.clicks)]
            channel = slack.add_channel("ack-bench", members=[Seed.ADMIN, Seed.ALICE, Seed.BOB, *clickers]).id
            store = await open_history_store(HistorySettings(_env_file=None, data_dir=Path(tmp), qdrant_url=None))
            runners: list[web.AppRunner] = []
            try:
                bot = BotContext.build(policy=POLICY, store=store, engine_settings=EngineSettings(_env_file=None))
                ours_app = create_app(settings_for(slack), context=bot)
                runners.append(await start_http(ours_app, "127.0.0.1", 0))
                runners.append(await start_http(bare_app(slack), "127.0.0.1", 0))
                ours = Side("ours (CloudOps app)", base_url(runners[0]) + EVENTS_PATH)
                bare = Side("bare Bolt AsyncApp", base_url(runners[1]) + EVENTS_PATH)

                async with SlackDriver(ours.url, SIGNING_SECRET, slack) as mentions:
                    cards = [await post_plan(mentions, slack, store, channel, n) for n in range(args.plans)]
                clicks = [Click(user, channel, cards[i % len(cards)].ts, APPROVE) for i, user in enumerate(clickers)]
                ephemerals_before = len(slack.ephemerals(channel=channel))

                # Keep-alive for longer than a round's work after the acks (aiohttp's client default is 15 s), so
                # that no round opens its connections anew; the server keeps idle connections for 75 s.
                connector = aiohttp.TCPConnector(
                    limit=2 * args.clicks + 10, limit_per_host=0, keepalive_timeout=SERVER_KEEPALIVE_SECONDS
                )
                timeout = aiohttp.ClientTimeout(total=60)
                connections = ConnectionCounter()
                load = MachineLoad()
                async with (
                    aiohttp.ClientSession(
                        connector=connector, timeout=timeout, trace_configs=[connections.trace]
                    ) as session,
                    ClickBuilder(ours.url, SIGNING_SECRET, slack) as builder,
                ):
                    # Warm-up, not measured: one click each (Bolt's first auth.test), then one full round each so
                    # that both sides start the measured rounds with open keep-alive connections.
                    for side in (ours, bare):
                        await run_round(side, session, builder, clicks[:1], connections, load, record=False)
                        await run_round(side, session, builder, clicks, connections, load, record=False)
                    for _ in range(args.rounds):
                        for side in (ours, bare):
                            await run_round(side, session, builder, clicks, connections, load, record=True)
                warmup_clicks = 1 + args.clicks
                clicker_ids = set(clickers)
                refused = [
                    e
                    for e in slack.ephemerals(channel=channel)[ephemerals_before:]
                    if "Not counted" in e.text and e.user in clicker_ids
                ]
                expected_refusals = warmup_clicks + args.rounds * args.clicks
            finally:
                # Listener work still running (none after a drain) is cancelled before its store closes.
                await drain(0)
                for runner in runners:
                    await runner.cleanup()
                await store.close()
    logging.getLogger().removeHandler(errors)

    report(args, ours, bare, len(refused), expected_refusals, errors)


def report(
    args: argparse.Namespace, ours: Side, bare: Side, refused: int, expected_refusals: int, errors: ErrorCounter
) -> None:
    p50_a, p99_a = percentile(ours.samples, 50), percentile(ours.samples, 99)
    p50_b, p99_b = percentile(bare.samples, 50), percentile(bare.samples, 99)
    r50, r99 = p50_a / p50_b, p99_a / p99_b
    met = r50 <= TARGET_RATIO and r99 <= TARGET_RATIO
    print(
        f"{args.clicks} concurrent signed block_actions POSTs per round, {args.rounds} measured rounds per side "
        f"(alternating ours/bare, after one unmeasured warm-up round each); clicks: Approve on {args.plans} "
        f"real plan cards by {args.clicks} channel members who are not approvers.\n"
    )
    print("| setup | samples | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for side in (ours, bare):
        print(
            f"| {side.name} | {len(side.samples)} | {ms(percentile(side.samples, 50))} | "
            f"{ms(percentile(side.samples, 99))} | {ms(max(side.samples))} |"
        )
    print(f"| ratio ours/bare | | {r50:.2f} | {r99:.2f} | |")
    print(
        f"| target (ratio <= {TARGET_RATIO} for p50 and p99) | | {'met' if r50 <= TARGET_RATIO else 'missed'} | "
        f"{'met' if r99 <= TARGET_RATIO else 'missed'} | |"
    )
    print()
    print("per round p50 / p99 ms:")
    for i in range(len(ours.round_p50)):
        print(
            f"  round {i + 1}: ours {ms(ours.round_p50[i])} / {ms(ours.round_p99[i])}, "
            f"bare {ms(bare.round_p50[i])} / {ms(bare.round_p99[i])}; "
            f"other processes used {ours.round_others[i]:.2f} / {bare.round_others[i]:.2f} cores; "
            f"ours' work after the acks took {ours.drain_seconds[i]:.2f}s more"
        )
    print()
    print(f"HTTP statuses: ours {ours.statuses}, bare {bare.statuses}")
    print(f"connections opened in measured rounds: ours {ours.new_connections}, bare {bare.new_connections}")
    print(
        f"measured rounds started without a quiet machine (other processes > {QUIET_CORES} cores for "
        f"{QUIET_WAIT_SECONDS:.0f}s): ours {ours.busy_starts}, bare {bare.busy_starts}"
    )
    print(f"refusal ephemerals delivered: {refused} of {expected_refusals} clicks")
    cancelled = ours.cancelled + bare.cancelled
    print(f"listener tasks cancelled for overrunning {BACKGROUND_TIMEOUT_SECONDS:.0f}s: {cancelled}")
    print(
        f"error logs (listener errors after the ack): {errors.count}"
        + (f"; first: {errors.first}" if errors.first else "")
    )
    print(f"target met: {'yes' if met else 'no'}")


if __name__ == "__main__":
    asyncio.run(main())
