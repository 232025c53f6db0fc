"""Which live message is edited next, and when: every streamed message of the app shares ``chat.update``.

Slack allows about 50 ``chat.update`` calls a minute per workspace (Tier 3), whatever message they edit, and
the app's ``SlackCallBudget`` paces every caller under that. A run streaming ten commands would like ten edits
a second; it gets well under one. ``EditScheduler`` decides how that trickle is shared:

- an edit always carries a message's latest content, rendered the moment it is sent, so lines that arrived
  in between are coalesced into it rather than queued behind it;
- a message is edited at most once a second (timed from the answer to its previous write, so two edits never
  reach Slack closer together than that);
- a message whose command just ended is *urgent* and goes before everything else: a final state must not
  wait behind output that is still streaming;
- among the rest, the message that has waited longest since it changed goes first (oldest-dirty-first), so
  a busy command cannot starve a quiet one;
- streaming edits are spread out by a token bucket filling at the method's pace (a short burst, then an
  even trickle rather than the whole minute's budget at once and a frozen thread after), and they stop short
  of the pace's window by a *reserve*: one call for every message whose final edit is still to come, so
  final states never wait for the window to roll over. Urgent edits need neither a token nor the reserve.
  (The window counted is the scheduler's own edits; other callers of the method show in the budget.)

The scheduler asks the budget (``wait_time``) before each call and only then renders and sends, through the
budgeted client, which takes the slot and honours any Retry-After. One call is in flight at a time: at
Slack's pace that costs nothing, and it means a 429 is known before the next call is chosen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from collections import deque
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.blocks.message import RenderedMessage
from bot.slack.client import Pace, SlackCallBudget
from engine.redact import redact_text

logger = logging.getLogger(__name__)

METHOD = "chat.update"
# Slack's published Tier 3 figure, for a budget that does not pace chat.update itself.
_TIER_3 = Pace(50, 60.0)
_BACKOFF_MAX_SECONDS = 30.0


class LiveMessage:
    """One posted Slack message that is kept showing its latest content by edits.

    ``version`` counts changes to what it should show and ``sent`` the version Slack last accepted; the
    owner calls ``changed`` whenever the content moves on, and the scheduler does the rest.
    """

    def __init__(self, label: str, channel: str, render: Callable[[], RenderedMessage]) -> None:
        self.label = label
        self.channel = channel
        self.render = render
        self.ts: str | None = None
        self.client: AsyncWebClient | None = None
        self.version = 0
        self.sent = 0
        self.urgent_version = 0
        self.dirty_since: float | None = None
        self.last_write = -math.inf
        self.retry_at = 0.0
        self.failures = 0
        self.edits = 0
        # True while a final edit may still come (its command has not ended): the scheduler keeps a call of
        # the window for it. The owner clears it once the final state is drawn, and may set it again.
        self.final_due = True
        self._scheduler: EditScheduler | None = None

    @property
    def pending(self) -> bool:
        """Posted, and Slack shows an older version than the latest."""
        return self.ts is not None and self.version > self.sent

    @property
    def urgent(self) -> bool:
        """Pending with a change that must not wait behind streaming output (a command ended)."""
        return self.pending and self.sent < self.urgent_version

    def changed(self, *, urgent: bool = False) -> None:
        was_pending, was_urgent = self.pending, self.urgent
        self.version += 1
        if urgent:
            self.urgent_version = self.version
        if self.dirty_since is None:
            self.dirty_since = time.monotonic()
        # Only a change that can alter the scheduler's choice wakes it: thousands of lines a second into an
        # already pending message must not make it spin.
        if self._scheduler is not None and (self.pending != was_pending or self.urgent != was_urgent):
            self._scheduler.wake()

    def written(self, version: int, *, sent_at: float, answered_at: float) -> None:
        """Slack accepted ``version`` (posted or edited): the call left at ``sent_at``, its answer came at
        ``answered_at``."""
        self.sent = max(self.sent, version)
        self.last_write = answered_at
        self.failures = 0
        self.retry_at = 0.0
        # Changes that came while the call was out are newer than it; they count from when it was sent.
        self.dirty_since = None if self.version <= self.sent else sent_at

    def next_at(self, min_interval: float) -> float:
        return max(self.last_write + min_interval, self.retry_at)


class _Bucket:
    """Tokens for streaming edits: ``burst`` at most, refilled at ``rate`` a second."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._level = burst
        self._at = time.monotonic()

    def level(self, now: float) -> float:
        return min(self.burst, self._level + (now - self._at) * self.rate)

    def take(self, now: float) -> None:
        self._level = self.level(now) - 1
        self._at = now

    def ready_at(self, now: float) -> float:
        level = self.level(now)
        return now if level >= 1 else now + (1 - level) / self.rate


# One scheduler per budget: every sink on the same budget shares it, so fairness spans runs as well as
# commands. Weak keys, and a weak reference back to the budget, let both go when the app drops the budget.
_shared: weakref.WeakKeyDictionary[SlackCallBudget, EditScheduler] = weakref.WeakKeyDictionary()


class EditScheduler:
    """Sends the edits of every tracked ``LiveMessage`` within one ``SlackCallBudget``."""

    def __init__(
        self,
        budget: SlackCallBudget,
        *,
        min_interval: float = 1.0,
        burst: int = 6,
        max_reserve: int | None = None,
    ) -> None:
        """``min_interval``: seconds between two writes of one message. ``burst``: streaming edits that may go
        back to back. ``max_reserve``: the most calls of a window kept back for final edits (a third of the
        pace by default), so that a run of hundreds of commands still streams."""
        if min_interval <= 0 or burst < 1 or (max_reserve is not None and max_reserve < 0):
            raise ValueError("min_interval must be positive, burst at least 1 and max_reserve not negative")
        self._budget_ref = weakref.ref(budget)
        self.min_interval = min_interval
        pace = budget.paces.get(METHOD) or _TIER_3
        self._calls = pace.calls
        self._window = pace.per_seconds + budget.margin_seconds
        self._max_reserve = pace.calls // 3 if max_reserve is None else max_reserve
        self._bucket = _Bucket(pace.calls / self._window, burst)
        # When this scheduler's own edits went, within the last window.
        self._sent: deque[float] = deque()
        self._messages: list[LiveMessage] = []
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    @classmethod
    def shared(cls, budget: SlackCallBudget) -> EditScheduler:
        """The scheduler of ``budget``, made on first use (and again for another event loop)."""
        loop = asyncio.get_running_loop()
        scheduler = _shared.get(budget)
        if scheduler is None or (scheduler._task is not None and scheduler._task.get_loop() is not loop):
            scheduler = cls(budget)
            _shared[budget] = scheduler
        return scheduler

    def reserve(self) -> int:
        """Calls of the window kept back for final edits still to come."""
        return min(sum(1 for m in self._messages if m.final_due), self._max_reserve)

    def _streaming_at(self, now: float) -> float:
        """When a streaming edit may go next: a token in the bucket, and room in the window above the reserve."""
        while self._sent and self._sent[0] <= now - self._window:
            self._sent.popleft()
        at = self._bucket.ready_at(now)
        over = len(self._sent) + 1 + self.reserve() - self._calls
        if over > 0 and self._sent:
            # The window has room again once enough of the calls in it have aged out.
            at = max(at, self._sent[min(over, len(self._sent)) - 1] + self._window)
        return at

    def track(self, message: LiveMessage) -> None:
        if message.ts is None or message.client is None:
            raise ValueError("only a posted message with a client can be edited")
        if message not in self._messages:
            self._messages.append(message)
            message._scheduler = self
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="cloudops:slack-edits")
        self.wake()

    def untrack(self, message: LiveMessage) -> None:
        if message in self._messages:
            self._messages.remove(message)
            message._scheduler = None
            self.wake()

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------ the loop

    def _choose(self, now: float) -> tuple[LiveMessage | None, float]:
        """The message to edit now, or None and the time worth waking at (inf: until something changes)."""
        pending = [m for m in self._messages if m.pending]
        ready = [m for m in pending if m.next_at(self.min_interval) <= now]
        urgent = [m for m in ready if m.urgent]
        if urgent:
            return min(urgent, key=_age), now
        streaming_at = self._streaming_at(now)
        if ready and streaming_at <= now:
            return min(ready, key=_age), now
        wake_at = math.inf
        for message in pending:
            at = message.next_at(self.min_interval)
            if not message.urgent:
                at = max(at, streaming_at)
            wake_at = min(wake_at, at)
        return None, wake_at

    async def _run(self) -> None:
        assert self._wake is not None
        wake = self._wake
        while self._messages:
            wake.clear()
            now = time.monotonic()
            message, wake_at = self._choose(now)
            if message is None:
                timeout = None if math.isinf(wake_at) else max(wake_at - now, 0.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout)
                continue
            budget = self._budget_ref()
            if budget is None:
                return
            wait = budget.wait_time(METHOD)
            if wait > 0:
                # Not woken early by new output: nothing can go before the budget has a slot. The choice is
                # made again afterwards, since a command may have ended meanwhile.
                await asyncio.sleep(wait)
                continue
            if not message.urgent:
                self._bucket.take(now)
            self._sent.append(now)
            await self._send(message)
        self._task = None

    async def _send(self, message: LiveMessage) -> None:
        assert message.client is not None and message.ts is not None
        version = message.version
        sent_at = time.monotonic()
        try:
            rendered = message.render()
        except Exception:
            # A drawing bug must not stop every other message: this one waits and is drawn again later.
            logger.exception("drawing the Slack message %s failed", message.label)
            self._back_off(message)
            return
        try:
            await message.client.chat_update(
                channel=message.channel, ts=message.ts, text=rendered.text, blocks=rendered.block_dicts()
            )
        except SlackApiError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status == 429:
                # The client told the budget; the next call waits out the Retry-After and carries the newest
                # content, not this one.
                logger.info("chat.update for %s rate-limited; sending the newest content after it", message.label)
                return
            error = exc.response.get("error") if exc.response is not None else None
            logger.warning("chat.update for %s failed (%s); trying again later", message.label, error)
            self._back_off(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning(
                "chat.update for %s failed (%s: %s); trying again later",
                message.label,
                type(exc).__name__,
                redact_text(str(exc)),
            )
            self._back_off(message)
        else:
            message.edits += 1
            message.written(version, sent_at=sent_at, answered_at=time.monotonic())

    def _back_off(self, message: LiveMessage) -> None:
        message.failures += 1
        message.retry_at = time.monotonic() + min(2.0 ** (message.failures - 1), _BACKOFF_MAX_SECONDS)


def _age(message: LiveMessage) -> float:
    return message.dirty_since if message.dirty_since is not None else math.inf
