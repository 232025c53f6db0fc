"""The Web API client every Slack call of the bot goes through, and the call budget it shares.

Slack limits each Web API method per app per workspace (Tier 3, e.g. ``chat.update``, allows about 50 calls a
minute) and ``chat.postMessage`` to about one message per second per channel. A limited call is answered with
HTTP 429 and a ``Retry-After``; calling the method again before that time is up is what gets apps throttled
harder. slack_sdk's retry handler makes the one call that got the 429 wait, but every other coroutine calling
the same method knows nothing of it. ``SlackCallBudget`` is the shared memory:

- after a 429 for method M, every call to M waits until the cooldown is over, and then a single call goes
  first to find out whether it really is; the rest follow once it has an answer that is not another 429;
- optional pacing per method (and per channel for ``chat.postMessage``) keeps the bot under the tiers in the
  first place, with slots handed out in the order they were asked for.

``BudgetedWebClient`` asks the budget before every call and every retry and tells it every answer. Its retry
handlers are slack_sdk's own: the rate-limit handler, taught to wait through the shared budget rather than
sleep on its own, and the connection-error handler.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pace:
    """At most ``calls`` calls in any ``per_seconds`` window; per channel when ``per_channel``."""

    calls: int
    per_seconds: float
    per_channel: bool = False

    def __post_init__(self) -> None:
        if self.calls < 1 or self.per_seconds <= 0:
            raise ValueError("a pace needs at least one call per a positive number of seconds")


# A little under Slack's published figures: the limits count every call the app makes in the workspace, and
# Slack's clock starts when a call arrives, a moment after ours.
DEFAULT_PACES: Mapping[str, Pace] = {
    # Tier 3 ("50+ per minute"); output streaming edits one message many times.
    "chat.update": Pace(45, 60.0),
    # "One message per second per channel"; three at once lets a reply and its follow-up go together.
    "chat.postMessage": Pace(4, 5.0, per_channel=True),
    # Tier 3: reading a thread for the planner or an audit.
    "conversations.replies": Pace(45, 60.0),
    # Tier 2 ("20+ per minute"): resolving approver groups.
    "usergroups.users.list": Pace(18, 60.0),
}

DEFAULT_RATE_LIMIT_RETRIES = 5


@dataclass
class _Cooldown:
    until: float
    # Set once the cooldown has run out and one call has gone to find out whether Slack agrees.
    probing: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class SlackCallBudget:
    """Shared per-method cooldowns after 429s, and optional pacing, for every Web API call of the app.

    ``BudgetedWebClient`` uses it on every call. Code that plans calls ahead (output streaming deciding how
    much to coalesce) asks ``wait_time`` or ``cooldown_remaining``; calling ``acquire`` as well as going through
    the client would take two slots for one call.
    """

    def __init__(
        self,
        paces: Mapping[str, Pace] | None = None,
        *,
        margin_seconds: float = 0.5,
    ) -> None:
        """``paces`` replaces ``DEFAULT_PACES`` (``{}`` turns pacing off); ``margin_seconds`` widens each window
        to cover the time between a slot being taken and the call reaching Slack."""
        self.paces: dict[str, Pace] = dict(DEFAULT_PACES if paces is None else paces)
        self.margin_seconds = margin_seconds
        self._cooldowns: dict[str, _Cooldown] = {}
        self._slots: dict[tuple[str, str | None], deque[float]] = {}

    # ------------------------------------------------------------------ asking

    def cooldown_remaining(self, method: str) -> float:
        """Seconds until the Retry-After last given for ``method`` runs out; 0 when none is in force."""
        cooldown = self._cooldowns.get(method)
        return 0.0 if cooldown is None else max(0.0, cooldown.until - time.monotonic())

    def wait_time(self, method: str, key: str | None = None) -> float:
        """How long a call to ``method`` (in channel ``key``) asked for now would wait, without taking a slot."""
        now = time.monotonic()
        pace, slots = self._window(method, key)
        paced = 0.0 if pace is None else max(0.0, self._next_slot(pace, slots, now) - now)
        return max(self.cooldown_remaining(method), paced)

    async def acquire(self, method: str, key: str | None = None) -> None:
        """Return when a call to ``method`` may go: after any cooldown, in its turn, within its pace.

        A caller that sends the call must then report how it went (``note_answered``, ``note_rate_limited``,
        or ``abandon`` when no answer came), as ``BudgetedWebClient`` does: after a cooldown the first call
        out is the one that tells the others whether they may follow.
        """
        while True:
            probing = await self._through_cooldown(method)
            pace, slots = self._window(method, key)
            if pace is None:
                return
            slot = self._next_slot(pace, slots, time.monotonic())
            slots.append(slot)
            try:
                delay = slot - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            except BaseException:
                slots.remove(slot)
                if probing:
                    self.abandon(method)
                raise
            if not self._held_back(method, probing):
                return
            # A 429 arrived while this call waited for its slot: the slot is no longer when it will go.
            slots.remove(slot)

    # ------------------------------------------------------------------ telling

    def note_rate_limited(self, method: str, retry_after: float) -> None:
        """A call to ``method`` was answered 429: hold every call to it for ``retry_after`` seconds from now."""
        until = time.monotonic() + max(0.0, retry_after)
        cooldown = self._cooldowns.get(method)
        if cooldown is None:
            self._cooldowns[method] = _Cooldown(until)
            logger.warning("Slack rate-limited %s; holding its calls for %gs", method, retry_after)
            return
        cooldown.until = max(cooldown.until, until)
        cooldown.probing = False
        cooldown.notify()

    def note_answered(self, method: str) -> None:
        """A call to ``method`` was answered with anything but a 429."""
        cooldown = self._cooldowns.get(method)
        # An answer to a call sent before the 429 says nothing about whether the cooldown is over.
        if cooldown is not None and time.monotonic() >= cooldown.until:
            del self._cooldowns[method]
            cooldown.notify()

    def abandon(self, method: str) -> None:
        """A call to ``method`` got no answer at all (connection lost, cancelled): let another one try."""
        cooldown = self._cooldowns.get(method)
        if cooldown is not None and cooldown.probing:
            cooldown.probing = False
            cooldown.notify()

    # ------------------------------------------------------------------ inside

    async def _through_cooldown(self, method: str) -> bool:
        """Wait out any cooldown; True when this caller is the one call sent to test that it is over."""
        while (cooldown := self._cooldowns.get(method)) is not None:
            remaining = cooldown.until - time.monotonic()
            if remaining > 0:
                await asyncio.sleep(remaining)
            elif not cooldown.probing:
                cooldown.probing = True
                return True
            else:
                await cooldown.changed.wait()
        return False

    def _held_back(self, method: str, probing: bool) -> bool:
        cooldown = self._cooldowns.get(method)
        if cooldown is None:
            return False
        return time.monotonic() < cooldown.until or not (probing and cooldown.probing)

    def _window(self, method: str, key: str | None) -> tuple[Pace | None, deque[float]]:
        pace = self.paces.get(method)
        scoped_key = key if pace is not None and pace.per_channel else None
        return pace, self._slots.setdefault((method, scoped_key), deque())

    def _next_slot(self, pace: Pace, slots: deque[float], now: float) -> float:
        window = pace.per_seconds + self.margin_seconds
        while slots and slots[0] <= now - window:
            slots.popleft()
        # Slots are handed out in order, so the one ``calls`` back decides when the window has room again.
        return now if len(slots) < pace.calls else max(now, slots[-pace.calls] + window)


# ---------------------------------------------------------------------- the client


@dataclass(frozen=True)
class _Call:
    method: str
    key: str | None


# The call being made in this task, for the retry handler: slack_sdk gives handlers the URL, not the method's
# arguments, and JSON bodies not at all.
_current_call: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("slack_call", default=None)


def retry_after_seconds(headers: Mapping[str, Any] | None) -> float:
    """The Retry-After of a 429, in seconds; 1 when it is missing or unreadable, as slack_sdk assumes."""
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            text = value[0] if isinstance(value, list | tuple) and value else value
            try:
                seconds = float(str(text).strip())
            except ValueError:
                return 1.0
            return seconds if math.isfinite(seconds) and seconds >= 0 else 1.0
    return 1.0


class BudgetRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 retry handler, waiting through the shared budget instead of sleeping by itself."""

    def __init__(self, budget: SlackCallBudget, max_retry_count: int = DEFAULT_RATE_LIMIT_RETRIES) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.budget = budget

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        call = _current_call.get()
        if call is None or response is None:
            # Not a Web API method call (a file upload URL): slack_sdk's own wait is all there is.
            await super().prepare_for_next_attempt_async(state=state, request=request, response=response, error=error)
            return
        self.budget.note_rate_limited(call.method, retry_after_seconds(response.headers))
        await self.budget.acquire(call.method, call.key)
        state.next_attempt_requested = True
        state.increment_current_attempt()


def default_retry_handlers(
    budget: SlackCallBudget, *, rate_limit_retries: int = DEFAULT_RATE_LIMIT_RETRIES
) -> list[AsyncRetryHandler]:
    return [BudgetRateLimitRetryHandler(budget, rate_limit_retries), AsyncConnectionErrorRetryHandler()]


def _channel_of(*bodies: Any) -> str | None:
    for body in bodies:
        if isinstance(body, Mapping) and body.get("channel") is not None:
            return str(body["channel"])
    return None


class BudgetedWebClient(AsyncWebClient):
    """An ``AsyncWebClient`` whose every call waits its turn in a ``SlackCallBudget`` shared across the app."""

    def __init__(self, *, budget: SlackCallBudget | None = None, **kwargs: Any) -> None:
        self.budget = budget if budget is not None else SlackCallBudget()
        kwargs.setdefault("retry_handlers", default_retry_handlers(self.budget))
        super().__init__(**kwargs)

    def sharing_budget(self, *, token: str | None = None, team_id: str | None = None) -> BudgetedWebClient:
        """A client for one request (its own token and team) on this client's session, handlers and budget."""
        return BudgetedWebClient(
            budget=self.budget,
            token=token if token is not None else self.token,
            base_url=self.base_url,
            timeout=self.timeout,
            ssl=self.ssl,
            proxy=self.proxy,
            session=self.session,
            trust_env_in_session=self.trust_env_in_session,
            headers=dict(self.headers),
            team_id=team_id,
            logger=self.logger,
            retry_handlers=list(self.retry_handlers),
        )

    async def api_call(
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict | None = None,
        data: Any = None,
        params: dict | None = None,
        json: dict | None = None,
        headers: dict | None = None,
        auth: dict | None = None,
    ) -> AsyncSlackResponse:
        key = _channel_of(json, data, params)
        await self.budget.acquire(api_method, key)
        token = _current_call.set(_Call(api_method, key))
        try:
            response = await super().api_call(
                api_method,
                http_verb=http_verb,
                files=files,
                data=data,
                params=params,
                json=json,
                headers=headers,
                auth=auth,
            )
        except SlackApiError as exc:
            if exc.response is not None and exc.response.status_code == 429:
                self.budget.note_rate_limited(api_method, retry_after_seconds(exc.response.headers))
            else:
                self.budget.note_answered(api_method)
            raise
        except BaseException:
            self.budget.abandon(api_method)
            raise
        finally:
            _current_call.reset(token)
        self.budget.note_answered(api_method)
        return response
