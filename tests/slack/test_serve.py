"""Serving the Slack app: settings, app factory, HTTP mode with Slack's signatures, Socket Mode, `cloudops serve`."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.say.async_say import AsyncSay
from slack_sdk.web.async_client import AsyncWebClient

from bot.cli_serve import serve
from bot.settings import BotSettings, ServeMode, load_bot_settings
from bot.slack.app import ListenerGroup, create_app, default_listener_groups
from bot.slack.client import BudgetedWebClient
from bot.slack.server import choose_mode, run_socket_mode, socket_mode_handler
from engine.errors import ConfigError
from tests.slack_emulator import Seed, SlackDriver, SlackEmulator

ALICE, GENERAL = Seed.ALICE, Seed.GENERAL
APP_TOKEN = "xapp-1-A0CLOUDOPS-1234567890-0123456789abcdef0123456789abcdef"


LEAKED_TOKEN = "xoxb-1000000001-2000000002-leakedbyabug"


class SampleListeners:
    """Answers each mention in its thread, remembering the client it was given; fails every /cloudops."""

    def __init__(self) -> None:
        self.clients: list[AsyncWebClient] = []

    def register(self, app: AsyncApp) -> None:
        @app.event("app_mention")
        async def reply(event: dict[str, Any], say: AsyncSay, client: AsyncWebClient) -> None:
            self.clients.append(client)
            await say(text=f"on it: {event['text']}", thread_ts=event.get("thread_ts") or event["ts"])

        @app.command("/cloudops")
        async def broken(ack: Any, command: dict[str, Any]) -> None:
            raise RuntimeError(f"lost the thread while holding {LEAKED_TOKEN}")


@pytest.fixture
def mentions() -> SampleListeners:
    return SampleListeners()


@pytest.fixture
def listener_groups(mentions: SampleListeners) -> list[ListenerGroup]:
    return [mentions]


def bot_replies(slack: SlackEmulator, ts: str) -> list[str]:
    return [m.text for m in slack.thread(GENERAL, ts) if m.user == slack.bot_user_id]


# ---------------------------------------------------------------------- settings


def settings_for(**values: Any) -> BotSettings:
    values.setdefault("slack_app_token", None)
    values.setdefault("slack_signing_secret", None)
    return load_bot_settings(_env_file=None, **values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "SLACK_BOT_TOKEN is not set (find it under OAuth & Permissions)"),
        (
            {"slack_bot_token": "xoxb-1-2-abc"},
            "SLACK_SIGNING_SECRET is required in HTTP mode (no SLACK_APP_TOKEN set); "
            "find it under Basic Information > App Credentials",
        ),
        ({"slack_bot_token": "xoxp-1-2-personal"}, "SLACK_BOT_TOKEN must be a bot token starting with xoxb-"),
        (
            {"slack_bot_token": "xoxb-1-2-abc", "slack_app_token": "xoxb-not-an-app-token"},
            "SLACK_APP_TOKEN must be an app-level token starting with xapp-",
        ),
        (
            {"slack_bot_token": "xoxb-1", "slack_signing_secret": "s" * 32, "http_port": 70000},
            "CLOUDOPS_HTTP_PORT is invalid: input should be less than or equal to 65535",
        ),
    ],
)
def test_wrong_settings_become_one_line_naming_the_variable(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_for(**values)
    assert str(caught.value) == message


def test_secrets_stay_out_of_reprs_and_errors() -> None:
    secret, token = "signing-" + "9" * 24, "xoxb-1-2-" + "7" * 24
    settings = settings_for(slack_bot_token=token, slack_signing_secret=secret)
    assert settings.bot_token == token and settings.signing_secret == secret
    assert token not in repr(settings) + str(settings) and secret not in repr(settings) + str(settings)

    with pytest.raises(ConfigError) as caught:
        settings_for(slack_bot_token="xoxp-" + "7" * 24, slack_app_token="bad-" + "8" * 24)
    assert "7" * 24 not in str(caught.value) and "8" * 24 not in str(caught.value)


def test_the_mode_is_socket_with_an_app_token_and_http_without() -> None:
    socket = settings_for(slack_bot_token="xoxb-1", slack_app_token=APP_TOKEN)
    http = settings_for(slack_bot_token="xoxb-1", slack_signing_secret="s" * 32)
    assert (choose_mode(socket), choose_mode(http)) == (ServeMode.SOCKET, ServeMode.HTTP)


def test_settings_come_from_the_environment_and_the_api_url_gets_its_trailing_slash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-1-2-env",
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": "http://127.0.0.1:9/api",
        "CLOUDOPS_POLICY": "/etc/cloudops/policy.yaml",
        "CLOUDOPS_HTTP_PORT": "8080",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_bot_settings()
    assert settings.slack_api_url == "http://127.0.0.1:9/api/"
    assert (settings.mode, settings.http_port, settings.policy_path) == (
        ServeMode.SOCKET,
        8080,
        Path("/etc/cloudops/policy.yaml"),
    )
    assert create_app(settings, listener_groups=[]).client.base_url == "http://127.0.0.1:9/api/"


# ---------------------------------------------------------------------- the app factory


def test_default_listener_groups_skip_missing_modules_but_not_broken_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cloudops_test_group.py").write_text("def register(app):\n    pass\n")
    (tmp_path / "cloudops_broken_group.py").write_text("import cloudops_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    [group] = default_listener_groups(["cloudops_absent_group", "cloudops_test_group"])
    assert group.__name__ == "cloudops_test_group"  # type: ignore[attr-defined]
    with pytest.raises(ModuleNotFoundError, match="cloudops_missing_dependency"):
        default_listener_groups(["cloudops_broken_group"])


def test_create_app_registers_each_listener_group_once(bot_settings: BotSettings) -> None:
    registered: list[AsyncApp] = []
    group = SimpleNamespace(register=registered.append)
    app = create_app(bot_settings, listener_groups=[group])
    assert registered == [app]
    assert isinstance(app.client, BudgetedWebClient) and app.client.base_url == bot_settings.slack_api_url


# ---------------------------------------------------------------------- HTTP mode


async def test_healthz_answers_ok_and_gives_nothing_away(app_url: str, bot_settings: BotSettings) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{app_url}/healthz") as response:
        assert response.status == 200
        body = await response.text()
        health = await response.json()

    assert health["ok"] is True and health["service"] == "cloudops"
    assert bot_settings.bot_token not in body and str(bot_settings.signing_secret) not in body


async def test_a_signed_mention_is_answered_in_its_thread_by_a_client_on_the_shared_budget(
    slack: SlackEmulator, driver: SlackDriver, slack_app: AsyncApp, mentions: SampleListeners
) -> None:
    delivery = await driver.app_mention(ALICE, GENERAL, "list the buckets")

    assert delivery.response.status == 200
    assert delivery.message is not None
    await slack.wait_for(lambda: bot_replies(slack, delivery.message.ts), what="the reply")
    assert bot_replies(slack, delivery.message.ts) == [f"on it: {delivery.message.text}"]
    [client] = mentions.clients
    assert isinstance(client, BudgetedWebClient) and isinstance(slack_app.client, BudgetedWebClient)
    assert client.budget is slack_app.client.budget


@pytest.mark.parametrize("attack", ["forged", "unsigned", "stale", "altered"])
async def test_requests_slack_did_not_sign_get_401_and_no_reply(
    slack: SlackEmulator, driver: SlackDriver, attack: str
) -> None:
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
    assert bot_replies(slack, mention.ts) == []
    # The same envelope signed properly is answered, so the 401 was the signature's doing.
    assert (await driver.deliver(envelope)).response.status == 200
    await slack.wait_for(lambda: bot_replies(slack, mention.ts), what="the control reply")


async def test_a_listener_error_is_logged_redacted_and_slack_gets_no_traceback(
    driver: SlackDriver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    interaction = await driver.slash_command(ALICE, GENERAL, "/cloudops", "history")

    assert interaction.response.status == 500
    assert "Traceback" not in interaction.response.body and "lost the thread" not in interaction.response.body
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "unhandled error in command /cloudops" in logged and "RuntimeError: lost the thread" in logged
    assert LEAKED_TOKEN not in logged


# ---------------------------------------------------------------------- Socket Mode


class RecordingSocketHandler:
    def __init__(self, app: AsyncApp, app_token: str) -> None:
        self.app, self.app_token = app, app_token
        self.events: list[str] = []

    async def connect_async(self) -> None:
        self.events.append("connect")

    async def close_async(self) -> None:
        self.events.append("close")


async def test_socket_mode_connects_with_the_app_token_and_closes_when_stopped(bot_settings: BotSettings) -> None:
    app = create_app(bot_settings, listener_groups=[])
    handlers: list[RecordingSocketHandler] = []

    def factory(app: AsyncApp, app_token: str) -> RecordingSocketHandler:
        handlers.append(RecordingSocketHandler(app, app_token))
        return handlers[-1]

    stop = asyncio.Event()
    running = asyncio.create_task(run_socket_mode(app, APP_TOKEN, stop=stop, ready=stop.set, handler_factory=factory))
    await asyncio.wait_for(running, timeout=5)

    [handler] = handlers
    assert (handler.app, handler.app_token, handler.events) == (app, APP_TOKEN, ["connect", "close"])


async def test_bolts_socket_mode_handler_gets_the_app_token_and_the_budgeted_client(bot_settings: BotSettings) -> None:
    app = create_app(bot_settings, listener_groups=[])
    handler = socket_mode_handler(app, APP_TOKEN)
    try:
        assert handler.app is app and handler.app_token == APP_TOKEN  # type: ignore[attr-defined]
        assert handler.client.web_client is app.client  # type: ignore[attr-defined]
    finally:
        await handler.close_async()


async def test_serve_picks_socket_mode_with_an_app_token_and_says_so(
    slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cloudops.serve")
    settings = load_bot_settings(
        _env_file=None, slack_bot_token=slack.bot_token, slack_app_token=APP_TOKEN, slack_api_url=slack.api_url
    )
    handlers: list[RecordingSocketHandler] = []
    stop = asyncio.Event()

    def factory(app: AsyncApp, app_token: str) -> RecordingSocketHandler:
        handlers.append(RecordingSocketHandler(app, app_token))
        stop.set()
        return handlers[-1]

    await asyncio.wait_for(serve(settings, stop=stop, listener_groups=[], socket_handler_factory=factory), 5)

    [handler] = handlers
    assert handler.app_token == APP_TOKEN and handler.events == ["connect", "close"]
    [line] = [r.getMessage() for r in caplog.records if r.name == "cloudops.serve"]
    assert line.startswith("serving Slack over Socket Mode as @") and APP_TOKEN not in line


async def test_serve_reports_a_token_slack_refuses_in_one_line(slack: SlackEmulator) -> None:
    settings = load_bot_settings(
        _env_file=None,
        slack_bot_token="xoxb-1-2-" + "0" * 24,
        slack_app_token=APP_TOKEN,
        slack_api_url=slack.api_url,
    )
    with pytest.raises(ConfigError, match=r"^Slack refused SLACK_BOT_TOKEN: invalid_auth$"):
        await serve(settings, stop=asyncio.Event(), listener_groups=[])


# ---------------------------------------------------------------------- `cloudops serve`


def clean_env(home: Path, **values: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "PYTHONUNBUFFERED": "1", **values}


async def start_cloudops(args: list[str], env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "cloudops: SLACK_BOT_TOKEN is not set (find it under OAuth & Permissions)"),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1-2-" + "5" * 24},
            "cloudops: SLACK_SIGNING_SECRET is required in HTTP mode (no SLACK_APP_TOKEN set); "
            "find it under Basic Information > App Credentials",
        ),
        (
            {"SLACK_BOT_TOKEN": "xoxp-1-2-" + "5" * 24, "SLACK_SIGNING_SECRET": "6" * 32},
            "cloudops: SLACK_BOT_TOKEN must be a bot token starting with xoxb-",
        ),
    ],
)
async def test_serve_with_missing_or_wrong_settings_prints_one_line_and_exits_non_zero(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    process = await start_cloudops(["serve"], clean_env(tmp_path, **env), tmp_path)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 1
    assert stderr.decode().splitlines() == [expected] and stdout == b""


async def test_serve_in_http_mode_listens_answers_health_checks_and_stops_on_sigterm(
    tmp_path: Path, slack: SlackEmulator, signing_secret: str
) -> None:
    env = clean_env(
        tmp_path,
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_SIGNING_SECRET=signing_secret,
        SLACK_API_URL=slack.api_url.rstrip("/"),
    )
    process = await start_cloudops(["serve", "--host", "127.0.0.1", "--port", "0"], env, tmp_path)
    assert process.stderr is not None
    try:
        line = (await asyncio.wait_for(process.stderr.readline(), timeout=60)).decode()
        found = re.search(r"serving Slack over HTTP at (http://127\.0\.0\.1:\d+)/slack/events as @\S+ in ", line)
        assert found, line
        async with aiohttp.ClientSession() as http, http.get(f"{found[1]}/healthz") as response:
            assert response.status == 200 and (await response.json())["ok"] is True
        process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == 0
    assert slack.bot_token not in line + rest.decode() and "Traceback" not in rest.decode()
    assert [c.method for c in slack.calls()] == ["auth.test"]
