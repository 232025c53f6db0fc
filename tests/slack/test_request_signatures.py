"""HTTP mode refuses every request Slack did not sign with a 401, malformed headers included, and never logs
what a refused request carried."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.say.async_say import AsyncSay

from bot.slack.app import ListenerGroup
from bot.slack.signature import MAX_AGE_SECONDS, signature_problem
from tests.slack_emulator import Seed, SlackDriver, SlackEmulator

ALICE, GENERAL = Seed.ALICE, Seed.GENERAL
# Text only a request body holds: found in any log, it means a body was logged.
BODY_MARKER = "body-marker-5e1f0c7a terminate the production fleet"
VALID_SIGNATURE = "v0=" + "0" * 64


class Mentions:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def register(self, app: AsyncApp) -> None:
        @app.event("app_mention")
        async def reply(event: dict[str, Any], say: AsyncSay) -> None:
            self.seen.append(event["text"])
            await say(text="on it", thread_ts=event["ts"])


@pytest.fixture
def mentions() -> Mentions:
    return Mentions()


@pytest.fixture
def listener_groups(mentions: Mentions) -> list[ListenerGroup]:
    return [mentions]


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("slack_bolt", "aiohttp", "cloudops"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def headers_cases() -> list[tuple[str, dict[str, str] | None, tuple[str, ...]]]:
    """(name, header values to send instead of the right ones, headers to leave out)."""
    now = str(int(time.time()))
    return [
        ("non-numeric timestamp", {"X-Slack-Request-Timestamp": "yesterday"}, ()),
        ("empty timestamp", {"X-Slack-Request-Timestamp": ""}, ()),
        ("blank timestamp", {"X-Slack-Request-Timestamp": "   "}, ()),
        ("float timestamp", {"X-Slack-Request-Timestamp": f"{now}.5"}, ()),
        ("negative timestamp", {"X-Slack-Request-Timestamp": "-1"}, ()),
        ("huge timestamp", {"X-Slack-Request-Timestamp": "9" * 400}, ()),
        ("empty signature", {"X-Slack-Signature": ""}, ()),
        ("signature without version", {"X-Slack-Signature": "0" * 64}, ()),
        ("non-hex signature", {"X-Slack-Signature": "v0=" + "z" * 64}, ()),
        ("non-ASCII signature", {"X-Slack-Signature": "v0=" + "é" * 64}, ()),
        ("well-formed wrong signature", {"X-Slack-Signature": VALID_SIGNATURE}, ()),
        ("no timestamp", None, ("X-Slack-Request-Timestamp",)),
        ("no signature", None, ("X-Slack-Signature",)),
        ("no headers", None, ("X-Slack-Request-Timestamp", "X-Slack-Signature")),
    ]


CASES = headers_cases()


@pytest.mark.parametrize(("replaced", "omitted"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("content", ["json", "form", "malformed json"])
async def test_a_request_with_bad_signature_headers_gets_401_and_its_body_is_never_logged(
    driver: SlackDriver,
    slack: SlackEmulator,
    mentions: Mentions,
    everything_logged: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    replaced: dict[str, str] | None,
    omitted: tuple[str, ...],
    content: str,
) -> None:
    envelope, _ = driver.mention_envelope(ALICE, GENERAL, BODY_MARKER)
    if content == "json":
        signed = driver.sign_json(envelope)
    elif content == "form":
        signed = driver.sign_form({"payload": json.dumps(envelope)})
    else:
        # Bolt parses the body before it checks the signature; unparsable, that used to be a 500.
        signed = driver.sign(b'{"event": "' + BODY_MARKER.encode() + b'", ', "application/json")
    for header, value in (replaced or {}).items():
        if header == "X-Slack-Signature":
            signed.signature = value
        else:
            signed.timestamp = value
    response = await driver.send(signed, omit_headers=omitted)

    assert response.status == 401, response.body
    assert "Traceback" not in response.body and BODY_MARKER not in response.body
    await asyncio.sleep(0.05)
    assert mentions.seen == []
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in everything_logged.records)
    assert "refused a request" in logged
    captured = capfd.readouterr()
    assert BODY_MARKER not in logged + captured.out + captured.err
    assert "Traceback" not in logged + captured.err


@pytest.mark.parametrize("attack", ["stale", "future", "altered"])
async def test_replayed_or_altered_requests_get_401_and_their_bodies_are_never_logged(
    driver: SlackDriver,
    mentions: Mentions,
    everything_logged: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    attack: str,
) -> None:
    envelope, _ = driver.mention_envelope(ALICE, GENERAL, BODY_MARKER)
    if attack == "altered":
        response = await driver.send_with_altered_body(envelope, {**envelope, "token": "changed"})
    else:
        age = MAX_AGE_SECONDS + 60
        stamp = int(time.time()) + (-age if attack == "stale" else age)
        response = await driver.send(driver.sign_json(envelope, timestamp=stamp))

    assert response.status == 401
    assert mentions.seen == []
    captured = capfd.readouterr()
    assert BODY_MARKER not in everything_logged.text + captured.out + captured.err


async def test_a_signed_request_still_reaches_the_app(driver: SlackDriver, mentions: Mentions) -> None:
    delivery = await driver.app_mention(ALICE, GENERAL, "hello")
    assert delivery.response.status == 200
    for _ in range(100):
        if mentions.seen:
            break
        await asyncio.sleep(0.02)
    assert mentions.seen and "hello" in mentions.seen[0]


def test_bolts_own_refusal_line_keeps_the_body_out(everything_logged: pytest.LogCaptureFixture) -> None:
    # Bolt's check runs behind ours; should it ever refuse (the clock crossing the five minutes between the
    # two), its log line must not carry the body either.
    from slack_bolt.middleware.request_verification import RequestVerification

    from bot.slack.signature import quiet_bolt_refusals

    quiet_bolt_refusals()
    RequestVerification("secret")._debug_log_error(VALID_SIGNATURE, "1", BODY_MARKER)
    assert "Invalid request signature detected" in everything_logged.text
    assert BODY_MARKER not in everything_logged.text


@pytest.mark.parametrize(
    ("timestamp", "signature", "reason"),
    [
        (None, VALID_SIGNATURE, "missing"),
        ("١٢٣٤٥", VALID_SIGNATURE, "not a number"),  # Arabic-Indic digits, which int() would accept
        ("1_700_000_000", VALID_SIGNATURE, "not a number"),
        ("100", VALID_SIGNATURE, "more than five minutes"),
        ("1000", "v0=" + "0" * 63, "malformed"),
        ("1000", "v0=" + "A" * 64, "malformed"),
        ("1000", VALID_SIGNATURE, "does not match"),
    ],
)
def test_signature_problems_name_the_reason(timestamp: str | None, signature: str, reason: str) -> None:
    problem = signature_problem("secret", b"{}", timestamp, signature, now=1000.0)
    assert problem is not None and reason in problem


def test_a_missing_signing_secret_refuses_everything() -> None:
    assert signature_problem("", b"{}", "1000", VALID_SIGNATURE, now=1000.0) == "no signing secret is configured"
