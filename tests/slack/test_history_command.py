"""``/cloudops history`` and ``/cloudops help`` end to end: the real app over signed HTTP, the emulated Slack,
a real Qdrant Edge history store filled with records.

The emulator answers ``users.conversations`` a couple of channels a page here (``membership``), so the tests
also follow the cursor. The fail-closed test takes the method away.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp

from bot.settings import BotSettings
from bot.slack import history_query
from bot.slack.app import create_app
from bot.slack.blocks.history import (
    ENTRY_BLOCK_PREFIX,
    HISTORY_DETAILS,
    HISTORY_DETAILS_CALLBACK_ID,
    HISTORY_NEXT,
    HISTORY_PREVIOUS,
)
from bot.slack.context import BotContext
from bot.slack.listeners import commands, history_actions
from engine.config import EngineSettings
from engine.history import (
    ApprovalDecision,
    CommandRecord,
    CommandStatus,
    Decision,
    EdgeHistoryStore,
    ExecutionRecord,
    HistoryStore,
    RecordStatus,
    RollbackRecord,
    RollbackSummary,
    slack_conversation_id,
)
from engine.policy import Policy
from engine.risk import Risk
from tests.history.builders import new_record
from tests.slack_emulator import Interaction, Seed, SlackDriver, SlackEmulator
from tests.slack_emulator import methods as emulator_methods
from tests.slack_emulator.state import Ephemeral

TEAM = "T0EMULATE1"
# ADMIN (directly and through the group) and ALICE (through the group) are approvers; BOB is not.
POLICY = Policy(approvers={Risk.MODIFY: [Seed.APPROVERS], Risk.DESTRUCTIVE: [Seed.ADMIN]})
# Slack may answer users.conversations with fewer channels than asked for; two a page makes the bot page.
MEMBERSHIP_PAGE = 2
ACK_DEADLINE = 3.0


@pytest.fixture(autouse=True)
def membership(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulator_methods, "USERS_CONVERSATIONS_MAX_PAGE", MEMBERSHIP_PAGE)


# -- the app -------------------------------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EdgeHistoryStore]:
    opened = await EdgeHistoryStore(tmp_path / "data").open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def bot(store: HistoryStore) -> BotContext:
    return BotContext.build(policy=POLICY, store=store, engine_settings=EngineSettings(_env_file=None))


@pytest.fixture
def slack_app(bot_settings: BotSettings, bot: BotContext) -> AsyncApp:
    return create_app(bot_settings, listener_groups=[commands, history_actions], context=bot)


@pytest.fixture
def secret(slack: SlackEmulator) -> str:
    """A private channel only ADMIN (and the bot) are in."""
    return slack.add_channel("secret", is_private=True, members=[Seed.ADMIN]).id


# -- records -------------------------------------------------------------------------------------------------

_ts_counter = iter(range(1, 1_000_000))


def ago(minutes: float) -> datetime:
    # From the moment of the call, not of the import: `since:` filters are relative to when the test runs.
    return datetime.now(UTC) - timedelta(minutes=minutes)


def slack_record(
    summary: str,
    *commands: str,
    channel: str,
    minutes_ago: float = 0,
    created: datetime | None = None,
    user: str = Seed.ALICE,
    **fields: Any,
) -> ExecutionRecord:
    status = fields.pop("status", RecordStatus.SUCCEEDED)
    prompt = fields.pop("prompt", "")
    created = created or ago(minutes_ago)
    thread_ts = f"{int(created.timestamp())}.{next(_ts_counter):06d}"
    record = new_record(
        summary,
        *commands,
        prompt=prompt,
        user=user,
        status=status,
        channel=channel,
        conversation_id=slack_conversation_id(TEAM, channel, thread_ts),
        now=created,
    )
    link = f"https://cloudops-test.slack.com/archives/{channel}/p{thread_ts.replace('.', '')}"
    return record.model_copy(update={"link": link, **fields})


def cli_record(summary: str, *commands: str, minutes_ago: float, user: str, **fields: Any) -> ExecutionRecord:
    status = fields.pop("status", RecordStatus.SUCCEEDED)
    record = new_record(summary, *commands, user=user, status=status, now=ago(minutes_ago))
    return record.model_copy(update=fields)


async def add(store: HistoryStore, *records: ExecutionRecord) -> list[ExecutionRecord]:
    return [await store.create(record) for record in records]


@pytest.fixture
async def fleet(store: HistoryStore, secret: str) -> dict[str, ExecutionRecord]:
    """Records that differ in one way each, from channels that different people are in."""
    approval = ApprovalDecision(user=Seed.ADMIN, decision=Decision.APPROVE, at=ago(9), plan_hash="", plan_version=1)
    records = {
        "buckets": slack_record(
            "List the buckets", "aws s3api list-buckets", channel=Seed.GENERAL, minutes_ago=1, duration_seconds=2.5
        ),
        "stop": slack_record(
            "Stop the web servers",
            "aws ec2 stop-instances --instance-ids i-0abc",
            channel=Seed.GENERAL,
            minutes_ago=10,
            user=Seed.BOB,
            status=RecordStatus.FAILED,
            prompt="please stop the web servers for the night",
        ),
        "terminate": slack_record(
            "Terminate the canary",
            "aws ec2 terminate-instances --instance-ids i-0dead",
            channel=Seed.OPS,
            minutes_ago=20,
        ),
        "old_delete": slack_record(
            "Delete the old log bucket",
            "aws s3api delete-bucket --bucket old-logs",
            channel=Seed.GENERAL,
            minutes_ago=10 * 24 * 60,
            status=RecordStatus.FAILED,
            prompt="remove arn:aws:s3:::old-logs for good",
        ),
        "cli": cli_record(
            "Tighten the bucket policy", "aws s3api put-bucket-policy --bucket web", minutes_ago=30, user="deploy-bot"
        ),
        "random": slack_record(
            "Describe the volumes", "aws ec2 describe-volumes", channel=Seed.RANDOM, minutes_ago=40, user=Seed.BOB
        ),
        "secret": slack_record(
            "Rotate the vault keys", "aws kms list-keys", channel=secret, minutes_ago=50, user=Seed.ADMIN
        ),
    }
    stop = records["stop"]
    records["stop"] = stop.model_copy(update={"approvals": [approval.model_copy(update={"plan_hash": stop.plan_hash})]})
    stored = await add(store, *records.values())
    return dict(zip(records, stored, strict=True))


# -- driving /cloudops ---------------------------------------------------------------------------------------


def shown_ids(blocks: list[dict[str, Any]] | None) -> list[str]:
    return [
        str(block["block_id"]).removeprefix(ENTRY_BLOCK_PREFIX)
        for block in blocks or []
        if str(block.get("block_id", "")).startswith(ENTRY_BLOCK_PREFIX)
    ]


def ids(records: dict[str, ExecutionRecord], *names: str) -> set[str]:
    return {str(records[name].id) for name in names}


def response_url_id(interaction: Interaction) -> str:
    assert interaction.response_url is not None
    return interaction.response_url.rsplit("/", 1)[-1]


async def posted(slack: SlackEmulator, interaction: Interaction) -> dict[str, Any]:
    """What the app posted to the interaction's response URL (the first post)."""
    url_id = response_url_id(interaction)
    post = await slack.wait_for(
        lambda: next((p for p in slack.response_url_posts() if p.response_url_id == url_id), None),
        what="a response_url post",
    )
    assert post.outcome in ("posted_ephemeral", "replaced_original"), post.outcome
    return post.payload


async def history(
    driver: SlackDriver, slack: SlackEmulator, user: str, channel: str, text: str = ""
) -> tuple[Interaction, Ephemeral]:
    """Run ``/cloudops history <text>``; the ack must be quick and empty, the answer an ephemeral."""
    interaction = await driver.slash_command(user, channel, "/cloudops", f"history {text}".strip())
    assert interaction.response.status == 200
    assert interaction.response.elapsed < ACK_DEADLINE
    assert interaction.response.body == ""
    payload = await posted(slack, interaction)
    assert payload["response_type"] == "ephemeral"
    ephemeral = slack.ephemerals(user=user, channel=channel)[-1]
    assert ephemeral.via == "response_url" and ephemeral.blocks == payload["blocks"]
    return interaction, ephemeral


def ack_text(interaction: Interaction) -> str:
    """The ack body's blocks as one text, for answers given in the acknowledgement itself."""
    body = interaction.response.json()
    assert body["response_type"] == "ephemeral"
    return "\n".join(json.dumps(block, ensure_ascii=False) for block in body["blocks"])


def button(blocks: list[dict[str, Any]] | None, action_id: str) -> dict[str, Any] | None:
    for block in blocks or []:
        for element in [block.get("accessory"), *(block.get("elements") or [])]:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return element
    return None


def entry_text(blocks: list[dict[str, Any]] | None, record: ExecutionRecord) -> str:
    """The entry's section text and the context line after it."""
    blocks = blocks or []
    for index, block in enumerate(blocks):
        if block.get("block_id") == f"{ENTRY_BLOCK_PREFIX}{record.id}":
            return block["text"]["text"] + "\n" + blocks[index + 1]["elements"][0]["text"]
    raise LookupError(record.id)


# -- listing and filters -------------------------------------------------------------------------------------


async def test_history_answers_ephemerally_newest_first_with_each_records_facts(
    slack: SlackEmulator, driver: SlackDriver, fleet: dict[str, ExecutionRecord]
) -> None:
    _, ephemeral = await history(driver, slack, Seed.ALICE, Seed.GENERAL)

    # ALICE is in #general and #ops, and an approver: command-line records too, but not #random or #secret.
    expected = sorted(
        (fleet[n] for n in ("buckets", "stop", "terminate", "cli", "old_delete")), key=lambda r: r.timestamp
    )
    assert shown_ids(ephemeral.blocks) == [str(r.id) for r in reversed(expected)]

    stop = entry_text(ephemeral.blocks, fleet["stop"])
    assert ":x: failed" in stop and ":large_yellow_circle: modify" in stop
    assert "*Stop the web servers*" in stop
    assert f"Requested by <@{Seed.BOB}>" in stop and f"approved by <@{Seed.ADMIN}>" in stop
    assert f"<!date^{int(fleet['stop'].timestamp.timestamp())}^" in stop
    assert f"<#{Seed.GENERAL}>" in stop and f"<{fleet['stop'].link}|open thread>" in stop

    assert "took 2.5 s" in entry_text(ephemeral.blocks, fleet["buckets"])
    assert "command line" in entry_text(ephemeral.blocks, fleet["cli"])
    assert "`deploy-bot`" in entry_text(ephemeral.blocks, fleet["cli"])
    details = button(ephemeral.blocks, HISTORY_DETAILS)
    assert details is not None and details["value"] == str(fleet["buckets"].id)
    # Five records: one page, so no page buttons.
    assert button(ephemeral.blocks, HISTORY_NEXT) is None and button(ephemeral.blocks, HISTORY_PREVIOUS) is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status:failed", {"stop", "old_delete"}),
        ("status:failed,succeeded risk:destructive", {"terminate", "old_delete"}),
        ("risk:destructive", {"terminate", "old_delete"}),
        ("risk:modify", {"stop", "cli"}),
        ("service:ec2", {"stop", "terminate"}),
        ("service:EC2 status:failed", {"stop"}),
        (f"user:<@{Seed.BOB}|bob>", {"stop"}),
        (f"user:{Seed.BOB}", {"stop"}),
        ("user:me", {"buckets", "terminate", "old_delete"}),
        ("user:deploy-bot", {"cli"}),
        ("since:7d", {"buckets", "stop", "terminate", "cli"}),
        ("since:15m", {"buckets", "stop"}),
        ("channel:here", {"buckets", "stop", "old_delete"}),
        (f"channel:<#{Seed.OPS}|ops>", {"terminate"}),
        ("channel:#ops", {"terminate"}),
        (f"channel:here channel:{Seed.OPS} status:failed", {"stop", "old_delete"}),
    ],
)
async def test_filters_narrow_the_answer(
    slack: SlackEmulator, driver: SlackDriver, fleet: dict[str, ExecutionRecord], query: str, expected: set[str]
) -> None:
    _, ephemeral = await history(driver, slack, Seed.ALICE, Seed.GENERAL, query)
    assert set(shown_ids(ephemeral.blocks)) == ids(fleet, *expected)


async def test_text_search_finds_records_by_words_in_the_prompt_and_the_commands(
    slack: SlackEmulator, driver: SlackDriver, fleet: dict[str, ExecutionRecord]
) -> None:
    _, by_prompt = await history(driver, slack, Seed.ALICE, Seed.GENERAL, "night")
    assert shown_ids(by_prompt.blocks) == [str(fleet["stop"].id)]
    assert "best match first" in json.dumps(by_prompt.blocks)

    _, by_command = await history(driver, slack, Seed.ALICE, Seed.GENERAL, "terminate-instances")
    assert shown_ids(by_command.blocks) == [str(fleet["terminate"].id)]

    _, with_filter = await history(driver, slack, Seed.ALICE, Seed.GENERAL, "instances status:failed")
    assert shown_ids(with_filter.blocks) == [str(fleet["stop"].id)]

    # A word with a colon is a filter unless quoted.
    _, quoted = await history(driver, slack, Seed.ALICE, Seed.GENERAL, '"arn:aws:s3:::old-logs"')
    # Its parts ("aws", "s3") are in other records too; the whole word ranks its record first.
    assert shown_ids(quoted.blocks)[0] == str(fleet["old_delete"].id)
    unquoted = await driver.slash_command(Seed.ALICE, Seed.GENERAL, "/cloudops", "history arn:aws:s3:::old-logs")
    assert "Unknown filter `arn:`" in ack_text(unquoted) and "double quotes" in ack_text(unquoted)


async def test_records_from_channels_the_user_is_not_in_are_not_shown(
    slack: SlackEmulator, driver: SlackDriver, fleet: dict[str, ExecutionRecord], secret: str
) -> None:
    # BOB is in #general and #random; not in #ops or #secret, and not an approver.
    _, bob = await history(driver, slack, Seed.BOB, Seed.GENERAL)
    assert set(shown_ids(bob.blocks)) == ids(fleet, "buckets", "stop", "old_delete", "random")

    # Asking for a channel one is not in gives nothing, searching for its words too.
    _, asked = await history(driver, slack, Seed.BOB, Seed.GENERAL, f"channel:<#{Seed.OPS}>")
    assert shown_ids(asked.blocks) == []
    assert "No records you can see match" in json.dumps(asked.blocks)
    _, searched = await history(driver, slack, Seed.ALICE, Seed.GENERAL, "vault")
    assert shown_ids(searched.blocks) == []

    # Command-line records are for approvers: ALICE finds one by its words, BOB does not.
    _, alice_cli = await history(driver, slack, Seed.ALICE, Seed.GENERAL, "bucket policy")
    assert shown_ids(alice_cli.blocks)[0] == str(fleet["cli"].id)
    _, bob_cli = await history(driver, slack, Seed.BOB, Seed.GENERAL, "bucket policy")
    assert str(fleet["cli"].id) not in shown_ids(bob_cli.blocks)

    # ADMIN is in every channel and sees the same search.
    _, admin = await history(driver, slack, Seed.ADMIN, Seed.GENERAL, "vault")
    assert shown_ids(admin.blocks) == [str(fleet["secret"].id)]


async def test_without_membership_only_the_channel_of_the_command_is_shown(
    slack: SlackEmulator, driver: SlackDriver, fleet: dict[str, ExecutionRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(emulator_methods.METHODS, "users.conversations")
    _, ephemeral = await history(driver, slack, Seed.ALICE, Seed.GENERAL)
    # Not #ops, and no command-line records although ALICE is an approver.
    assert set(shown_ids(ephemeral.blocks)) == ids(fleet, "buckets", "stop", "old_delete")
    assert "Slack did not say which channels you are in" in json.dumps(ephemeral.blocks)
    assert [c.error for c in slack.calls("users.conversations")] == ["unknown_method"]


async def test_command_line_records_are_found_behind_many_records_the_user_may_not_see(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows of one page (11 records) instead of 50, so that 30 hidden records take several windows.
    monkeypatch.setattr(history_query, "COMMAND_LINE_WINDOW", 1)
    (older,) = await add(store, cli_record("Rotate the keys", "aws iam list-users", minutes_ago=40, user="ops"))
    hidden = [
        slack_record(f"Secret task {n}", "aws kms list-keys", channel=secret, minutes_ago=n, user=Seed.ADMIN)
        for n in range(1, 31)
    ]
    await add(store, *hidden)
    (newest,) = await add(store, cli_record("List the users", "aws iam list-users", minutes_ago=0.5, user="ops"))

    _, alice = await history(driver, slack, Seed.ALICE, Seed.GENERAL)
    assert shown_ids(alice.blocks) == [str(newest.id), str(older.id)]
    _, bob = await history(driver, slack, Seed.BOB, Seed.GENERAL)
    assert shown_ids(bob.blocks) == []


# -- paging --------------------------------------------------------------------------------------------------


@pytest.fixture
async def many(store: HistoryStore) -> list[ExecutionRecord]:
    """25 web-server records in #general, newest first."""
    records = [
        slack_record(
            f"Restart web server {n}",
            f"aws ec2 reboot-instances --instance-ids i-{n:04d}",
            channel=Seed.GENERAL,
            minutes_ago=n,
            prompt=f"restart web server {n}",
        )
        for n in range(1, 26)
    ]
    return await add(store, *records)


async def click(
    driver: SlackDriver, slack: SlackEmulator, user: str, ephemeral: Ephemeral, action_id: str
) -> dict[str, Any]:
    interaction = await driver.block_action(user, ephemeral.channel, ephemeral.message_ts, action_id, is_ephemeral=True)
    assert interaction.response.status == 200 and interaction.response.elapsed < ACK_DEADLINE
    return await posted(slack, interaction)


async def test_next_and_previous_replace_the_ephemeral_with_other_pages(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore, many: list[ExecutionRecord]
) -> None:
    newest_first = [str(r.id) for r in many]
    _, ephemeral = await history(driver, slack, Seed.ALICE, Seed.GENERAL)
    assert shown_ids(ephemeral.blocks) == newest_first[:10]
    assert button(ephemeral.blocks, HISTORY_PREVIOUS) is None

    # A record made after the first page does not push the later pages along.
    later = datetime.now(UTC) + timedelta(seconds=2)
    await add(store, slack_record("Something new", "aws s3api list-buckets", channel=Seed.GENERAL, created=later))

    payload = await click(driver, slack, Seed.ALICE, ephemeral, HISTORY_NEXT)
    assert payload["replace_original"] is True
    assert shown_ids(ephemeral.blocks) == newest_first[10:20]
    assert "Records 11 to 20" in json.dumps(ephemeral.blocks)

    await click(driver, slack, Seed.ALICE, ephemeral, HISTORY_NEXT)
    assert shown_ids(ephemeral.blocks) == newest_first[20:]
    assert button(ephemeral.blocks, HISTORY_NEXT) is None

    await click(driver, slack, Seed.ALICE, ephemeral, HISTORY_PREVIOUS)
    assert shown_ids(ephemeral.blocks) == newest_first[10:20]

    # One ephemeral, replaced in place each time.
    assert len(slack.ephemerals(user=Seed.ALICE)) == 1
    assert len(ephemeral.versions) == 4


async def test_a_query_too_long_for_a_button_is_kept_by_the_bot_and_still_pages(
    slack: SlackEmulator, driver: SlackDriver, many: list[ExecutionRecord]
) -> None:
    words = " ".join(["restart web server"] * 120)  # over 2,000 characters
    _, ephemeral = await history(driver, slack, Seed.ALICE, Seed.GENERAL, f"{words} channel:here")
    assert len(shown_ids(ephemeral.blocks)) == 10
    next_button = button(ephemeral.blocks, HISTORY_NEXT)
    assert next_button is not None and len(next_button["value"]) < 100 and "restart" not in next_button["value"]

    first_page = shown_ids(ephemeral.blocks)
    await click(driver, slack, Seed.ALICE, ephemeral, HISTORY_NEXT)
    second_page = shown_ids(ephemeral.blocks)
    assert len(second_page) == 10 and not set(first_page) & set(second_page)
    assert set(first_page + second_page) <= {str(r.id) for r in many}


async def test_a_page_is_recomputed_for_whoever_clicks(
    slack: SlackEmulator, driver: SlackDriver, many: list[ExecutionRecord], fleet: dict[str, ExecutionRecord]
) -> None:
    _, ephemeral = await history(driver, slack, Seed.BOB, Seed.GENERAL)
    assert button(ephemeral.blocks, HISTORY_NEXT) is not None
    # The button carries only the query: one naming #ops, where BOB is not, shows him nothing from it.
    value = json.dumps({"q": f"channel:<#{Seed.OPS}>", "p": 0, "t": int(datetime.now(UTC).timestamp()) + 1})
    interaction = await driver.block_action(
        Seed.BOB, Seed.GENERAL, ephemeral.message_ts, HISTORY_NEXT, value=value, is_ephemeral=True
    )
    assert interaction.response.status == 200
    await posted(slack, interaction)
    assert shown_ids(ephemeral.blocks) == []
    assert "No records you can see match" in json.dumps(ephemeral.blocks)

    # ALICE, who is in #ops, gets the record from the same query.
    _, alice = await history(driver, slack, Seed.ALICE, Seed.GENERAL, f"channel:<#{Seed.OPS}>")
    assert shown_ids(alice.blocks) == [str(fleet["terminate"].id)]


# -- Details -------------------------------------------------------------------------------------------------


@pytest.fixture
async def ran(store: HistoryStore) -> ExecutionRecord:
    """A failed, partly rolled back run with approvals, errors, output and notes."""
    record = slack_record(
        "Resize the web fleet",
        "aws ec2 stop-instances --instance-ids i-0aaa",
        "aws ec2 modify-instance-attribute --instance-id i-0aaa --instance-type m5.large",
        channel=Seed.GENERAL,
        minutes_ago=5,
        status=RecordStatus.FAILED,
        prompt="make the web fleet bigger <!channel>",
        duration_seconds=12.0,
    )
    started = ago(4)
    long_output = "\n".join(f"line {n:05d} of the instance listing" for n in range(5_000)) + "\nTHE LAST LINE"
    commands = [
        record.commands[0].model_copy(
            update={
                "status": CommandStatus.ROLLED_BACK,
                "output": long_output,
                "output_bytes": len(long_output),
                "exit_code": 0,
                "duration_seconds": 1.5,
                "rollback": [
                    RollbackRecord(
                        step=1, command="aws ec2 start-instances --instance-ids i-0aaa", status=CommandStatus.SUCCEEDED
                    )
                ],
            }
        ),
        record.commands[1].model_copy(
            update={
                "status": CommandStatus.FAILED,
                "exit_code": 254,
                "error_code": "IncorrectInstanceState",
                "error_message": "The instance 'i-0aaa' is not in the 'stopped' state.",
            }
        ),
    ]
    approvals = [
        ApprovalDecision(
            user=Seed.ADMIN,
            decision=Decision.APPROVE,
            at=started,
            plan_hash=record.plan_hash,
            plan_version=1,
            comment="go ahead",
        ),
        ApprovalDecision(
            user=Seed.BOB, decision=Decision.DENIED, at=started, plan_hash=record.plan_hash, plan_version=1
        ),
    ]
    (stored,) = await add(
        store,
        record.model_copy(
            update={
                "commands": commands,
                "approvals": approvals,
                "started_at": started,
                "finished_at": started + timedelta(seconds=12),
                "rollback": RollbackSummary(rolled_back=["c1"], not_rolled_back=[]),
                "notes": ["rolled back after c2 failed"],
            }
        ),
    )
    return stored


async def open_details(
    driver: SlackDriver, slack: SlackEmulator, user: str, ephemeral: Ephemeral, record: ExecutionRecord
) -> Interaction:
    return await driver.block_action(
        user,
        ephemeral.channel,
        ephemeral.message_ts,
        HISTORY_DETAILS,
        block_id=f"{ENTRY_BLOCK_PREFIX}{record.id}",
        is_ephemeral=True,
    )


async def test_details_opens_a_modal_with_the_whole_record(
    slack: SlackEmulator, driver: SlackDriver, ran: ExecutionRecord
) -> None:
    _, ephemeral = await history(driver, slack, Seed.ALICE, Seed.GENERAL)
    interaction = await open_details(driver, slack, Seed.ALICE, ephemeral, ran)
    assert interaction.response.status == 200 and interaction.response.elapsed < ACK_DEADLINE

    view = await slack.wait_for(lambda: next(iter(slack.views(user=Seed.ALICE)), None), what="details modal")
    opened = [c for c in slack.calls("views.open")]
    assert [c.ok for c in opened] == [True]  # the emulator validated the view as Slack would
    definition = view.definition
    assert definition["callback_id"] == HISTORY_DETAILS_CALLBACK_ID
    assert definition["private_metadata"] == str(ran.id)
    assert len(definition["blocks"]) <= 100
    text = json.dumps(definition, ensure_ascii=False)
    assert "Resize the web fleet" in text
    assert "make the web fleet bigger &lt;!channel&gt;" in text  # the prompt, escaped
    assert "aws ec2 modify-instance-attribute" in text
    assert "IncorrectInstanceState: The instance 'i-0aaa' is not in the 'stopped' state." in text
    assert "exit 254" in text
    assert "aws ec2 start-instances --instance-ids i-0aaa" in text  # the rollback step
    assert "THE LAST LINE" in text and "line 00000 of" not in text  # the output's tail, not its head
    assert "the last" in text and "characters" in text
    assert f"approved by <@{Seed.ADMIN}>" in text and "go ahead" in text
    assert "refused (not an approver)" in text
    assert "rolled back after c2 failed" in text
    for block in definition["blocks"]:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3_000


async def test_details_of_a_very_large_record_fits_slacks_limits(
    slack: SlackEmulator, driver: SlackDriver, store: HistoryStore
) -> None:
    base = slack_record("Tag everything", "aws ec2 describe-instances", channel=Seed.GENERAL, minutes_ago=1)
    output = "é✓ output line\n" * 4_000
    commands = [
        CommandRecord(
            id=f"c{n}",
            command=f"aws ec2 create-tags --resources i-{n:05d} " + "--tags Key=a,Value=b " * 40,
            status=CommandStatus.SUCCEEDED,
            output=output,
            output_bytes=len(output.encode()),
        )
        for n in range(150)
    ]
    (record,) = await add(store, base.model_copy(update={"commands": commands}))
    _, ephemeral = await history(driver, slack, Seed.ALICE, Seed.GENERAL)
    await open_details(driver, slack, Seed.ALICE, ephemeral, record)
    view = await slack.wait_for(lambda: next(iter(slack.views(user=Seed.ALICE)), None), what="details modal")
    blocks = view.definition["blocks"]
    assert len(blocks) == 100
    assert len(json.dumps(view.definition).encode()) <= 250_000
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    shown = [text for text in sections if text.startswith("`c")]
    assert 80 <= len(shown) < 150
    assert [t for t in sections if "do not fit in this window" in t] == [
        f":warning: {150 - len(shown)} more commands do not fit in this window; "
        f"`cloudops history --conversation {record.conversation_id} --json` shows them all."
    ]
    assert all(len(text) <= 3_000 for text in sections)


@pytest.mark.parametrize("name", ["terminate", "cli"])
async def test_details_of_a_record_the_clicker_may_not_see_is_refused(
    slack: SlackEmulator, driver: SlackDriver, fleet: dict[str, ExecutionRecord], name: str
) -> None:
    _, ephemeral = await history(driver, slack, Seed.BOB, Seed.GENERAL)
    # A click carrying the id of a record from #ops, where BOB is not, or from the command line (he is no
    # approver).
    interaction = await driver.block_action(
        Seed.BOB,
        Seed.GENERAL,
        ephemeral.message_ts,
        HISTORY_DETAILS,
        value=str(fleet[name].id),
        is_ephemeral=True,
    )
    assert interaction.response.status == 200
    await slack.wait_for(lambda: len(slack.ephemerals(user=Seed.BOB)) == 2, what="refusal")
    assert "not available to you" in slack.ephemerals(user=Seed.BOB)[-1].text
    assert slack.views(user=Seed.BOB) == [] and slack.calls("views.open") == []
    # The list is left as it was.
    assert set(shown_ids(ephemeral.blocks)) == ids(fleet, "buckets", "stop", "old_delete", "random")


# -- malformed queries, help, timing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "named", "valid"),
    [
        ("status:nope", "`status:nope`", ["`pending_approval`", "`failed`", "`rolled_back`"]),
        ("risk:huge", "`risk:huge`", ["`read_only`", "`modify`", "`destructive`"]),
        ("since:7x", "`since:7x`", ["`30m`", "`7d`", "`2024-05-01`"]),
        ("colour:red", "`colour:`", ["`user:`", "`status:`", "`channel:`"]),
        ("user:@alice", "`user:@alice`", ["`user:me`"]),
        ("status:", "`status:`", ["`status:failed`"]),
        ("channel:#nowhere", "`#nowhere`", ["`channel:here`"]),
    ],
)
async def test_a_malformed_filter_is_answered_with_what_is_wrong_and_the_valid_values(
    slack: SlackEmulator, driver: SlackDriver, query: str, named: str, valid: list[str]
) -> None:
    interaction = await driver.slash_command(Seed.ALICE, Seed.GENERAL, "/cloudops", f"history stop {query}")
    assert interaction.response.status == 200 and interaction.response.elapsed < ACK_DEADLINE
    if query == "channel:#nowhere":
        # Channel names are resolved against the person's channels, after the acknowledgement.
        payload = await posted(slack, interaction)
        text = json.dumps(payload["blocks"], ensure_ascii=False)
    else:
        text = ack_text(interaction)
        assert slack.response_url_posts() == []
    assert named in text
    for value in valid:
        assert value in text
    assert ":warning:" in text


async def test_help_explains_the_syntax_with_examples(slack: SlackEmulator, driver: SlackDriver) -> None:
    for text in ("help", "", "HELP"):
        interaction = await driver.slash_command(Seed.BOB, Seed.GENERAL, "/cloudops", text)
        assert interaction.response.status == 200 and interaction.response.elapsed < ACK_DEADLINE
        answer = ack_text(interaction)
        assert "/cloudops history [words] [filters]" in answer
        for example in ("status:failed since:7d", "user:me", "risk:destructive", "channel:here", "service:"):
            assert example in answer
        assert ":warning:" not in answer


async def test_an_unknown_subcommand_gets_the_help_naming_it(slack: SlackEmulator, driver: SlackDriver) -> None:
    interaction = await driver.slash_command(Seed.BOB, Seed.GENERAL, "/cloudops", "histroy status:failed")
    answer = ack_text(interaction)
    assert "`/cloudops histroy` is not a command" in answer
    assert "/cloudops history [words] [filters]" in answer


async def test_the_ack_comes_before_a_slow_search(
    slack: SlackEmulator,
    driver: SlackDriver,
    store: EdgeHistoryStore,
    fleet: dict[str, ExecutionRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    latest = store.latest

    async def slow_latest(*args: Any, **kwargs: Any) -> list[ExecutionRecord]:
        await asyncio.sleep(2.0)
        return await latest(*args, **kwargs)

    monkeypatch.setattr(store, "latest", slow_latest)
    interaction = await driver.slash_command(Seed.ALICE, Seed.GENERAL, "/cloudops", "history channel:here")
    assert interaction.response.elapsed < 1.0
    assert slack.response_url_posts() == []
    payload = await posted(slack, interaction)
    assert set(shown_ids(payload["blocks"])) == ids(fleet, "buckets", "stop", "old_delete")
