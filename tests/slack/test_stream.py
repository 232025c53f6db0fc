"""The Slack output sink against the emulated Slack and its rate limits: live edits, files, fairness, 429s."""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence

import aiohttp
import pytest
from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.slack.client import BudgetedWebClient, SlackCallBudget
from bot.slack.stream import ProgressView, SlackStreamSink, StreamCommand, StreamSettings
from bot.slack.streaming.output import OutputBuffer, TailEntry
from bot.slack.streaming.render import progress_message, tail_code_block
from bot.slack.streaming.state import CommandState, RunProgress, StreamPlan
from engine.commands import ResolvedCommand, ValidatedCommand, ValidatedPlan
from engine.executors.base import ExecutionContext
from engine.orchestrator import Orchestrator
from engine.plan import CommandSpec, ExecutionMode, FailurePolicy, Plan, PlanCommand, SdkCall
from engine.results import CommandResult, RunState
from engine.risk import Risk
from engine.sinks import CommandStateChanged, Event, OutputLine, OutputSink, PlanStateChanged, RetryScheduled
from tests.fakes import Script, ScriptedExecutor
from tests.slack_emulator import Seed, SlackEmulator
from tests.slack_emulator.state import Message, MessageVersion

GENERAL = Seed.GENERAL


# ---------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def client(slack: SlackEmulator, http: aiohttp.ClientSession) -> BudgetedWebClient:
    # Slack's own figures, stated here so the tests do not depend on the emulator's defaults: Tier 3 is 50
    # chat.update calls a minute per workspace; chat.postMessage about one a second per channel.
    slack.limits.configure(
        window_seconds=60.0,
        tier_limits={1: 1, 2: 20, 3: 50, 4: 100},
        post_message_channel_limit=5,
        post_message_channel_window_seconds=5.0,
    )
    return BudgetedWebClient(budget=SlackCallBudget(), token=slack.bot_token, base_url=slack.api_url, session=http)


@pytest.fixture
def thread(slack: SlackEmulator) -> str:
    return slack.post_as_user(Seed.ALICE, GENERAL, "run the plan").ts


async def play(sink: OutputSink, command_id: str, lines: Sequence[str], seconds: float) -> list[float]:
    """Emit ``lines`` evenly over ``seconds`` (fifty batches a second), as a busy command would; the wall-clock
    time each line was emitted."""
    batches = max(1, round(seconds * 50))
    size = math.ceil(len(lines) / batches)
    emitted: list[float] = []
    start = time.monotonic()
    for index in range(0, len(lines), size):
        for line in lines[index : index + size]:
            await sink.emit(OutputLine(command_id=command_id, stream="stdout", line=line))
            emitted.append(time.time())
        target = start + (index + size) / len(lines) * seconds
        await asyncio.sleep(max(0.0, target - time.monotonic()))
    return emitted


def block_texts(version: MessageVersion | Message) -> list[str]:
    texts: list[str] = []
    for block in version.blocks or []:
        if "text" in block:
            texts.append(block["text"]["text"])
        for element in block.get("elements", []):
            text = element.get("text", "")
            texts.append(text if isinstance(text, str) else text.get("text", ""))
    return texts


def shown_text(version: MessageVersion | Message) -> str:
    return "\n".join(block_texts(version))


def code_lines(version: MessageVersion | Message) -> list[str]:
    """The lines of the first code block, as a reader sees them (entities decoded)."""
    for text in block_texts(version):
        if text.startswith("```\n"):
            return [html.unescape(line) for line in text.removeprefix("```\n").removesuffix("\n```").split("\n")]
    return []


def gaps(versions: Sequence[MessageVersion]) -> list[float]:
    return [later.at - earlier.at for earlier, later in itertools.pairwise(versions)]


def max_calls_in_a_minute(times: Sequence[float]) -> int:
    ordered = sorted(times)
    return max((sum(1 for t in ordered[i:] if t < start + 60.0) for i, start in enumerate(ordered)), default=0)


def first_showing(versions: Sequence[MessageVersion], text: str) -> MessageVersion | None:
    return next((v for v in versions if text in shown_text(v)), None)


class Stamped:
    """Forwards events to a sink and notes the wall-clock time each command ended."""

    def __init__(self, inner: OutputSink) -> None:
        self.inner = inner
        self.ended: dict[str, float] = {}

    async def emit(self, event: Event) -> None:
        if isinstance(event, CommandStateChanged) and event.state.finished:
            self.ended.setdefault(event.command_id, time.time())
        await self.inner.emit(event)


def resolved(command_id: str, display: str) -> ResolvedCommand:
    return ResolvedCommand(
        id=command_id,
        form="sdk",
        service="s3",
        cli_service="s3api",
        operation="ListBuckets",
        cli_operation="list-buckets",
        params={},
        risk=Risk.MODIFY,
        display=display,
    )


def validated_plan(
    ids: Sequence[str],
    *,
    mode: ExecutionMode = ExecutionMode.SEQUENTIAL,
    on_failure: FailurePolicy = FailurePolicy.STOP,
    rollback: dict[str, int] | None = None,
) -> ValidatedPlan:
    rollback = rollback or {}
    commands = [
        ValidatedCommand(
            id=cid,
            command=resolved(cid, f"aws s3api put-bucket-tagging --bucket {cid}"),
            rollback=[
                resolved(f"{cid}.rollback.{n}", f"aws s3api delete-bucket-tagging --bucket {cid}")
                for n in range(1, rollback.get(cid, 0) + 1)
            ],
        )
        for cid in ids
    ]
    plan = Plan(
        summary="Tag the log buckets",
        mode=mode,
        on_failure=on_failure,
        commands=[
            PlanCommand(
                id=c.id,
                sdk=SdkCall(service="s3", operation="PutBucketTagging"),
                rollback=[CommandSpec(sdk=SdkCall(service="s3", operation="DeleteBucketTagging")) for _ in c.rollback],
            )
            for c in commands
        ],
    )
    return ValidatedPlan(plan=plan, commands=commands, computed_risk=Risk.MODIFY, risk=Risk.MODIFY)


async def start_command(sink: SlackStreamSink, command_id: str, display: str = "") -> None:
    await sink.emit(PlanStateChanged(state=RunState.RUNNING))
    await sink.emit(CommandStateChanged(command_id=command_id, state=RunState.RUNNING, display=display))


async def end_command(sink: SlackStreamSink, command_id: str, state: RunState = RunState.SUCCEEDED) -> None:
    ok = state is RunState.SUCCEEDED
    result = CommandResult(ok=ok, executor="cli", error_code=None if ok else "AccessDenied")
    await sink.emit(CommandStateChanged(command_id=command_id, state=state, result=result))


def messages(slack: SlackEmulator, sink: SlackStreamSink) -> dict[str, Message]:
    found = {cid: slack.message(GENERAL, ts) for cid, ts in sink.message_timestamps.items()}
    assert sink.progress_ts is not None
    found["(progress)"] = slack.message(GENERAL, sink.progress_ts)
    return found


# ---------------------------------------------------------------------- one very busy command


async def test_twenty_thousand_lines_in_ten_seconds_all_reach_the_file_with_at_most_one_edit_a_second(
    slack: SlackEmulator, client: BudgetedWebClient, thread: str
) -> None:
    # About 0.9 MB in all: the emulator's upload endpoint takes at most 1 MiB in one request.
    lines = [f"{n:05d} s3://logs/06/{n % 30 + 1:02d}/app-{n:05d}.log.gz {n * 37 % 99991:>5} B" for n in range(20_000)]
    sink = SlackStreamSink(client, GENERAL, thread, plan=[StreamCommand("dump", "aws s3 ls s3://logs --recursive")])
    await start_command(sink, "dump")

    await play(sink, "dump", lines, seconds=10.0)
    ended = time.time()
    await end_command(sink, "dump")
    await sink.emit(PlanStateChanged(state=RunState.SUCCEEDED))
    ts = await sink.posted("dump")
    assert ts is not None
    final = await slack.wait_for(
        lambda: first_showing(slack.edit_history(GENERAL, ts), ":white_check_mark: succeeded"),
        timeout=2.0,
        what="the final state within 2 s of the end",
    )
    await sink.aclose()

    assert final.at - ended <= 2.0
    [stored] = slack.files()
    assert stored.content == ("\n".join(lines) + "\n").encode()
    assert stored.thread_ts == thread and stored.channels == [GENERAL]

    last = slack.edit_history(GENERAL, ts)[-1]
    shown = code_lines(last)
    assert shown == lines[-len(shown) :] and len(shown) > 20
    assert f"{len(lines) - len(shown):,} earlier lines — full output attached below" in shown_text(last)

    for message in messages(slack, sink).values():
        assert all(gap >= 0.995 for gap in gaps(message.versions)), gaps(message.versions)
    edits_while_running = [v for v in slack.edit_history(GENERAL, ts)[1:] if v.at < ended]
    assert len(edits_while_running) >= 5, "the output was not shown live"
    assert slack.violations() == [] and slack.count_429("chat.update") == 0


# ---------------------------------------------------------------------- many commands at once


async def test_ten_parallel_commands_share_the_tier_fairly_and_each_final_state_shows_within_two_seconds(
    slack: SlackEmulator, client: BudgetedWebClient, thread: str
) -> None:
    # The arithmetic of Slack's limits sets the length: eleven messages are posted at about one a second in
    # the thread, and within Tier 3 (45 calls a minute in the app's budget) each of eleven streaming messages
    # can be edited about every 15 s. Commands of ~25 s let every message come round at least once.
    ids = [f"tag-{n}" for n in range(10)]
    plan = validated_plan(ids, mode=ExecutionMode.PARALLEL)
    executor = ScriptedExecutor(
        scripts={
            cid: Script(sleep=24.0 + 0.25 * n, lines=[f"{cid} object {k:04d}" for k in range(500)])
            for n, cid in enumerate(ids)
        }
    )
    sink = SlackStreamSink(client, GENERAL, thread, plan=plan)
    stamped = Stamped(sink)

    result = await Orchestrator(executor, max_parallel=10).execute(plan, ExecutionContext(), stamped)
    await sink.aclose()

    assert result.state is RunState.SUCCEEDED
    found = messages(slack, sink)
    assert set(found) == {*ids, "(progress)"}
    pace = client.budget.paces["chat.update"]
    one_round = len(found) * (pace.per_seconds + client.budget.margin_seconds) / pace.calls
    for cid in ids:
        versions = found[cid].versions
        while_running = [v for v in versions if v.at < stamped.ended[cid]]
        # Live: edited while the command still ran, not only posted and finished...
        assert len(while_running) >= 2, f"{cid} was starved"
        # ...and never left waiting longer than one round of every message (plus a second's spacing).
        assert max(gaps(while_running)) <= one_round + 1.0, (cid, gaps(while_running))
        final = first_showing(versions, ":white_check_mark: succeeded")
        assert final is not None and final.at - stamped.ended[cid] <= 2.0, cid
        assert code_lines(versions[-1])[-1] == f"{cid} object 0499"
        assert all(gap >= 0.995 for gap in gaps(versions))
    assert "10 of 10 commands finished" in shown_text(found["(progress)"].versions[-1])

    updates = [call.at for call in slack.calls("chat.update")]
    assert max_calls_in_a_minute(updates) <= 50
    assert slack.count_429("chat.update") == 0
    # chat.postMessage may be answered 429 at one a second per channel; what matters is it was honoured.
    assert slack.violations() == []


# ---------------------------------------------------------------------- 429s


async def test_a_429_storm_is_waited_out_and_no_line_or_final_state_is_lost(
    slack: SlackEmulator, client: BudgetedWebClient, thread: str
) -> None:
    small = [f"tagged bucket logs-{n:02d}" for n in range(30)]
    big = [f"{n:05d} " + "x" * 60 for n in range(4_000)]
    sink = SlackStreamSink(client, GENERAL, thread, plan=[StreamCommand("small"), StreamCommand("big")])
    await start_command(sink, "small")
    await sink.emit(CommandStateChanged(command_id="big", state=RunState.RUNNING))
    await sink.posted("big")
    slack.limits.storm("chat.update", 4, retry_after=1)

    await asyncio.gather(play(sink, "small", small, seconds=1.0), play(sink, "big", big, seconds=3.0))
    await end_command(sink, "small")
    await end_command(sink, "big")
    await sink.emit(PlanStateChanged(state=RunState.SUCCEEDED))
    await sink.aclose()

    storm = [hit for hit in slack.rate_limited("chat.update") if hit.reason == "storm"]
    assert len(storm) == 4
    assert slack.violations() == []
    found = messages(slack, sink)
    for cid in ("small", "big", "(progress)"):
        last = found[cid].versions[-1]
        assert last.at > storm[-1].at
        assert ":white_check_mark: succeeded" in shown_text(last) or "Succeeded" in shown_text(last)
    assert code_lines(found["small"].versions[-1]) == small
    [stored] = slack.files()
    assert stored.content == ("\n".join(big) + "\n").encode() and stored.name == "big.txt"


# ---------------------------------------------------------------------- what the output looks like


async def test_a_very_long_line_is_cut_with_a_count_and_kept_whole_in_the_file(
    slack: SlackEmulator, client: BudgetedWebClient, thread: str
) -> None:
    long_line = "A" * 10_000
    lines = ["before", long_line, "after"]
    sink = SlackStreamSink(client, GENERAL, thread, plan=[StreamCommand("policy")])
    await start_command(sink, "policy")
    for line in lines:
        await sink.emit(OutputLine(command_id="policy", stream="stdout", line=line))
    await end_command(sink, "policy")
    await sink.aclose()

    last = messages(slack, sink)["policy"].versions[-1]
    assert code_lines(last) == ["before", "A" * 500 + " … (+9,500 chars)", "after"]
    assert "1 long line cut — full output attached below" in shown_text(last)
    [stored] = slack.files()
    assert stored.content == ("\n".join(lines) + "\n").encode()


async def test_json_output_keeps_its_indentation_and_cannot_become_slack_markup(
    slack: SlackEmulator, client: BudgetedWebClient, thread: str
) -> None:
    document = {"Buckets": [{"Name": "logs", "Tags": {"owner": "<!channel> & <https://evil.example|click>"}}]}
    lines = json.dumps(document, indent=4).splitlines()
    sink = SlackStreamSink(client, GENERAL, thread, plan=[StreamCommand("list")])
    await start_command(sink, "list")
    for line in lines:
        await sink.emit(OutputLine(command_id="list", stream="stdout", line=line))
    await end_command(sink, "list")
    await sink.aclose()

    last = messages(slack, sink)["list"].versions[-1]
    assert code_lines(last) == lines
    raw = shown_text(last)
    assert "<!channel>" not in raw and "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in raw
    assert slack.files() == [], "output that fits the message needs no file"


async def test_a_failure_shows_its_error_code_and_what_was_rolled_back_with_the_callers_buttons(
    slack: SlackEmulator, client: BudgetedWebClient, thread: str
) -> None:
    plan = validated_plan(["create", "policy"], on_failure=FailurePolicy.ROLLBACK, rollback={"create": 1})
    executor = ScriptedExecutor(
        scripts={
            "create": Script(lines=["{", '    "Location": "/logs"', "}"]),
            "policy": Script(
                ok=False,
                error_code="AccessDenied",
                error_message="User arn:aws:iam::123456789012:user/ci is not authorized to perform s3:PutBucketPolicy",
                lines=[("stderr", "An error occurred (AccessDenied) when calling the PutBucketPolicy operation")],
            ),
        }
    )
    seen: list[ProgressView] = []

    def buttons(view: ProgressView) -> list[Block]:
        seen.append(view)
        if not view.finished:
            return []
        return [ActionsBlock(block_id="run_actions", elements=[ButtonElement(text="Retry", action_id="retry_run")])]

    posted: dict[str | None, str] = {}
    sink = SlackStreamSink(
        client,
        GENERAL,
        thread,
        plan=plan,
        progress_actions=buttons,
        on_posted=lambda cid, ts: posted.__setitem__(cid, ts),
    )
    result = await Orchestrator(executor).execute(plan, ExecutionContext(), sink)
    await sink.aclose()

    assert result.state is RunState.ROLLED_BACK
    progress = slack.message(GENERAL, posted[None])
    text = shown_text(progress)
    assert "*Failed; its changes were rolled back*" in text
    assert "`policy` failed with `AccessDenied`: User arn:aws:iam::123456789012:user/ci is not authorized" in text
    assert "*Rolled back:* `create`" in text
    assert "`create` · :leftwards_arrow_with_hook: rolled back" in text
    assert progress.blocks is not None and progress.blocks[-2]["block_id"] == "run_actions"
    assert seen[-1].finished and seen[-1].result is not None and seen[-1].progress_ts == posted[None]

    create = shown_text(slack.message(GENERAL, posted["create"]))
    assert ":leftwards_arrow_with_hook: rolled back" in create and "*Rollback* (1 step run)" in create
    assert "step 1 · :white_check_mark: succeeded" in create
    failed = slack.message(GENERAL, posted["policy"])
    assert "Failed with `AccessDenied`" in shown_text(failed)
    assert code_lines(failed) == ["An error occurred (AccessDenied) when calling the PutBucketPolicy operation"]
    assert sink.progress_ts == posted[None] and sink.message_timestamps == {
        "create": posted["create"],
        "policy": posted["policy"],
    }
    thread_ts = {m.ts for m in slack.thread(GENERAL, thread)}
    assert set(posted.values()) <= thread_ts


async def test_a_retried_command_says_how_often_and_why_on_both_messages(
    slack: SlackEmulator, client: BudgetedWebClient, thread: str
) -> None:
    sink = SlackStreamSink(client, GENERAL, thread, plan=[StreamCommand("tag")])
    await start_command(sink, "tag")
    await sink.emit(OutputLine(command_id="tag", stream="stderr", line="Rate exceeded"))
    await sink.emit(RetryScheduled(command_id="tag", attempt=2, delay_seconds=0.5, error_code="Throttling"))
    await sink.emit(OutputLine(command_id="tag", stream="stdout", line="tagged"))
    await end_command(sink, "tag")
    await sink.aclose()

    found = messages(slack, sink)
    command = found["tag"].versions[-1]
    assert "retried 1 time after `Throttling`" in shown_text(command)
    assert code_lines(command) == ["Rate exceeded", "── attempt 2 in 0.5 s, after Throttling ──", "tagged"]
    assert "`tag` · :white_check_mark: succeeded" in shown_text(found["(progress)"].versions[-1])
    assert "retried 1 time after `Throttling`" in shown_text(found["(progress)"].versions[-1])
    assert slack.files() == [], "a note between lines is not output and needs no file"


# ---------------------------------------------------------------------- Slack failing


async def test_emit_never_waits_for_slack_and_a_slack_failure_never_reaches_the_run(
    slack: SlackEmulator, client: BudgetedWebClient, caplog: pytest.LogCaptureFixture
) -> None:
    # The bot is not in #random: every post fails there, as it would with Slack down or the bot removed.
    root = slack.post_as_user(Seed.BOB, Seed.RANDOM, "run it")
    plan = validated_plan(["one", "two"])
    sink = SlackStreamSink(
        client, Seed.RANDOM, root.ts, plan=plan, settings=StreamSettings(close_timeout_seconds=1.0, job_attempts=2)
    )
    secret_line = "the line that must never be logged"

    # A coroutine that never suspends finishes on its first step: emit does not await anything, Slack included.
    for event in (
        PlanStateChanged(state=RunState.RUNNING),
        CommandStateChanged(command_id="one", state=RunState.RUNNING),
        OutputLine(command_id="one", stream="stdout", line=secret_line),
    ):
        step = sink.emit(event)
        with pytest.raises(StopIteration):
            step.send(None)

    executor = ScriptedExecutor(default=Script(sleep=0.2, lines=["ok"]))
    with caplog.at_level(logging.WARNING):
        result = await Orchestrator(executor).execute(plan, ExecutionContext(), sink)
        started = time.monotonic()
        await sink.aclose()

    assert result.state is RunState.SUCCEEDED
    assert time.monotonic() - started < 3.0
    assert "not_in_channel" in caplog.text and secret_line not in caplog.text
    assert sink.progress_ts is None and await sink.posted() is None


async def test_closing_before_the_run_ends_shows_it_as_interrupted(
    slack: SlackEmulator, client: BudgetedWebClient, thread: str
) -> None:
    sink = SlackStreamSink(client, GENERAL, thread, plan=[StreamCommand("wait", "aws ec2 wait instance-running")])
    await start_command(sink, "wait", "aws ec2 wait instance-running")
    await sink.emit(OutputLine(command_id="wait", stream="stdout", line="waiting"))
    await sink.aclose()

    found = messages(slack, sink)
    assert ":warning: *Interrupted*" in shown_text(found["(progress)"].versions[-1])
    assert ":warning: interrupted" in shown_text(found["wait"].versions[-1])
    assert code_lines(found["wait"].versions[-1]) == ["waiting"]


# ---------------------------------------------------------------------- sizing for Slack


def test_a_plan_of_hundreds_of_commands_fits_one_progress_message_and_counts_what_it_does_not_list() -> None:
    commands = [StreamCommand(f"cmd-{n:03d}", f"aws s3api put-object --key {n}") for n in range(800)]
    run = RunProgress(plan=StreamPlan(commands=tuple(commands)), commands={})
    for spec in commands:
        run.commands[spec.id] = CommandState(
            id=spec.id,
            display=spec.display,
            state=RunState.SKIPPED,
            reason="not run: the first command failed " + "(on_failure: stop) " * 12,
            output=OutputBuffer(keep_chars=100, line_chars=50, spill_bytes=1_000),
        )

    rendered = progress_message(run, time.monotonic())

    assert len(rendered.blocks) <= 50
    texts = [block.to_dict().get("text", {}).get("text", "") for block in rendered.blocks]
    assert all(len(text) <= 3_000 for text in texts)
    listed = sum(text.count("`cmd-") for text in texts)
    footer = rendered.blocks[-2].to_dict()["elements"][0]["text"]
    assert 0 < listed < 800 and f"… {800 - listed} more commands not listed here" == footer


def test_a_line_too_long_for_its_block_even_once_escaped_is_cut_with_a_count() -> None:
    entries = [TailEntry("&" * 500)]

    block, shown = tail_code_block(entries, 300)

    assert len(block) <= 300 and shown == 1
    assert html.unescape(block).endswith(" chars)\n```") and "… (+" in block


# ---------------------------------------------------------------------- the output buffer


def test_output_past_the_memory_limit_spills_to_disk_and_the_file_still_holds_every_line() -> None:
    buffer = OutputBuffer(keep_chars=200, line_chars=50, spill_bytes=1_000)
    lines = [f"line {n} é ✓" for n in range(500)]
    for line in lines[:10]:
        buffer.add(line)
    assert not buffer.spilled
    for line in lines[10:]:
        buffer.add(line)

    assert buffer.spilled
    assert buffer.read_all() == ("\n".join(lines) + "\n").encode()
    buffer.add("one more")
    assert buffer.read_all().endswith(b"line 499 \xc3\xa9 \xe2\x9c\x93\none more\n")
    # The tail for the message stays small however much output there is.
    assert sum(len(entry.text) + 1 for entry in buffer.tail()) < 200 + 60
    buffer.close()


def test_a_file_size_limit_is_stated_at_the_end_of_the_file_not_silently_applied() -> None:
    buffer = OutputBuffer(keep_chars=200, line_chars=50, spill_bytes=1_000, max_file_bytes=40)
    for n in range(10):
        buffer.add(f"line {n:02d}")

    data = buffer.read_all().decode()
    assert data.startswith("line 00\nline 01\nline 02\nline 03\nline 04\n")
    assert data.endswith("… 5 more lines (40 bytes) not kept: the output passed the 40-byte limit of this file\n")
    buffer.close()
