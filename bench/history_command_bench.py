"""``/cloudops history`` through the real app against the store query it makes, on 100,000 records, in one run.

1. Generate the records (``bench.history_data``, fixed seed), with Slack member ids for the people in them,
   and bulk-load them into an ``EdgeHistoryStore`` in a temporary directory (``bulk_load``: the same points
   ``store.create`` writes). The emulated workspace gets those people and the dataset's 30 channels; each
   person is in the channels where they started a conversation and in a random share of the others, a third
   of the channels are private.
2. The real app (``create_app`` with the ``commands`` listeners and a ``BotContext`` on that store) is served
   over HTTP on loopback and driven by ``SlackDriver`` with signed slash commands. Per query shape and
   repetition:
   (a) ``/cloudops history …``: the ack time (``elapsed`` of the HTTP request) and the answer time, from just
       before the command is sent to the moment the emulator receives the ephemeral answer on the
       response_url (the emulator stamps each post with its clock on arrival; the same clock is read before
       sending);
   (b) the store query the command makes for that request: ``store.latest``/``store.search`` with the same
       ``RecordFilter`` (the person's channels from the workspace, the query's filters) and limit
       (``PAGE_SIZE + 1``), timed around the ``await``.
   (a) and (b) take turns (the order alternates per repetition) so that noise hits both. Before timing,
   each shape runs once with a recording store to check that the command made exactly one store call with
   that filter and limit, and that the answer shows the first records of the raw result.
   Bolt sends the ack only when its listener runner next checks for it (every 10 ms), while the listener
   goes on with the answer at once: the answer can reach the response_url before the ack reaches Slack.
3. The difference is the app's work: signature check, parsing, ``users.conversations`` (the membership
   lookup), rendering, the ack and the response_url post, all in this one event loop with the emulator.

The requester is not an approver, so command-line records are not looked for (one store call). The
emulator's rate limits are off: 120+ commands in a minute would exceed ``users.conversations``' tier 3,
and waiting out a Retry-After is not the app's work.

Run from the repository root: ``python -m bench.history_command_bench [--records 100000] [--reps 30]``.
Progress goes to stderr; the report (markdown) to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.history_data import Dataset, bulk_load, edge_writer, worker_pool
from engine.history.records import ExecutionRecord

SIGNING_SECRET = "bench-signing-secret-0123456789ab"
COMMAND = "/cloudops"
# Chance that a person is in a channel where they started no conversation.
MEMBERSHIP_SHARE = 0.4


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def slack_user_id(number: int, name: str) -> str:
    return f"U{number:02d}{name.upper()}"[:21]


class SlackDataset(Dataset):
    """The generated records with Slack member ids for requesters, approvers and cancellers."""

    def __init__(self, records: int, *, seed: int) -> None:
        super().__init__(records, seed=seed)
        self.member_ids = {name: slack_user_id(n, name) for n, name in enumerate(self.users)}

    def record(self, index: int) -> ExecutionRecord:
        record = super().record(index)
        ids = self.member_ids
        update: dict[str, Any] = {
            "requested_by": ids[record.requested_by],
            "approvals": [a.model_copy(update={"user": ids[a.user]}) for a in record.approvals],
        }
        if record.cancelled_by is not None:
            update["cancelled_by"] = ids[record.cancelled_by]
        return record.model_copy(update=update)


def memberships(dataset: SlackDataset, seed: int) -> dict[str, set[str]]:
    """channel id -> member ids: conversation owners in their channels, plus a random share of everyone."""
    rng = random.Random(f"{seed}:members")
    members: dict[str, set[str]] = {channel: set() for channel in dataset.channels}
    for conversation in dataset.conversations:
        if conversation.channel is not None:
            members[conversation.channel].add(dataset.member_ids[conversation.owner])
    for channel in dataset.channels:
        for member in dataset.member_ids.values():
            if rng.random() < MEMBERSHIP_SHARE:
                members[channel].add(member)
    return members


# -- timing ---------------------------------------------------------------------------------------------------


@dataclass
class Series:
    values: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.values)

    @property
    def p95(self) -> float:
        if len(self.values) < 2:
            return self.values[0]
        return statistics.quantiles(self.values, n=100, method="inclusive")[94]


@dataclass
class Shape:
    title: str
    text: str  # what follows "/cloudops history"
    ack: Series = field(default_factory=Series)
    answer: Series = field(default_factory=Series)
    store: Series = field(default_factory=Series)
    shown: int = 0
    raw_found: int = 0
    check: str = ""


class RecordingStore:
    """The store, with every ``latest``/``search`` call noted: used once per shape, before timing."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.calls: list[tuple[str, str | None, Any, int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def latest(self, limit: int = 20, filters: Any = None) -> Any:
        self.calls.append(("latest", None, filters, limit))
        return await self.store.latest(limit, filters)

    async def search(self, text: str, filters: Any = None, limit: int = 10) -> Any:
        self.calls.append(("search", text, filters, limit))
        return await self.store.search(text, filters, limit)


# -- the run ------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, dataset: SlackDataset, pool: Any, base: Path) -> dict[str, Any]:
    from bot.settings import load_bot_settings
    from bot.slack.app import create_app
    from bot.slack.blocks.history import ENTRY_BLOCK_PREFIX
    from bot.slack.context import BotContext
    from bot.slack.history_query import PAGE_SIZE, as_of_now, parse_history_query
    from bot.slack.listeners import commands
    from bot.slack.server import base_url, start_http
    from engine.config import EngineSettings
    from engine.history import EdgeHistoryStore
    from engine.policy import Policy
    from engine.risk import Risk
    from tests.slack_emulator import RateLimitConfig, SlackDriver, SlackEmulator

    report: dict[str, Any] = {}
    data_dir = base / "data"
    log(f"loading {args.records:,} records (bulk)")
    store = await EdgeHistoryStore(data_dir).open()
    started = time.perf_counter()
    await bulk_load(pool, range(args.records), [edge_writer(store)], progress=_progress(args.records))
    await store.run_in_shard_thread(lambda records, audit: (records.flush(), audit.flush()))
    report["load_seconds"] = time.perf_counter() - started
    pool.close()
    pool.join()
    await store.close()
    store = await EdgeHistoryStore(data_dir).open()
    report["stored"] = await store.count()
    log(f"  {report['stored']:,} records in {report['load_seconds']:.1f} s")

    ids = dataset.member_ids
    requester = ids[dataset.users[0]]  # the person who asks most
    colleague = ids[dataset.users[1]]
    approver = ids[dataset.users[2]]
    policy = Policy(approvers={Risk.MODIFY: [approver], Risk.DESTRUCTIVE: [approver]})
    members = memberships(dataset, args.seed)
    requester_channels = sorted(c for c, m in members.items() if requester in m)
    here = requester_channels[0]
    report["requester_channels"] = (len(requester_channels), len(dataset.channels))

    shapes = [
        Shape("latest, no filter", ""),
        Shape("`status:failed`", "status:failed"),
        Shape("`user:<@U…> risk:destructive`", f"user:<@{colleague}> risk:destructive"),
        Shape("text search `terminate staging`", "terminate staging"),
    ]
    need = PAGE_SIZE + 1

    def request_of(shape: Shape) -> tuple[str, Any]:
        """The store request the command makes for ``shape``: its text and RecordFilter."""
        query = parse_history_query(shape.text, requester=requester, here=here, as_of=as_of_now())
        return query.text, query.record_filter({here, *requester_channels})

    async def raw(text: str, filters: Any) -> list[str]:
        if text:
            return [str(hit.record.id) for hit in await store.search(text, filters, need)]
        return [str(r.id) for r in await store.latest(need, filters)]

    async with SlackEmulator(seed=False, rate_limits=RateLimitConfig(enabled=False)) as slack:
        for name in dataset.users:
            slack.add_user(name, user_id=ids[name], real_name=name.title())
        for n, channel in enumerate(dataset.channels):
            slack.add_channel(f"ops-{n:02d}", channel_id=channel, is_private=n % 3 == 2, members=members[channel])
        settings = load_bot_settings(
            _env_file=None,
            slack_bot_token=slack.bot_token,
            slack_app_token=None,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack.api_url,
            policy_path=None,
        )
        bot = BotContext.build(policy=policy, store=store, engine_settings=EngineSettings(_env_file=None))
        app = create_app(settings, listener_groups=[commands], context=bot)
        runner = await start_http(app, "127.0.0.1", 0)
        try:
            async with SlackDriver(base_url(runner), SIGNING_SECRET, slack) as driver:

                async def command(shape: Shape) -> tuple[float, float, dict[str, Any]]:
                    posts = slack.workspace.response_url_posts
                    seen = len(posts)
                    sent = slack.clock.now()
                    interaction = await driver.slash_command(requester, here, COMMAND, f"history {shape.text}")
                    if interaction.response.status != 200:
                        raise RuntimeError(f"ack failed: {interaction.response.status} {interaction.response.body}")
                    key = (interaction.response_url or "").rsplit("/", 1)[-1]
                    deadline = time.monotonic() + 10
                    while True:
                        post = next((p for p in posts[seen:] if p.response_url_id == key), None)
                        if post is not None:
                            break
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"no answer on the response_url for {shape.text!r}")
                        await asyncio.sleep(0.001)
                    if post.outcome != "posted_ephemeral":
                        log(f"  note: response_url outcome {post.outcome!r}")
                    return interaction.response.elapsed, post.at - sent, post.payload

                def shown(payload: dict[str, Any]) -> list[str]:
                    return [
                        str(b["block_id"]).removeprefix(ENTRY_BLOCK_PREFIX)
                        for b in payload.get("blocks") or []
                        if str(b.get("block_id", "")).startswith(ENTRY_BLOCK_PREFIX)
                    ]

                log("checking each shape: one store call, same filter and limit, same records shown")
                recording = RecordingStore(store)
                bot.store = recording  # type: ignore[assignment]
                for shape in shapes:
                    recording.calls.clear()
                    _, _, payload = await command(shape)
                    text, filters = request_of(shape)
                    found = await raw(text, filters)
                    calls = recording.calls
                    kind = "search" if text else "latest"
                    same_call = (
                        len(calls) == 1
                        and calls[0][0] == kind
                        and calls[0][1] == (text or None)
                        and calls[0][3] == need
                        and calls[0][2].model_dump(exclude={"until"}) == filters.model_dump(exclude={"until"})
                    )
                    ids_shown = shown(payload)
                    same_records = ids_shown == found[:PAGE_SIZE]
                    shape.shown, shape.raw_found = len(ids_shown), len(found)
                    shape.check = (
                        "ok"
                        if same_call and same_records
                        else (f"call {'ok' if same_call else 'DIFFERS'}, records {'ok' if same_records else 'DIFFER'}")
                    )
                    log(f"  {shape.title}: {shape.check} ({len(ids_shown)} shown, {len(calls)} store call(s))")
                bot.store = store

                log(f"warm-up: {args.warmup} untimed rounds")
                for _ in range(args.warmup):
                    for shape in shapes:
                        await command(shape)
                        await raw(*request_of(shape))

                conversations_before = len(slack.calls("users.conversations"))
                log(f"timing: {args.reps} repetitions of {len(shapes)} shapes, app and store taking turns")
                for rep in range(args.reps):
                    for shape in shapes:
                        text, filters = request_of(shape)

                        async def app_side(shape: Shape = shape) -> None:
                            ack, answer, _ = await command(shape)
                            shape.ack.values.append(ack)
                            shape.answer.values.append(answer)

                        async def store_side(shape: Shape = shape, text: str = text, filters: Any = filters) -> None:
                            mark = time.perf_counter()
                            await raw(text, filters)
                            shape.store.values.append(time.perf_counter() - mark)

                        sides = (app_side, store_side) if rep % 2 == 0 else (store_side, app_side)
                        for side in sides:
                            await side()
                    if (rep + 1) % 10 == 0:
                        log(f"  {rep + 1}/{args.reps}")
                report["membership_calls"] = len(slack.calls("users.conversations")) - conversations_before
                report["rate_limited"] = slack.count_429()
                report["failed_calls"] = [c.method for c in slack.calls() if c.ok is False]
        finally:
            await runner.cleanup()
            await store.close()
    report["shapes"] = shapes
    report["requester"] = requester
    report["load_average"] = os.getloadavg()
    return report


def _progress(total: int) -> Any:
    step = max(total // 10, 1)
    started = time.perf_counter()

    def show(done: int) -> None:
        if done % step < 250 or done == total:
            log(f"  {done:,}/{total:,} ({time.perf_counter() - started:.0f} s)")

    return show


# -- the report -----------------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:.2f} ms" if abs(value) < 10 else f"{value:.1f} ms"


def print_report(args: argparse.Namespace, report: dict[str, Any]) -> None:
    shapes: Sequence[Shape] = report["shapes"]
    in_channels, all_channels = report["requester_channels"]
    print(f"## `/cloudops history` through the app vs. the store query, {report['stored']:,} records\n")
    print(
        f"Edge store bulk-loaded in {report['load_seconds']:.1f} s; requester in {in_channels} of "
        f"{all_channels} channels (not an approver: one store call per command); {args.reps} timed repetitions "
        f"per shape after {args.warmup} warm-up round(s), app and store alternating. Python "
        f"{platform.python_version()}, {os.cpu_count()} CPU(s), load average after "
        f"{', '.join(f'{x:.2f}' for x in report['load_average'])}.\n"
    )
    print(
        "| Query | ack p50 (p95) | answer on response_url p50 (p95) | store query p50 (p95) "
        "| answer / store, p50 (p95) | answer - store, p50 (p95) | shown / store found | check |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for s in shapes:
        print(
            f"| {s.title} | {ms(s.ack.p50)} ({ms(s.ack.p95)}) | {ms(s.answer.p50)} ({ms(s.answer.p95)}) "
            f"| {ms(s.store.p50)} ({ms(s.store.p95)}) | {s.answer.p50 / s.store.p50:.1f}x "
            f"({s.answer.p95 / s.store.p95:.1f}x) | {ms(s.answer.p50 - s.store.p50)} "
            f"({ms(s.answer.p95 - s.store.p95)}) | {s.shown} / {s.raw_found} | {s.check} |"
        )
    print()
    print(
        f"`users.conversations` calls while timing: {report['membership_calls']} "
        f"(one per command); 429s: {report['rate_limited']}; failed Slack calls: {len(report['failed_calls'])}"
        + (f" ({', '.join(sorted(set(report['failed_calls'])))})" if report["failed_calls"] else "")
        + "."
    )
    print(
        "\nack: the slash command's HTTP request, sent to answered. answer: from just before sending to the "
        "emulator receiving the ephemeral answer on the response_url (emulator clock at both ends). store "
        "query: `store.latest`/`store.search` with the command's RecordFilter and limit, awaited in the same "
        "event loop. The difference is the app's work (membership lookup, rendering, the ack and the Slack "
        "round trips) plus the emulator's share of the loop."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=30, help="timed repetitions per query shape")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds of every shape first")
    parser.add_argument("--seed", type=int, default=20250601)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the store (default: a temp dir)")
    parser.add_argument("--log-level", default="ERROR", help="logging level of the app (default: ERROR)")
    args = parser.parse_args()
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr)

    base = Path(tempfile.mkdtemp(prefix="cloudops-history-command-bench-", dir=args.dir))
    dataset = SlackDataset(args.records, seed=args.seed)
    # Fork the record builders before any Edge shard (and its threads) exists in this process.
    pool = worker_pool(dataset, os.cpu_count() or 1)
    try:
        report = asyncio.run(run(args, dataset, pool, base))
    finally:
        pool.terminate()
        shutil.rmtree(base, ignore_errors=True)
    print_report(args, report)


if __name__ == "__main__":
    main()
