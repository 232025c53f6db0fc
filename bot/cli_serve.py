"""``cloudops serve``: run the Slack app, over Socket Mode when SLACK_APP_TOKEN is set, over HTTP otherwise."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.errors import CloudOpsError, ConfigError

# The Slack stack, aiohttp, the planner and the history store are imported by the functions that serve, not
# here: `cloudops` imports this module to list `serve` in its help, and other commands must not pay for them.
if TYPE_CHECKING:
    import asyncio

    from bot.settings import BotSettings
    from bot.slack.app import ListenerGroup
    from bot.slack.client import BudgetedWebClient
    from bot.slack.context import BotContext
    from bot.slack.server import SocketModeHandlerFactory
    from engine.policy import Policy

logger = logging.getLogger("cloudops.serve")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve_parser = subparsers.add_parser(
        "serve",
        help="run the Slack app",
        description=(
            "Run the CloudOps Slack app: over Socket Mode when SLACK_APP_TOKEN is set, otherwise as an HTTP "
            "server for Slack's requests at /slack/events (SLACK_SIGNING_SECRET required)."
        ),
    )
    serve_parser.add_argument("--port", type=_port, help="HTTP mode port (default: $CLOUDOPS_HTTP_PORT or 3000)")
    serve_parser.add_argument("--host", help="HTTP mode address (default: $CLOUDOPS_HTTP_HOST or 0.0.0.0)")
    serve_parser.set_defaults(func=_serve_command)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, not {value}")
    return value


async def _serve_command(args: argparse.Namespace) -> int:
    import asyncio

    from bot.settings import load_bot_settings

    given = {"http_port": args.port, "http_host": args.host}
    overrides = {name: value for name, value in given.items() if value is not None}
    settings = load_bot_settings(**overrides)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Stopping through the event lets the server close its connections; where signals cannot be
        # hooked, Ctrl-C still ends the run through KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    await serve(settings, stop=stop)
    return 0


async def serve(
    settings: BotSettings,
    *,
    stop: asyncio.Event | None = None,
    listener_groups: Sequence[ListenerGroup] | None = None,
    socket_handler_factory: SocketModeHandlerFactory | None = None,
    context: BotContext | None = None,
) -> None:
    """Check the policy and the bot token, then serve Slack in the chosen mode until ``stop`` is set.

    With the default listener groups and no ``context``, the app's dependencies are built here: the history
    store (``open_history_store``), recovery of runs a stopped process left ``running``, the policy, and the
    LLM planner when one is configured. Explicit ``listener_groups`` without a ``context`` serve without them.
    ``socket_handler_factory`` defaults to ``bot.slack.server.socket_mode_handler``.
    """
    import aiohttp

    from bot.settings import ServeMode
    from bot.slack.app import build_client, create_app
    from bot.slack.server import choose_mode, run_http, run_socket_mode, socket_mode_handler
    from engine.policy import load_policy
    from engine.redact import register_secret

    for secret in (settings.bot_token, settings.app_token, settings.signing_secret):
        if secret:
            register_secret(secret)
    # A broken policy file should stop the start, not the first approval hours later.
    loaded_policy = load_policy(settings.policy_path)
    policy = str(settings.policy_path) if settings.policy_path else "the permissive default policy"

    async with aiohttp.ClientSession() as session, contextlib.AsyncExitStack() as resources:
        client = build_client(settings, session=session)
        identity = await _identify(client)
        if context is None and listener_groups is None:
            context = await _open_context(loaded_policy, resources)
        app = create_app(settings, client=client, listener_groups=listener_groups, context=context)
        app_token = settings.app_token
        if choose_mode(settings) is ServeMode.SOCKET and app_token is not None:
            await run_socket_mode(
                app,
                app_token,
                stop=stop,
                handler_factory=socket_handler_factory or socket_mode_handler,
                ready=lambda: logger.info("serving Slack over Socket Mode as %s, with %s", identity, policy),
            )
        else:
            await run_http(
                app,
                settings.http_host,
                settings.http_port,
                stop=stop,
                ready=lambda url: logger.info("serving Slack over HTTP at %s as %s, with %s", url, identity, policy),
            )


async def _open_context(policy: Policy, resources: contextlib.AsyncExitStack) -> BotContext:
    """The store, recovery, the planner: what the listeners need, closed again when serving stops."""
    from bot.planner import LLMSettings, OpenAIPlanner
    from bot.slack.context import BotContext
    from engine.config import EngineSettings
    from engine.history import HistorySettings, open_history_store

    store = await open_history_store(HistorySettings())
    resources.push_async_callback(store.close)
    engine_settings = EngineSettings()
    bot = BotContext.build(policy=policy, store=store, engine_settings=engine_settings)
    interrupted = await bot.executions.recover()
    if interrupted:
        logger.warning("marked %d run(s) left running by a stopped process as interrupted", len(interrupted))
    llm = LLMSettings()
    if llm.configured:
        planner = OpenAIPlanner(llm)
        resources.push_async_callback(planner.aclose)
        bot.planner = planner
    logger.debug("history in %s; planner: %s", store.description, "configured" if bot.planner else "none")
    return bot


async def _identify(client: BudgetedWebClient) -> str:
    """Who the bot token belongs to, from auth.test: a wrong token is reported now, in one line."""
    import aiohttp
    from slack_sdk.errors import SlackApiError

    try:
        identity = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        raise ConfigError(f"Slack refused SLACK_BOT_TOKEN: {error or 'no reason given'}") from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise CloudOpsError(f"cannot reach Slack at {client.base_url}: {exc or type(exc).__name__}") from None
    return f"@{identity.get('user')} in {identity.get('team')}"
