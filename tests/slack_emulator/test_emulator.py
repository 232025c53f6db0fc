"""The emulator, proved with slack_sdk's own clients, and the driver, proved against a real Bolt AsyncApp."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.slack_emulator import Seed, SlackDriver, SlackEmulator

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ALICE, BOB, ADMIN = Seed.ALICE, Seed.BOB, Seed.ADMIN
GENERAL, OPS, RANDOM = Seed.GENERAL, Seed.OPS, Seed.RANDOM


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator() as emu:
        yield emu


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def client(emulator: SlackEmulator, http: aiohttp.ClientSession) -> AsyncWebClient:
    # No retry handlers: a 429 surfaces as SlackApiError, the way a naive client meets it.
    return AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url, session=http, retry_handlers=[])


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(action_id: str, text: str = "Approve", value: str = "plan-42") -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text}, "value": value}


def modal(blocks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"type": "modal", "title": {"type": "plain_text", "text": "New plan"}, "blocks": blocks, **extra}


async def slack_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


# ---------------------------------------------------------------------- auth, messages, threads


async def test_auth_test_identifies_the_bot_and_a_wrong_token_is_invalid_auth(
    emulator: SlackEmulator, client: AsyncWebClient, http: aiohttp.ClientSession
) -> None:
    identity = await client.auth_test()
    assert (identity["user_id"], identity["team_id"]) == (emulator.bot_user_id, emulator.team_id)

    stranger = AsyncWebClient(token="xoxb-not-the-token", base_url=emulator.api_url, session=http)
    error = await slack_error(stranger.chat_postMessage(channel=GENERAL, text="hello"))
    assert error.response["error"] == "invalid_auth"
    assert emulator.channel_messages(GENERAL) == []


async def test_update_keeps_every_edit_with_the_time_it_happened(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel=GENERAL, text="plan: pending", blocks=[section("*pending*")])
    emulator.clock.advance(2.0)
    await client.chat_update(channel=GENERAL, ts=posted["ts"], text="plan: approved")
    emulator.clock.advance(3.0)
    await client.chat_update(channel=GENERAL, ts=posted["ts"], text="plan: done", blocks=[])

    history = emulator.edit_history(GENERAL, posted["ts"])
    assert [v.text for v in history] == ["plan: pending", "plan: approved", "plan: done"]
    assert [v.via for v in history] == ["chat.postMessage", "chat.update", "chat.update"]
    # Blocks survive an update that leaves them out, and an empty list removes them.
    assert history[1].blocks == [section("*pending*")] and history[2].blocks is None
    assert history[1].at - history[0].at == pytest.approx(2.0, abs=0.5)
    assert history[2].at - history[1].at == pytest.approx(3.0, abs=0.5)
    replies = await client.conversations_replies(channel=GENERAL, ts=posted["ts"])
    assert replies["messages"][0]["edited"]["user"] == emulator.bot_user_id


async def test_update_refuses_unknown_messages_and_messages_the_bot_did_not_post(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    typed = emulator.post_as_user(ALICE, GENERAL, "please restart web")
    assert (await slack_error(client.chat_update(channel=GENERAL, ts=typed.ts, text="x"))).response[
        "error"
    ] == "cant_update_message"
    assert (await slack_error(client.chat_update(channel=GENERAL, ts="1.000001", text="x"))).response[
        "error"
    ] == "message_not_found"
    assert (await slack_error(client.chat_update(channel="C0NOWHERE0", ts=typed.ts, text="x"))).response[
        "error"
    ] == "channel_not_found"
    assert emulator.edit_history(GENERAL, typed.ts)[-1].text == "please restart web"


async def test_thread_replies_are_counted_and_paged_with_cursors(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    root = await client.chat_postMessage(channel=GENERAL, text="plan 42")
    first = await client.chat_postMessage(channel=GENERAL, text="step 1", thread_ts=root["ts"])
    # Replying to a reply lands in the original thread, as on Slack.
    await client.chat_postMessage(channel=GENERAL, text="step 2", thread_ts=first["ts"])
    await client.chat_postMessage(channel=GENERAL, text="step 3", thread_ts=root["ts"])
    await client.chat_postMessage(channel=GENERAL, text="step 4", thread_ts=root["ts"], reply_broadcast=True)

    # slack_sdk's paginator reuses one response object, so each page is copied as it arrives.
    pages = [
        list(page["messages"])
        async for page in await client.conversations_replies(channel=GENERAL, ts=root["ts"], limit=2)
    ]
    assert [[m["text"] for m in page] for page in pages] == [
        ["plan 42", "step 1"],
        ["step 2", "step 3"],
        ["step 4"],
    ]
    parent = pages[0][0]
    assert parent["reply_count"] == 4 and parent["latest_reply"] == pages[2][0]["ts"]
    timestamps = [m["ts"] for page in pages for m in page]
    assert timestamps == sorted(timestamps, key=float) and len(set(timestamps)) == 5
    assert [m.text for m in emulator.channel_messages(GENERAL)] == ["plan 42", "step 4"]
    error = await slack_error(client.conversations_replies(channel=GENERAL, ts="1.000001"))
    assert error.response["error"] == "thread_not_found"


async def test_permalinks_follow_slack_format_with_thread_for_replies(client: AsyncWebClient) -> None:
    root = await client.chat_postMessage(channel=GENERAL, text="plan")
    reply = await client.chat_postMessage(channel=GENERAL, text="done", thread_ts=root["ts"])

    top = await client.chat_getPermalink(channel=GENERAL, message_ts=root["ts"])
    assert top["permalink"] == f"https://cloudops-test.slack.com/archives/{GENERAL}/p{root['ts'].replace('.', '')}"
    threaded = await client.chat_getPermalink(channel=GENERAL, message_ts=reply["ts"])
    assert threaded["permalink"].endswith(f"/p{reply['ts'].replace('.', '')}?thread_ts={root['ts']}&cid={GENERAL}")
    error = await slack_error(client.chat_getPermalink(channel=GENERAL, message_ts="1.000001"))
    assert error.response["error"] == "message_not_found"


async def test_ephemeral_messages_reach_only_their_user_who_must_be_in_the_channel(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    sent = await client.chat_postEphemeral(channel=OPS, user=ALICE, text="only you can approve this")
    assert [e.text for e in emulator.ephemerals(user=ALICE)] == ["only you can approve this"]
    assert emulator.ephemerals(user=ADMIN) == [] and emulator.channel_messages(OPS) == []
    assert emulator.ephemerals(user=ALICE)[0].message_ts == sent["message_ts"]

    not_member = await slack_error(client.chat_postEphemeral(channel=OPS, user=BOB, text="psst"))
    assert not_member.response["error"] == "user_not_in_channel"
    nobody = await slack_error(client.chat_postEphemeral(channel=OPS, user="U0NOBODY00", text="psst"))
    assert nobody.response["error"] == "user_not_found"


async def test_users_and_usergroups_answer_like_slack(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    admin = await client.users_info(user=ADMIN)
    alice = await client.users_info(user=ALICE)
    assert (admin["user"]["is_admin"], alice["user"]["is_admin"]) == (True, False)
    assert alice["user"]["name"] == "alice"
    assert (await slack_error(client.users_info(user="U0NOBODY00"))).response["error"] == "user_not_found"

    group = emulator.add_usergroup("oncall", [BOB])
    assert (await client.usergroups_users_list(usergroup=Seed.APPROVERS))["users"] == [ADMIN, ALICE]
    assert (await client.usergroups_users_list(usergroup=group.id))["users"] == [BOB]
    error = await slack_error(client.usergroups_users_list(usergroup="S0MISSING0"))
    assert error.response["error"] == "no_such_subteam"


async def test_channels_the_bot_is_not_in_are_hidden_or_refuse_posts(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    info = await client.conversations_info(channel=OPS)
    assert info["channel"]["is_private"] and info["channel"]["is_member"]
    public = await client.conversations_info(channel=RANDOM)
    assert public["channel"]["is_member"] is False
    assert (await slack_error(client.chat_postMessage(channel=RANDOM, text="hi"))).response["error"] == "not_in_channel"

    secret = emulator.add_channel("secret", is_private=True, members=[ADMIN], bot_is_member=False)
    assert (await slack_error(client.conversations_info(channel=secret.id))).response["error"] == "channel_not_found"
    assert emulator.channel_messages(RANDOM) == []


# ---------------------------------------------------------------------- Block Kit and text limits


@pytest.mark.parametrize(
    ("at_limit", "over_limit", "pointer"),
    [
        (section("s" * 3000), section("s" * 3001), "/blocks/0/text/text"),
        (
            {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
            {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
            "/blocks/0/text/text",
        ),
        (
            {"type": "actions", "elements": [button("go", text="b" * 75)]},
            {"type": "actions", "elements": [button("go", text="b" * 76)]},
            "/blocks/0/elements/0/text/text",
        ),
        (
            {"type": "actions", "elements": [button("a" * 255)]},
            {"type": "actions", "elements": [button("a" * 256)]},
            "/blocks/0/elements/0/action_id",
        ),
        (section("x", block_id="b" * 255), section("x", block_id="b" * 256), "/blocks/0/block_id"),
    ],
    ids=["section-text", "header-text", "button-text", "action-id", "block-id"],
)
async def test_documented_block_limits_are_enforced_at_the_boundary(
    emulator: SlackEmulator, client: AsyncWebClient, at_limit: dict[str, Any], over_limit: dict[str, Any], pointer: str
) -> None:
    accepted = await client.chat_postMessage(channel=GENERAL, text="fits", blocks=[at_limit])
    error = await slack_error(client.chat_postMessage(channel=GENERAL, text="too long", blocks=[over_limit]))

    assert error.response["error"] == "invalid_blocks"
    assert any(pointer in m for m in error.response["response_metadata"]["messages"])
    assert [m.ts for m in emulator.channel_messages(GENERAL)] == [accepted["ts"]]


async def test_blocks_slack_sdk_rejects_are_invalid_blocks(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    unknown_type = await slack_error(client.chat_postMessage(channel=GENERAL, text="x", blocks=[{"type": "marquee"}]))
    assert unknown_type.response["error"] == "invalid_blocks"
    # Eleven fields in a section and an image without alt_text break slack_sdk's own model rules.
    fields = {"type": "section", "fields": [{"type": "mrkdwn", "text": str(i)} for i in range(11)]}
    too_many_fields = await slack_error(client.chat_postMessage(channel=GENERAL, text="x", blocks=[fields]))
    image = {"type": "image", "image_url": "https://example.com/a.png"}
    no_alt = await slack_error(client.chat_postMessage(channel=GENERAL, text="x", blocks=[image]))
    assert too_many_fields.response["error"] == no_alt.response["error"] == "invalid_blocks"
    not_json = await slack_error(client.api_call("chat.postMessage", data={"channel": GENERAL, "blocks": "[{"}))
    assert not_json.response["error"] == "invalid_blocks_format"
    assert emulator.channel_messages(GENERAL) == []


async def test_a_message_holds_at_most_fifty_blocks(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel=GENERAL, text="50", blocks=[section(str(i)) for i in range(50)])
    error = await slack_error(client.chat_postMessage(channel=GENERAL, text="51", blocks=[section("x")] * 51))
    assert error.response["error"] == "invalid_blocks"
    assert "no more than 50 items allowed" in error.response["errors"][0]
    assert [m.text for m in emulator.channel_messages(GENERAL)] == ["50"]


async def test_message_text_over_forty_thousand_characters_is_msg_too_long(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    await client.chat_postMessage(channel=GENERAL, text="t" * 40_000)
    error = await slack_error(client.chat_postMessage(channel=GENERAL, text="t" * 40_001))
    assert error.response["error"] == "msg_too_long"
    assert len(emulator.channel_messages(GENERAL)) == 1


# ---------------------------------------------------------------------- views


async def test_a_trigger_id_opens_one_modal_and_only_within_three_seconds(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    trigger = emulator.issue_trigger_id(ALICE)
    opened = await client.views_open(trigger_id=trigger, view=modal([section("target?")], callback_id="plan"))
    view = emulator.view(opened["view"]["id"])
    assert (view.user_id, view.definition["callback_id"]) == (ALICE, "plan")

    reused = await slack_error(client.views_open(trigger_id=trigger, view=modal([section("again")])))
    assert reused.response["error"] == "exchanged_trigger_id"
    stale = emulator.issue_trigger_id(ALICE)
    emulator.clock.advance(3.1)
    expired = await slack_error(client.views_open(trigger_id=stale, view=modal([section("late")])))
    assert expired.response["error"] == "expired_trigger_id"
    invented = await slack_error(client.views_open(trigger_id="1.2.deadbeef", view=modal([section("x")])))
    assert invented.response["error"] == "invalid_trigger_id"
    assert len(emulator.views()) == 1


async def test_invalid_views_are_refused_without_spending_the_trigger(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    trigger = emulator.issue_trigger_id(ALICE)
    oversized = await slack_error(client.views_open(trigger_id=trigger, view=modal([section("x")] * 101)))
    assert oversized.response["error"] == "invalid_arguments"
    assert "no more than 100 items allowed" in oversized.response["response_metadata"]["messages"][0]
    untitled = await slack_error(
        client.views_open(trigger_id=trigger, view={"type": "modal", "blocks": [section("x")]})
    )
    assert untitled.response["error"] == "invalid_arguments"

    await client.views_open(trigger_id=trigger, view=modal([section(str(i)) for i in range(100)]))
    assert len(emulator.views(user=ALICE)) == 1


async def test_views_update_by_id_or_external_id_checks_the_hash(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    opened = await client.views_open(
        trigger_id=emulator.issue_trigger_id(ALICE), view=modal([section("step 1")], external_id="plan-42")
    )
    first_hash = opened["view"]["hash"]
    updated = await client.views_update(view_id=opened["view"]["id"], hash=first_hash, view=modal([section("step 2")]))
    conflict = await slack_error(
        client.views_update(view_id=opened["view"]["id"], hash=first_hash, view=modal([section("stale")]))
    )
    assert conflict.response["error"] == "hash_conflict"
    await client.views_update(external_id="plan-42", view=modal([section("step 3")], external_id="plan-42"))
    missing = await slack_error(client.views_update(view_id="V0MISSING0", view=modal([section("x")])))
    assert missing.response["error"] == "not_found"

    stored = emulator.view(opened["view"]["id"])
    assert updated["view"]["hash"] != first_hash
    assert [v.view["blocks"][0]["text"]["text"] for v in stored.history] == ["step 1", "step 2", "step 3"]


async def test_home_tab_is_published_per_user(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    home = {"type": "home", "blocks": [section("3 plans waiting")]}
    first = await client.views_publish(user_id=ALICE, view=home)
    again = await client.views_publish(user_id=ALICE, view={"type": "home", "blocks": [section("2 plans waiting")]})
    assert first["view"]["id"] == again["view"]["id"]
    error = await slack_error(client.views_publish(user_id=ALICE, view=modal([section("x")])))
    assert error.response["error"] == "invalid_arguments"
    [stored] = emulator.views(user=ALICE)
    assert stored.type == "home" and stored.definition["blocks"][0]["text"]["text"] == "2 plans waiting"


# ---------------------------------------------------------------------- files


async def test_files_upload_v2_stores_the_bytes_and_shares_them_in_the_thread(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    root = await client.chat_postMessage(channel=GENERAL, text="plan 42")
    uploaded = await client.files_upload_v2(
        channel=GENERAL,
        thread_ts=root["ts"],
        content="aws ec2 stop-instances --instance-ids i-123\n",
        filename="plan-42.sh",
        title="Plan 42",
        initial_comment="the exact commands",
    )

    [stored] = emulator.files()
    assert stored.id == uploaded["file"]["id"]
    assert stored.content == b"aws ec2 stop-instances --instance-ids i-123\n"
    assert (stored.title, stored.channels, stored.thread_ts) == ("Plan 42", [GENERAL], root["ts"])
    assert [c.method for c in emulator.calls()][-3:] == [
        "files.getUploadURLExternal",
        "files.upload",
        "files.completeUploadExternal",
    ]
    thread = await client.conversations_replies(channel=GENERAL, ts=root["ts"])
    share = thread["messages"][1]
    assert share["text"] == "the exact commands" and share["files"][0]["id"] == stored.id


# ---------------------------------------------------------------------- response_url


async def test_response_url_posts_ephemeral_by_default_or_in_channel_or_replaces_or_deletes(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    original = await client.chat_postMessage(channel=GENERAL, text="approve plan 42?", blocks=[section("approve?")])
    url = emulator.mint_response_url(GENERAL, ALICE, original_ts=original["ts"])
    webhook = AsyncWebhookClient(url)

    assert (await webhook.send(text="working on it")).status_code == 200
    assert [e.text for e in emulator.ephemerals(user=ALICE)] == ["working on it"]
    await webhook.send(text="plan 42 approved by alice", response_type="in_channel")
    assert emulator.channel_messages(GENERAL)[-1].text == "plan 42 approved by alice"
    await webhook.send(text="approved", replace_original=True)
    replaced = emulator.edit_history(GENERAL, original["ts"])
    assert (replaced[-1].text, replaced[-1].blocks, replaced[-1].via) == ("approved", None, "response_url")
    await webhook.send_dict({"delete_original": True})
    assert original["ts"] not in [m.ts for m in emulator.channel_messages(GENERAL)]
    assert (await webhook.send(text="fifth and last")).status_code == 200

    # Slack honours a response_url five times; the sixth is refused.
    refused = await webhook.send(text="sixth")
    assert refused.status_code == 404 and "used_url" in refused.body
    assert [p.outcome for p in emulator.response_url_posts()] == [
        "posted_ephemeral",
        "posted_in_channel",
        "replaced_original",
        "deleted_original",
        "posted_ephemeral",
        "used_url",
    ]
    assert [e.text for e in emulator.ephemerals(user=ALICE)] == ["working on it", "fifth and last"]


async def test_response_url_expires_after_thirty_minutes(emulator: SlackEmulator) -> None:
    url = emulator.mint_response_url(GENERAL, ALICE)
    emulator.clock.advance(30 * 60 + 1)
    late = await AsyncWebhookClient(url).send(text="too late")
    assert late.status_code == 404 and "expired_url" in late.body
    assert emulator.ephemerals() == []


# ---------------------------------------------------------------------- rate limits


async def test_chat_update_past_tier_three_gets_429_with_retry_after_and_is_not_applied(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel=GENERAL, text="v0")
    for n in range(1, 51):
        await client.chat_update(channel=GENERAL, ts=posted["ts"], text=f"v{n}")

    error = await slack_error(client.chat_update(channel=GENERAL, ts=posted["ts"], text="v51"))
    assert error.response.status_code == 429 and error.response["error"] == "ratelimited"
    retry_after = int(error.response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert emulator.edit_history(GENERAL, posted["ts"])[-1].text == "v50"
    [hit] = emulator.rate_limited("chat.update")
    assert (hit.reason, hit.retry_after) == ("limit", retry_after)
    last = emulator.calls("chat.update")[-1]
    assert (last.http_status, last.retry_after, last.args["text"]) == (429, retry_after, "v51")
    assert emulator.violations() == []


async def test_slack_sdk_retry_handler_honours_retry_after_so_no_violation_is_recorded(
    emulator: SlackEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.limits.configure(window_seconds=1.0, method_limits={"chat.update": 3})
    patient = AsyncWebClient(
        token=emulator.bot_token,
        base_url=emulator.api_url,
        session=http,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=3)],
    )
    posted = await patient.chat_postMessage(channel=GENERAL, text="v0")
    for n in range(1, 6):
        await patient.chat_update(channel=GENERAL, ts=posted["ts"], text=f"v{n}")

    assert emulator.count_429("chat.update") >= 1
    assert emulator.violations() == []
    assert [v.text for v in emulator.edit_history(GENERAL, posted["ts"])] == [f"v{n}" for n in range(6)]


async def test_a_client_that_ignores_retry_after_is_recorded_as_a_violation(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    emulator.limits.configure(window_seconds=10.0, method_limits={"chat.update": 2})
    posted = await client.chat_postMessage(channel=GENERAL, text="v0")
    for n in (1, 2):
        await client.chat_update(channel=GENERAL, ts=posted["ts"], text=f"v{n}")
    first = await slack_error(client.chat_update(channel=GENERAL, ts=posted["ts"], text="v3"))
    assert emulator.violations() == []

    # Retry at once, as if the Retry-After header were not there.
    await slack_error(client.chat_update(channel=GENERAL, ts=posted["ts"], text="v3"))
    [violation] = emulator.violations("chat.update")
    assert violation.seconds_early > int(first.response.headers["Retry-After"]) - 1
    assert [h.violation for h in emulator.rate_limited("chat.update")] == [False, True]


async def test_concurrent_calls_in_flight_when_a_429_goes_out_are_not_violations(
    emulator: SlackEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.limits.configure(
        window_seconds=1.0,
        method_limits={"chat.update": 4},
        post_message_channel_limit=20,
        in_flight_grace_seconds=0.5,
    )
    patient = AsyncWebClient(
        token=emulator.bot_token,
        base_url=emulator.api_url,
        session=http,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=3)],
    )
    posted = [await patient.chat_postMessage(channel=GENERAL, text=f"plan {n}") for n in range(7)]
    await asyncio.gather(*(patient.chat_update(channel=GENERAL, ts=p["ts"], text="done") for p in posted))

    assert emulator.count_429("chat.update") >= 3
    assert emulator.violations() == []
    assert all(emulator.edit_history(GENERAL, p["ts"])[-1].text == "done" for p in posted)


async def test_storm_mode_answers_429_to_the_next_calls_whatever_the_window(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    emulator.limits.storm("chat.postEphemeral", 2, retry_after=4)
    for _ in range(2):
        error = await slack_error(client.chat_postEphemeral(channel=GENERAL, user=ALICE, text="hi"))
        assert error.response.headers["Retry-After"] == "4"
        emulator.clock.advance(4)
    await client.chat_postEphemeral(channel=GENERAL, user=ALICE, text="hi")

    assert [h.reason for h in emulator.rate_limited()] == ["storm", "storm"]
    assert emulator.violations() == [] and len(emulator.ephemerals(user=ALICE)) == 1


async def test_post_message_is_paced_per_channel(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    for n in range(5):
        await client.chat_postMessage(channel=GENERAL, text=f"burst {n}")
    error = await slack_error(client.chat_postMessage(channel=GENERAL, text="one too many"))
    assert error.response.status_code == 429
    await client.chat_postMessage(channel=OPS, text="another channel is unaffected")
    emulator.clock.advance(int(error.response.headers["Retry-After"]))
    await client.chat_postMessage(channel=GENERAL, text="after waiting")

    assert [m.text for m in emulator.channel_messages(GENERAL)][-1] == "after waiting"
    assert "one too many" not in [m.text for m in emulator.channel_messages(GENERAL)]
    assert emulator.violations() == []


# ---------------------------------------------------------------------- the driver against a Bolt app


@dataclass
class Seen:
    retry_headers: list[tuple[str | None, str | None, str]] = field(default_factory=list)


@dataclass
class Harness:
    driver: SlackDriver
    seen: Seen


def build_app(emulator: SlackEmulator, seen: Seen) -> AsyncApp:
    app = AsyncApp(
        client=AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url),
        signing_secret=SIGNING_SECRET,
    )

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any, request: Any, body: dict[str, Any]) -> None:
        seen.retry_headers.append(
            (
                request.headers.get("x-slack-retry-num", [None])[0],
                request.headers.get("x-slack-retry-reason", [None])[0],
                body["event_id"],
            )
        )
        await say(text=f"planning: {event['text']}", thread_ts=event.get("thread_ts") or event["ts"])

    @app.action("approve")
    async def on_approve(ack: Any, body: dict[str, Any], respond: Any, client: AsyncWebClient) -> None:
        await ack()
        await respond(text="executing plan 42")
        await client.chat_update(
            channel=body["channel"]["id"],
            ts=body["message"]["ts"],
            text=f"plan 42 approved by <@{body['user']['id']}>",
            blocks=[section(f"*approved* by <@{body['user']['id']}>")],
        )

    @app.shortcut("new_plan")
    async def on_shortcut(ack: Any, shortcut: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        element = {"type": "plain_text_input", "action_id": "instance"}
        input_block = {
            "type": "input",
            "block_id": "target",
            "label": {"type": "plain_text", "text": "Instance"},
            "element": element,
        }
        await client.views_open(trigger_id=shortcut["trigger_id"], view=modal([input_block], callback_id="plan"))

    @app.view("plan")
    async def on_submit(ack: Any, view: dict[str, Any]) -> None:
        instance = view["state"]["values"]["target"]["instance"]["value"]
        if not instance.startswith("i-"):
            await ack(response_action="errors", errors={"target": "an instance id starts with i-"})
            return
        await ack()

    @app.command("/cloudops")
    async def on_command(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        await ack()
        await respond(response_type="in_channel", text=f"planning {command['text']}")

    return app


@asynccontextmanager
async def serve(app: AsyncApp) -> AsyncIterator[str]:
    runner = web.AppRunner(app.web_app(path="/slack/events"))
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def bolt(emulator: SlackEmulator) -> AsyncIterator[Harness]:
    seen = Seen()
    async with serve(build_app(emulator, seen)) as url, SlackDriver(url, SIGNING_SECRET, emulator) as driver:
        yield Harness(driver=driver, seen=seen)


def bot_replies(emulator: SlackEmulator, channel: str, ts: str) -> list[str]:
    return [m.text for m in emulator.thread(channel, ts) if m.user == emulator.bot_user_id]


async def test_signed_mention_reaches_the_listener_which_replies_in_the_thread(
    emulator: SlackEmulator, bolt: Harness, client: AsyncWebClient
) -> None:
    delivery = await bolt.driver.app_mention(ALICE, GENERAL, "stop i-123")

    assert delivery.response.status == 200 and delivery.response.elapsed < 3.0
    mention = delivery.message
    assert mention is not None and delivery.envelope["event"]["ts"] == mention.ts
    await emulator.wait_for(lambda: bot_replies(emulator, GENERAL, mention.ts), what="a threaded reply")
    thread = await client.conversations_replies(channel=GENERAL, ts=mention.ts)
    assert [m["text"] for m in thread["messages"]] == [mention.text, f"planning: {mention.text}"]
    assert thread["messages"][0]["user"] == ALICE


async def test_a_redelivered_event_carries_retry_headers_and_the_same_event_id(
    emulator: SlackEmulator, bolt: Harness
) -> None:
    delivery = await bolt.driver.app_mention(ALICE, GENERAL, "status")
    await emulator.wait_for(lambda: len(bolt.seen.retry_headers) == 1)
    retried = await bolt.driver.redeliver(delivery, retry_num=1, reason="http_timeout")

    assert retried.status == 200
    await emulator.wait_for(lambda: len(bolt.seen.retry_headers) == 2)
    assert bolt.seen.retry_headers == [
        (None, None, delivery.event_id),
        ("1", "http_timeout", delivery.event_id),
    ]


@pytest.mark.parametrize("attack", ["forged", "unsigned", "stale", "altered"])
async def test_requests_without_a_valid_slack_signature_get_401_and_do_nothing(
    emulator: SlackEmulator, bolt: Harness, attack: str
) -> None:
    driver = bolt.driver
    envelope, mention = driver.mention_envelope(ALICE, GENERAL, "terminate everything")
    if attack == "forged":
        response = await driver.send_with_forged_signature(envelope)
    elif attack == "unsigned":
        response = await driver.send_without_signature_headers(envelope)
    elif attack == "stale":
        response = await driver.send_with_stale_timestamp(envelope)
    else:
        altered = {**envelope, "event": {**envelope["event"], "text": "terminate prod"}}
        response = await driver.send_with_altered_body(envelope, altered)

    assert response.status == 401
    await asyncio.sleep(0.2)
    assert bot_replies(emulator, GENERAL, mention.ts) == []
    # The very same envelope, properly signed, does reach the listener.
    assert (await driver.deliver(envelope)).response.status == 200
    await emulator.wait_for(lambda: bot_replies(emulator, GENERAL, mention.ts), what="the control reply")


async def test_url_verification_is_answered_with_the_challenge(bolt: Harness) -> None:
    response = await bolt.driver.url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    assert response.status == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


async def test_button_click_is_acked_then_answered_through_response_url_and_chat_update(
    emulator: SlackEmulator, bolt: Harness, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(
        channel=GENERAL,
        text="approve plan 42?",
        blocks=[section("stop i-123"), {"type": "actions", "block_id": "decide", "elements": [button("approve")]}],
    )
    interaction = await bolt.driver.block_action(ALICE, GENERAL, posted["ts"], "approve")

    assert interaction.response.status == 200 and interaction.response.elapsed < 3.0
    assert interaction.payload["actions"][0] | {"action_ts": None} == {
        "action_id": "approve",
        "block_id": "decide",
        "type": "button",
        "text": {"type": "plain_text", "text": "Approve"},
        "value": "plan-42",
        "action_ts": None,
    }
    await emulator.wait_for(lambda: len(emulator.edit_history(GENERAL, posted["ts"])) == 2, what="the update")
    await emulator.wait_for(lambda: emulator.ephemerals(user=ALICE), what="the response")
    assert emulator.edit_history(GENERAL, posted["ts"])[-1].text == f"plan 42 approved by <@{ALICE}>"
    assert [e.text for e in emulator.ephemerals(user=ALICE)] == ["executing plan 42"]
    assert [p.outcome for p in emulator.response_url_posts()] == ["posted_ephemeral"]
    with pytest.raises(LookupError):
        await bolt.driver.block_action(ALICE, GENERAL, posted["ts"], "reject")


async def test_shortcut_opens_a_modal_whose_submission_is_validated_by_the_app(
    emulator: SlackEmulator, bolt: Harness
) -> None:
    await bolt.driver.global_shortcut(ALICE, "new_plan")
    [view] = await emulator.wait_for(lambda: emulator.views(user=ALICE), what="the modal")

    def typed(value: str) -> dict[str, Any]:
        return {"target": {"instance": {"type": "plain_text_input", "value": value}}}

    rejected = await bolt.driver.view_submission(ALICE, view.id, typed("web-1"))
    assert rejected.response.json()["response_action"] == "errors"
    assert view.closed_at is None and view.submission_errors == {"target": "an instance id starts with i-"}
    accepted = await bolt.driver.view_submission(ALICE, view.id, typed("i-123"))
    assert accepted.response.status == 200 and view.closed_at is not None


async def test_slash_command_answer_goes_to_the_channel_through_response_url(
    emulator: SlackEmulator, bolt: Harness
) -> None:
    invoked = await bolt.driver.slash_command(ALICE, GENERAL, "/cloudops", "scale web to 4")
    assert invoked.response.status == 200
    await emulator.wait_for(lambda: emulator.channel_messages(GENERAL), what="the in-channel answer")
    [answer] = emulator.channel_messages(GENERAL)
    assert (answer.text, answer.user, answer.versions[0].via) == (
        "planning scale web to 4",
        emulator.bot_user_id,
        "response_url",
    )
