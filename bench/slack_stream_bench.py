"""How live a streamed command looks in Slack, under Slack's real limits.

One command prints 20,000 lines over 10 seconds into a ``SlackStreamSink``, against the emulated Slack with
its published limits (Tier 3: 50 ``chat.update`` a minute per workspace; ``chat.postMessage`` five per five
seconds per channel) and the app's default ``SlackCallBudget``. Measured:

* the Slack calls made, by method, and how many were answered 429;
* the lag of each line from the moment it was emitted to the first moment Slack showed it: the first post or
  edit of the command's message whose code block holds it, or, for a line that no edit ever showed (the
  message holds only the last few dozen lines), the moment the file with the full output was shared in the
  thread; both are reported, apart and together;
* how far behind the message is: for each line, the first edit showing it or any later line;
* the lag of the final state: from the command's end to the first edit showing it.

Lines are about 46 bytes so that the whole output (0.9 MB) fits the emulator's upload endpoint, which takes
at most 1 MiB in one request.

Run: ``python -m bench.slack_stream_bench`` (``--lines`` and ``--seconds`` to change the command).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import itertools
import math
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from bot.slack.client import BudgetedWebClient, SlackCallBudget
from bot.slack.stream import SlackStreamSink, StreamCommand
from engine.results import CommandResult, RunState
from engine.sinks import CommandStateChanged, OutputLine, PlanStateChanged
from tests.slack_emulator import Seed, SlackEmulator
from tests.slack_emulator.state import MessageVersion

COMMAND = "dump"
_NUMBERED = re.compile(r"^(\d{6}) ")


@dataclass
class Run:
    emitted: list[float]
    ended: float
    slack: SlackEmulator
    sink: SlackStreamSink


def line(n: int) -> str:
    return f"{n:06d} s3://logs/06/{n % 30 + 1:02d}/app-{n:06d}.log.gz {n * 37 % 99991:>5} B"


async def play(sink: SlackStreamSink, count: int, seconds: float) -> list[float]:
    """Emit ``count`` lines evenly over ``seconds`` in fifty batches a second; the wall-clock time of each."""
    batches = max(1, round(seconds * 50))
    size = math.ceil(count / batches)
    emitted: list[float] = []
    start = time.monotonic()
    for first in range(0, count, size):
        for n in range(first, min(first + size, count)):
            await sink.emit(OutputLine(command_id=COMMAND, stream="stdout", line=line(n)))
            emitted.append(time.time())
        target = start + (first + size) / count * seconds
        await asyncio.sleep(max(0.0, target - time.monotonic()))
    return emitted


async def run_once(slack: SlackEmulator, http: aiohttp.ClientSession, count: int, seconds: float) -> Run:
    client = BudgetedWebClient(budget=SlackCallBudget(), token=slack.bot_token, base_url=slack.api_url, session=http)
    root = slack.post_as_user(Seed.ALICE, Seed.GENERAL, "run the plan")
    sink = SlackStreamSink(client, Seed.GENERAL, root.ts, plan=[StreamCommand(COMMAND, "aws s3 ls s3://logs")])
    await sink.emit(PlanStateChanged(state=RunState.RUNNING))
    await sink.emit(CommandStateChanged(command_id=COMMAND, state=RunState.RUNNING))
    emitted = await play(sink, count, seconds)
    ended = time.time()
    result = CommandResult(ok=True, executor="bench", duration_seconds=seconds)
    await sink.emit(CommandStateChanged(command_id=COMMAND, state=RunState.SUCCEEDED, result=result))
    await sink.emit(PlanStateChanged(state=RunState.SUCCEEDED))
    await sink.aclose()
    return Run(emitted=emitted, ended=ended, slack=slack, sink=sink)


def shown_range(version: MessageVersion) -> tuple[int, int] | None:
    """The first and last numbered line in the version's code block."""
    for block in version.blocks or []:
        text = block.get("text", {}).get("text", "")
        if text.startswith("```\n"):
            numbers = [int(m[1]) for raw in text.split("\n") if (m := _NUMBERED.match(html.unescape(raw)))]
            return (numbers[0], numbers[-1]) if numbers else None
    return None


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def lag_row(name: str, lags: Sequence[float]) -> str:
    if not lags:
        return f"| {name} | 0 | | | | |"
    return (
        f"| {name} | {len(lags):,} | {statistics.median(lags):.2f} | {percentile(lags, 0.95):.2f} | "
        f"{max(lags):.2f} | {min(lags):.2f} |"
    )


def report(run: Run, count: int, seconds: float) -> str:
    slack, sink = run.slack, run.sink
    ts = sink.message_ts(COMMAND)
    assert ts is not None and sink.progress_ts is not None
    versions = slack.edit_history(Seed.GENERAL, ts)

    first_seen: dict[int, float] = {}
    # When the message had moved to line n or past it, shown or scrolled out: how far behind the view is.
    caught_up: dict[int, float] = {}
    for version in versions:
        shown = shown_range(version)
        if shown is None:
            continue
        for n in range(shown[0], shown[1] + 1):
            first_seen.setdefault(n, version.at)
        for n in range(len(caught_up), shown[1] + 1):
            caught_up[n] = version.at
    [stored] = slack.files()
    file_at = stored.completed_at
    assert file_at is not None and stored.content is not None
    live = [first_seen[n] - run.emitted[n] for n in range(count) if n in first_seen]
    file_only = [file_at - run.emitted[n] for n in range(count) if n not in first_seen]
    overall = live + file_only
    behind = [caught_up[n] - run.emitted[n] for n in range(count) if n in caught_up]

    final = next(v for v in versions if ":white_check_mark: succeeded" in str(v.blocks))
    progress = slack.edit_history(Seed.GENERAL, sink.progress_ts)
    progress_final = next(v for v in progress if "*Succeeded*" in str(v.blocks))
    edit_gaps = [b.at - a.at for a, b in itertools.pairwise(versions)]

    expected = "".join(line(n) + "\n" for n in range(count)).encode()
    calls = Counter(call.method for call in slack.calls())
    limited = Counter(hit.method for hit in slack.rate_limited())
    lines = [
        f"## Slack streaming: {count:,} lines over {seconds:g} s, real Tier 3 limits",
        "",
        "| Slack method | calls | answered 429 |",
        "|---|---|---|",
        *(f"| `{method}` | {n} | {limited.get(method, 0)} |" for method, n in sorted(calls.items())),
        f"| all | {sum(calls.values())} | {sum(limited.values())} |",
        "",
        f"Retry-After violations: {len(slack.violations())}. File: {len(stored.content):,} bytes, "
        f"{'identical to' if stored.content == expected else 'DIFFERENT FROM'} the emitted lines.",
        "",
        "| line lag (emit → visible in Slack), s | lines | median | p95 | max | min |",
        "|---|---|---|---|---|---|",
        lag_row("shown by an edit of the message", live),
        lag_row("only in the attached file (file shared)", file_only),
        lag_row("all lines, first appearance either way", overall),
        lag_row("view caught up (an edit shows the line or a later one)", behind),
        "",
        "| final state | s after the command ended |",
        "|---|---|",
        f"| command message shows `succeeded` | {final.at - run.ended:.2f} |",
        f"| progress message shows `Succeeded` | {progress_final.at - run.ended:.2f} |",
        f"| file with the full output shared | {file_at - run.ended:.2f} |",
        "",
        f"Command message: {len(versions) - 1} edits after its post, shortest gap between two writes "
        f"{min(edit_gaps):.3f} s; progress message: {len(progress) - 1} edit(s).",
    ]
    return "\n".join(lines)


async def main(count: int, seconds: float) -> None:
    async with SlackEmulator() as slack, aiohttp.ClientSession() as http:
        run = await run_once(slack, http, count, seconds)
        print(report(run, count, seconds))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(main(args.lines, args.seconds))
