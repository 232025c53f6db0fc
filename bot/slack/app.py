"""The Bolt app: one ``AsyncApp`` with the budgeted Web API client, the error handler and the listener groups.

A listener group is a module (or any object) with ``register(app)``, one per Slack surface, in
``bot/slack/listeners/``. Adding one is adding its module name to ``DEFAULT_LISTENER_MODULES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Protocol

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import BotSettings
from bot.slack.client import BudgetedWebClient, SlackCallBudget
from bot.slack.context import BotContext
from bot.slack.context import install as install_context
from engine.redact import redact_text

APP_NAME = "cloudops"

# Imported in this order when present; a surface without a module yet is simply not served.
DEFAULT_LISTENER_MODULES: tuple[str, ...] = (
    "bot.slack.listeners.events",
    "bot.slack.listeners.actions",
    "bot.slack.listeners.views",
    "bot.slack.listeners.commands",
    "bot.slack.listeners.history_actions",
    "bot.slack.listeners.run_actions",
    "bot.slack.listeners.shortcuts",
    "bot.slack.listeners.replay_actions",
    "bot.slack.listeners.home",
)


class ListenerGroup(Protocol):
    def register(self, app: AsyncApp) -> None: ...


def default_listener_groups(module_names: Sequence[str] = DEFAULT_LISTENER_MODULES) -> list[ListenerGroup]:
    groups: list[ListenerGroup] = []
    for name in module_names:
        try:
            groups.append(importlib.import_module(name))  # type: ignore[arg-type]
        except ModuleNotFoundError as exc:
            # Only the group's own absence is expected; a group whose imports fail must fail loudly.
            if exc.name != name:
                raise
    return groups


def build_client(
    settings: BotSettings,
    *,
    session: aiohttp.ClientSession | None = None,
    budget: SlackCallBudget | None = None,
) -> BudgetedWebClient:
    options: dict[str, Any] = {"token": settings.bot_token, "session": session, "budget": budget}
    if settings.slack_api_url is not None:
        options["base_url"] = settings.slack_api_url
    return BudgetedWebClient(**options)


def create_app(
    settings: BotSettings,
    *,
    client: AsyncWebClient | None = None,
    listener_groups: Sequence[ListenerGroup] | None = None,
    process_before_response: bool = False,
    context: BotContext | None = None,
) -> AsyncApp:
    """The CloudOps Bolt app. ``listener_groups`` defaults to the modules of ``DEFAULT_LISTENER_MODULES``.

    AsyncApp checks the token lazily, with ``auth.test`` on the first request; ``cloudops serve`` calls it
    before it starts so that a bad token is reported at once. ``context`` (policy, store, approval and
    execution services) is handed to every listener; see ``bot.slack.context``.
    """
    client = client if client is not None else build_client(settings)
    with _quiet_token_skipped_warning():
        app = CloudOpsApp(
            name=APP_NAME,
            client=client,
            # Empty in Socket Mode, where Bolt does not verify signatures; HTTP mode settings always carry one.
            signing_secret=settings.signing_secret or "",
            process_before_response=process_before_response,
        )
    if isinstance(client, BudgetedWebClient):
        app.middleware(budgeted_client_middleware(client))
    register_error_handler(app)
    if context is not None:
        install_context(app, context)
    for group in default_listener_groups() if listener_groups is None else listener_groups:
        group.register(app)
    return app


@contextlib.contextmanager
def _quiet_token_skipped_warning() -> Iterator[None]:
    """AsyncApp reads SLACK_BOT_TOKEN from the environment even when handed a client, then warns on every start
    that it goes unused; the client already carries the configured token, so the warning only alarms operators."""

    def not_that_warning(record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()

    bolt_logger = logging.getLogger(f"slack_bolt.{AsyncApp.__name__}")
    bolt_logger.addFilter(not_that_warning)
    try:
        yield
    finally:
        bolt_logger.removeFilter(not_that_warning)


ACK_FIRST_KEY = "cloudops_ack_first"
# The longest work after an ack waits for the app's other requests to be answered: under traffic that never
# lets up it goes ahead anyway. Slack waits 3 s for each ack.
ACK_FIRST_MAX_WAIT_SECONDS = 1.0


class AckFirst:
    """Lets acknowledgements go before the work that follows them.

    Bolt answers a request only when its listener runner next looks for the ``ack()`` (every 10 ms), and the
    listener's work after the ack shares the event loop with every request still waiting for its answer. Under
    a burst of clicks the work of the first ones (store reads and writes, Slack calls) holds back the answers
    to the rest. ``CloudOpsApp`` counts the requests it holds unanswered; a listener that calls
    ``after_acks(context)`` right after ``ack()`` waits until that count is zero, its own request included
    (at most ``max_wait`` seconds). The waiting work is let go on the event loop's next turn, after the
    sockets have been serviced, and only if no request came in meanwhile.
    """

    def __init__(self, max_wait: float = ACK_FIRST_MAX_WAIT_SECONDS) -> None:
        self.max_wait = max_wait
        self.unanswered = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._release: asyncio.TimerHandle | None = None

    def received(self) -> None:
        self.unanswered += 1

    def answered(self) -> None:
        self.unanswered -= 1
        if self.unanswered == 0 and self._waiters and self._release is None:
            # A timer, not call_soon: due timers run after the I/O callbacks of the loop's next turn.
            self._release = asyncio.get_running_loop().call_later(0, self._release_waiters)

    def _release_waiters(self) -> None:
        self._release = None
        if self.unanswered:
            return  # requests came in meanwhile; the work waits for them too
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def all_answered(self) -> None:
        if self.unanswered == 0:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait({waiter}, timeout=self.max_wait)
        finally:
            if not waiter.done():
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)


class CloudOpsApp(AsyncApp):
    """``AsyncApp`` that counts the requests it is dispatching, for ``after_acks``.

    With ``process_before_response`` a request is answered only after its listener ends, so listeners are
    never told to wait for it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ack_first = AckFirst()

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        if self.process_before_response:
            return await super().async_dispatch(req)
        req.context[ACK_FIRST_KEY] = self.ack_first
        self.ack_first.received()
        try:
            return await super().async_dispatch(req)
        finally:
            self.ack_first.answered()


async def after_acks(context: AsyncBoltContext) -> None:
    """Call right after ``ack()``, before any Slack or store call: returns once the app has answered every
    request it holds (see ``AckFirst``); at once in an app that does not count them."""
    gate = context.get(ACK_FIRST_KEY)
    if isinstance(gate, AckFirst):
        await gate.all_answered()


class BudgetedClientMiddleware(AsyncMiddleware):
    """Bolt hands each request a fresh plain AsyncWebClient; listeners get one that shares the budget instead.

    One such client per token and team, made on first use (a client holds no per-call state). A middleware
    class rather than a function: Bolt calls it directly, without building injected arguments per request.
    """

    MAX_CLIENTS = 1_024

    def __init__(self, client: BudgetedWebClient) -> None:
        self.client = client
        self._clients: dict[tuple[str | None, str | None], BudgetedWebClient] = {}

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        context = req.context
        key = (context.client.token, context.team_id)
        shared = self._clients.get(key)
        if shared is None:
            if len(self._clients) >= self.MAX_CLIENTS:
                self._clients.clear()
            shared = self._clients[key] = self.client.sharing_budget(token=key[0], team_id=key[1])
        context["client"] = shared
        return await next()


def budgeted_client_middleware(client: BudgetedWebClient) -> BudgetedClientMiddleware:
    return BudgetedClientMiddleware(client)


def register_error_handler(app: AsyncApp) -> None:
    """Log unhandled listener errors, redacted; Slack gets Bolt's bare 500 and never a traceback."""

    async def log_unhandled_error(error: Exception, body: dict[str, Any], logger: logging.Logger) -> None:
        logger.error("unhandled error in %s: %s", _describe(body), _redacted_traceback(error))

    app.error(log_unhandled_error)


def _describe(body: dict[str, Any]) -> str:
    """What the request was, by kind only: bodies carry users' words, not needed to find the bug."""
    if not isinstance(body, dict):
        return "a request"
    kind = str(body.get("type") or ("slash_command" if "command" in body else "request"))
    if kind == "event_callback" and isinstance(body.get("event"), dict):
        return f"event {body['event'].get('type')}"
    if "command" in body:
        return f"command {body['command']}"
    if kind == "block_actions" and body.get("actions"):
        return f"block_actions {body['actions'][0].get('action_id')}"
    if isinstance(body.get("view"), dict):
        return f"{kind} {body['view'].get('callback_id')}"
    if body.get("callback_id"):
        return f"{kind} {body['callback_id']}"
    return kind


def _redacted_traceback(error: BaseException) -> str:
    return redact_text("".join(traceback.format_exception(error)).rstrip())
