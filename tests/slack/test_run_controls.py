"""Runs shown live in their thread, and the progress message's buttons: Cancel while running, Retry failed
commands / Roll back after a failure. End to end: the app over signed HTTP, the emulated Slack, a real Edge
history store and the moto server (or a scripted executor for runs that must hang)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from slack_bolt.async_app import AsyncApp

from bot.settings import BotSettings
from bot.slack.app import DEFAULT_LISTENER_MODULES, create_app
from bot.slack.blocks import APPROVE, parse_action_value
from bot.slack.blocks.run_controls import RUN_CANCEL, RUN_RETRY_FAILED, RUN_ROLLBACK
from bot.slack.context import BotContext
from bot.slack.listeners import actions, events, run_actions, views
from engine.config import EngineSettings
from engine.execution import ExecutionService
from engine.history import HistorySettings, HistoryStore, RecordStatus, open_history_store
from engine.history.records import CommandStatus
from engine.orchestrator import Orchestrator
from engine.policy import Policy
from engine.risk import Risk
from tests.fakes import Script, ScriptedExecutor
from tests.slack_emulator import Seed, SlackDriver, SlackEmulator
from tests.slack_emulator.state import Message

POLICY = Policy(
    approvers={Risk.MODIFY: [Seed.ALICE, Seed.APPROVERS], Risk.DESTRUCTIVE: [Seed.ADMIN, Seed.ALICE]},
    min_approvals={Risk.READ_ONLY: 0, Risk.MODIFY: 1, Risk.DESTRUCTIVE: 2},
    self_approval={Risk.READ_ONLY: True, Risk.MODIFY: True, Risk.DESTRUCTIVE: False},
)
_PROGRESS_TEXT = re.compile(r"^Plan (pending|running|succeeded|failed|cancelled|rolled back|skipped|interrupted): ")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[HistoryStore]:
    opened = await open_history_store(HistorySettings(data_dir=tmp_path / "history"))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def engine_settings(aws: str) -> EngineSettings:
    return EngineSettings(_env_file=None, retry={"max_attempts": 1})


@pytest.fixture
def executor() -> ScriptedExecutor | None:
    return None


@pytest.fixture
def bot(store: HistoryStore, engine_settings: EngineSettings, executor: ScriptedExecutor | None) -> BotContext:
    executions = None
    if executor is not None:
        executions = ExecutionService(store, POLICY, engine_settings, orchestrator=Orchestrator(executor))
    return BotContext.build(policy=POLICY, store=store, engine_settings=engine_settings, executions=executions)


@pytest.fixture
def slack_app(bot_settings: BotSettings, bot: BotContext) -> AsyncApp:
    return create_app(bot_settings, listener_groups=[events, actions, views, run_actions], context=bot)


# -- helpers -------------------------------------------------------------------------------------------------


def has_action(message: Message, action_id: str) -> bool:
    return any(
        isinstance(element, dict) and element.get("action_id") == action_id
        for block in message.blocks or []
        for element in block.get("elements", []) or []
    )


def button_value(message: Message, action_id: str) -> str:
    for block in message.blocks or []:
        for element in block.get("elements", []) or []:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(element["value"])
    raise LookupError(action_id)


def shown(message: Any) -> str:
    parts = [message.text or ""]
    for block in message.blocks or []:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"].get("text", ""))
        for element in block.get("elements", []) or []:
            text = element.get("text", "") if isinstance(element, dict) else ""
            parts.append(text if isinstance(text, str) else text.get("text", ""))
    return "\n".join(parts)


def cards(slack: SlackEmulator, root: str) -> list[Message]:
    return [m for m in slack.thread(Seed.GENERAL, root)[1:] if m.bot_id and has_action(m, APPROVE)]


def progress(slack: SlackEmulator, root: str) -> Message | None:
    return next(
        (m for m in slack.thread(Seed.GENERAL, root)[1:] if m.bot_id and _PROGRESS_TEXT.match(m.text or "")), None
    )


def ephemeral_texts(slack: SlackEmulator, user: str) -> str:
    return "\n".join(e.text for e in slack.ephemerals(user=user))


def bucket_names() -> set[str]:
    return {b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]}


async def propose(driver: SlackDriver, slack: SlackEmulator, user: str, text: str) -> tuple[str, Message, Any]:
    delivery = await driver.app_mention(user, Seed.GENERAL, text)
    assert delivery.message is not None
    root = delivery.message.ts
    card = await slack.wait_for(lambda: next(iter(cards(slack, root)), None), what="plan message")
    await slack.wait_for(lambda: _linked(slack, card), what="plan message posted")
    return root, card, parse_action_value(button_value(card, APPROVE))


def _linked(slack: SlackEmulator, card: Message) -> bool:
    return bool(slack.calls("chat.getPermalink"))


async def record_in(store: HistoryStore, record_id: Any, *statuses: RecordStatus, slack: SlackEmulator) -> Any:
    async def check() -> Any:
        record = await store.get(record_id)
        return record if record is not None and record.status in statuses else None

    return await slack.wait_for(check, timeout=30, what=f"record in {statuses}")


FINISHED = (RecordStatus.SUCCEEDED, RecordStatus.FAILED, RecordStatus.CANCELLED, RecordStatus.ROLLED_BACK)


# -- tests ---------------------------------------------------------------------------------------------------


def test_run_actions_is_a_default_listener_group() -> None:
    assert "bot.slack.listeners.run_actions" in DEFAULT_LISTENER_MODULES


async def test_an_approved_run_streams_into_the_thread(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore
) -> None:
    root, card, ref = await propose(driver, slack, Seed.BOB, "aws s3api create-bucket --bucket rc-stream")
    await driver.block_action(Seed.ALICE, Seed.GENERAL, card.ts, APPROVE)
    done = await record_in(store, ref.record_id, *FINISHED, slack=slack)
    assert done.status is RecordStatus.SUCCEEDED
    assert "rc-stream" in bucket_names()

    def settled() -> Message | None:
        found = progress(slack, root)
        return found if found is not None and "succeeded" in found.text else None

    shown_progress = await slack.wait_for(settled, timeout=20, what="progress message says succeeded")
    assert not has_action(shown_progress, RUN_CANCEL)
    command_messages = [
        m
        for m in slack.thread(Seed.GENERAL, root)[1:]
        if m.bot_id and m.ts not in (card.ts, shown_progress.ts) and "rc-stream" in shown(m) and "*Run " not in m.text
    ]
    assert command_messages, [m.text for m in slack.thread(Seed.GENERAL, root)]
    await slack.wait_for(
        lambda: any("Run succeeded" in m.text for m in slack.thread(Seed.GENERAL, root)), what="result reply"
    )
    # The sink is closed before the result reply: by then the command's message shows how it ended.
    history = slack.edit_history(Seed.GENERAL, command_messages[0].ts)
    assert len(history) > 1 and "running" in shown(history[0])
    assert "succeeded" in shown(history[-1]).lower()


@pytest.mark.parametrize("executor", [ScriptedExecutor(default=Script(hang=True))])
async def test_cancel_by_the_requester_stops_the_run_and_others_are_refused(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore, executor: ScriptedExecutor
) -> None:
    plan = (
        "```\nsummary: two slow buckets\ncommands:\n"
        "  - id: first\n    cli: aws s3api create-bucket --bucket rc-hang-one\n"
        "  - id: second\n    cli: aws s3api create-bucket --bucket rc-hang-two\n```"
    )
    root, card, ref = await propose(driver, slack, Seed.ALICE, plan)
    await driver.block_action(Seed.ALICE, Seed.GENERAL, card.ts, APPROVE)
    running = await slack.wait_for(
        lambda: next((m for m in [progress(slack, root)] if m is not None and has_action(m, RUN_CANCEL)), None),
        timeout=20,
        what="progress message with a Cancel button",
    )
    await slack.wait_for(lambda: executor.ran("first"), what="first command running")

    await driver.block_action(Seed.BOB, Seed.GENERAL, running.ts, RUN_CANCEL)
    await slack.wait_for(lambda: "can cancel this run" in ephemeral_texts(slack, Seed.BOB), what="refusal")
    record = await store.get(ref.record_id)
    assert record is not None and record.status is RecordStatus.RUNNING

    await driver.block_action(Seed.ALICE, Seed.GENERAL, running.ts, RUN_CANCEL)
    done = await record_in(store, ref.record_id, *FINISHED, slack=slack)
    assert done.status is RecordStatus.CANCELLED
    assert done.cancelled_by == Seed.ALICE
    statuses = {c.id: c.status for c in done.commands}
    assert statuses["first"] is CommandStatus.CANCELLED
    assert statuses["second"] is CommandStatus.SKIPPED
    assert executor.call("first").cancelled and not executor.ran("second")
    await slack.wait_for(
        lambda: not has_action(slack.message(Seed.GENERAL, running.ts), RUN_CANCEL), what="Cancel button gone"
    )


FAILING = (
    "```\nsummary: a bucket, then a step that fails\ncommands:\n"
    "  - id: make\n    cli: aws s3api create-bucket --bucket rc-undo\n"
    "    rollback: aws s3api delete-bucket --bucket rc-undo\n"
    "  - id: broken\n    cli: aws s3api put-bucket-versioning --bucket rc-no-such-bucket"
    " --versioning-configuration Status=Enabled\n```"
)


async def _failed_run(slack: SlackEmulator, driver: SlackDriver, store: HistoryStore) -> tuple[str, Message, Any]:
    root, card, ref = await propose(driver, slack, Seed.BOB, FAILING)
    await driver.block_action(Seed.ALICE, Seed.GENERAL, card.ts, APPROVE)
    done = await record_in(store, ref.record_id, *FINISHED, slack=slack)
    assert done.status is RecordStatus.FAILED, done.commands
    assert "rc-undo" in bucket_names()
    failed = await slack.wait_for(
        lambda: next(
            (m for m in [progress(slack, root)] if m is not None and has_action(m, RUN_ROLLBACK)),
            None,
        ),
        timeout=20,
        what="progress message with the follow-up buttons",
    )
    assert has_action(failed, RUN_RETRY_FAILED) and not has_action(failed, RUN_CANCEL)
    return root, failed, ref


async def test_roll_back_proposes_a_plan_that_undoes_the_change_once_approved(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore
) -> None:
    root, failed, ref = await _failed_run(slack, driver, store)
    assert parse_action_value(button_value(failed, RUN_ROLLBACK)).record_id == ref.record_id

    await driver.block_action(Seed.BOB, Seed.GENERAL, failed.ts, RUN_ROLLBACK)
    new_card = await slack.wait_for(lambda: next(iter(cards(slack, root)), None), what="rollback plan message")
    new_ref = parse_action_value(button_value(new_card, APPROVE))
    assert new_ref.record_id != ref.record_id
    proposed = await store.get(new_ref.record_id)
    assert proposed is not None and proposed.status is RecordStatus.PENDING_APPROVAL
    assert [c.command for c in proposed.commands] == ["aws s3api delete-bucket --bucket rc-undo"]
    assert "rc-undo" in bucket_names()  # nothing ran on the click

    # A second click proposes nothing more.
    await driver.block_action(Seed.BOB, Seed.GENERAL, failed.ts, RUN_ROLLBACK)
    await slack.wait_for(lambda: "already proposed" in ephemeral_texts(slack, Seed.BOB), what="already proposed")

    # Deleting a bucket is destructive here: two approvers other than the requester.
    await driver.block_action(Seed.ADMIN, Seed.GENERAL, new_card.ts, APPROVE)
    await driver.block_action(Seed.ALICE, Seed.GENERAL, new_card.ts, APPROVE)
    done = await record_in(store, new_ref.record_id, *FINISHED, slack=slack)
    assert done.status is RecordStatus.SUCCEEDED, done.commands
    assert "rc-undo" not in bucket_names()


async def test_retry_failed_proposes_the_failed_command_again(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore
) -> None:
    root, failed, ref = await _failed_run(slack, driver, store)
    await driver.block_action(Seed.BOB, Seed.GENERAL, failed.ts, RUN_RETRY_FAILED)
    new_card = await slack.wait_for(lambda: next(iter(cards(slack, root)), None), what="retry plan message")
    proposed = await store.get(parse_action_value(button_value(new_card, APPROVE)).record_id)
    assert proposed is not None and proposed.status is RecordStatus.PENDING_APPROVAL
    assert [c.id for c in proposed.commands] == ["broken"]
    assert proposed.requested_by == Seed.BOB
    original = await store.get(ref.record_id)
    assert original is not None and original.status is RecordStatus.FAILED
