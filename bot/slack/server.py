"""Serving the Bolt app: HTTP mode on aiohttp, or Socket Mode over Slack's WebSocket.

HTTP mode answers ``POST /slack/events`` (events, interactivity, slash commands and shortcuts all use it)
through Bolt, and ``GET /healthz`` for load balancers and probes. A request not signed with the signing
secret within the last five minutes gets a 401 before Bolt sees it (``bot.slack.signature``), and its body is
never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.settings import BotSettings, ServeMode
from bot.slack.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, quiet_bolt_refusals, signature_problem
from engine.errors import CloudOpsError

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"

logger = logging.getLogger("cloudops.slack")


def choose_mode(settings: BotSettings) -> ServeMode:
    """Socket Mode when an app-level token is configured, HTTP mode otherwise."""
    return settings.mode


# ---------------------------------------------------------------------- HTTP mode


def build_web_app(app: AsyncApp, *, path: str = EVENTS_PATH, signing_secret: str | None = None) -> web.Application:
    """``signing_secret`` defaults to the one ``app`` was made with, which Bolt's own check uses too."""
    started = time.monotonic()
    # Bolt keeps it in a private attribute and offers no accessor; every AsyncApp has it.
    secret = signing_secret if signing_secret is not None else str(getattr(app, "_signing_secret", "") or "")
    quiet_bolt_refusals()

    async def slack_requests(request: web.Request) -> web.Response:
        body = await request.read()
        problem = signature_problem(
            secret,
            body,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            now=time.time(),
        )
        if problem is not None:
            logger.info("refused a request to %s from %s: %s", path, request.remote, problem)
            return web.json_response({"error": "invalid request"}, status=401)
        bolt_response = await app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def health(request: web.Request) -> web.Response:
        # Liveness only: nothing here may tell a prober about tokens, teams or channels.
        return web.json_response({"ok": True, "service": app.name, "uptime_seconds": round(time.monotonic() - started)})

    web_app = web.Application()
    web_app.add_routes([web.post(path, slack_requests), web.get(HEALTH_PATH, health)])
    return web_app


async def start_http(app: AsyncApp, host: str, port: int, *, path: str = EVENTS_PATH) -> web.AppRunner:
    """Start serving ``app`` on ``host:port`` (port 0 picks a free one); ``runner.cleanup()`` stops it."""
    runner = web.AppRunner(build_web_app(app, path=path))
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise CloudOpsError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def base_url(runner: web.AppRunner) -> str:
    """``http://host:port`` of a started runner, with the port actually bound."""
    host, port = runner.addresses[0][:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


async def run_http(
    app: AsyncApp,
    host: str,
    port: int,
    *,
    stop: asyncio.Event | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until ``stop`` is set (or the task is cancelled); ``ready`` gets the request URL once listening."""
    runner = await start_http(app, host, port)
    try:
        if ready is not None:
            ready(base_url(runner) + EVENTS_PATH)
        await _until(stop)
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------- Socket Mode


class SocketModeHandler(Protocol):
    async def connect_async(self) -> None: ...

    async def close_async(self) -> None: ...


SocketModeHandlerFactory = Callable[[AsyncApp, str], SocketModeHandler]


def socket_mode_handler(app: AsyncApp, app_token: str) -> SocketModeHandler:
    """Bolt's Socket Mode adapter; its Web API calls (apps.connections.open) use the app's client."""
    return AsyncSocketModeHandler(app, app_token)


async def run_socket_mode(
    app: AsyncApp,
    app_token: str,
    *,
    stop: asyncio.Event | None = None,
    ready: Callable[[], None] | None = None,
    handler_factory: SocketModeHandlerFactory = socket_mode_handler,
) -> None:
    """Connect to Slack and serve until ``stop`` is set (or the task is cancelled), then disconnect."""
    handler = handler_factory(app, app_token)
    try:
        await handler.connect_async()
        if ready is not None:
            ready()
        await _until(stop)
    finally:
        await handler.close_async()


async def _until(stop: asyncio.Event | None) -> None:
    await (stop.wait() if stop is not None else asyncio.Event().wait())
