"""Slack's Web API rate limits: tiers per method per workspace, chat.postMessage's per-channel pace.

A limited call is answered with HTTP 429, a `Retry-After` header and `{"ok": false, "error":
"ratelimited"}` and does not take effect. Every such answer is recorded, and so is every call that
arrives while a Retry-After the workspace was given is still running: that is the client ignoring it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from tests.slack_emulator.state import Clock

# Tier of each emulated method, from each method's reference page on docs.slack.dev.
# "special" methods have their own rules (see RateLimitConfig).
METHOD_TIERS: dict[str, int | Literal["special"]] = {
    "auth.test": "special",
    "chat.postMessage": "special",
    "chat.getPermalink": "special",
    "chat.update": 3,
    "chat.postEphemeral": 4,
    "conversations.info": 3,
    "users.conversations": 3,
    "conversations.replies": 3,
    "users.info": 4,
    "usergroups.users.list": 2,
    "views.open": 4,
    "views.update": 4,
    "views.publish": 4,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
}

# A few milliseconds of slack for clients that sleep exactly the advertised Retry-After, since the
# sleep and the emulator's clock are measured by different timers.
_TIMER_TOLERANCE = 0.005


class RateLimitConfig(BaseModel):
    """How hard the emulated Slack pushes back. Defaults are Slack's published figures."""

    enabled: bool = True
    window_seconds: float = Field(default=60.0, gt=0)
    tier_limits: dict[int, int] = Field(default_factory=lambda: {1: 1, 2: 20, 3: 50, 4: 100})
    # auth.test and chat.getPermalink are documented as allowing "hundreds of requests per minute".
    special_limits: dict[str, int] = Field(default_factory=lambda: {"auth.test": 200, "chat.getPermalink": 200})
    method_limits: dict[str, int] = Field(default_factory=dict)
    # chat.postMessage: "one message per second per channel", with short bursts allowed.
    post_message_channel_limit: int = Field(default=5, ge=1)
    post_message_channel_window_seconds: float = Field(default=5.0, gt=0)
    # Slack keeps an unpublished workspace-wide limit on chat.postMessage too; off unless a test sets it.
    post_message_workspace_limit: int | None = None
    # Calls already on the wire when a 429 went out could not have seen its Retry-After.
    in_flight_grace_seconds: float = Field(default=0.05, ge=0)

    def limit_for(self, method: str) -> int | None:
        if method in self.method_limits:
            return self.method_limits[method]
        tier = METHOD_TIERS.get(method)
        if tier == "special":
            return self.special_limits.get(method)
        if tier is None:
            return None
        return self.tier_limits.get(tier)


class RateLimitHit(BaseModel):
    """A 429 the emulator answered."""

    method: str
    at: float
    retry_after: int
    reason: Literal["limit", "storm", "retry_after_in_force"]
    channel: str | None = None
    violation: bool = False


class Violation(BaseModel):
    """A call that arrived while a Retry-After for its method was still in force."""

    method: str
    at: float
    blocked_since: float
    blocked_until: float
    channel: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)

    @property
    def seconds_early(self) -> float:
        return self.blocked_until - self.at


@dataclass
class Admission:
    allowed: bool
    retry_after: int | None = None


@dataclass
class _Block:
    since: float
    until: float
    fingerprints: set[str] = field(default_factory=set)


@dataclass
class _Storm:
    remaining: int
    retry_after: int


_Key = tuple[str, str, str]


def fingerprint(method: str, args: dict[str, Any]) -> str:
    """Identifies a request by its content, so a blind retry of the very call that got a 429 is recognised."""
    encoded = json.dumps([method, args], sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()


class RateLimiter:
    def __init__(self, clock: Clock, config: RateLimitConfig | None = None) -> None:
        self.clock = clock
        self.config = config or RateLimitConfig()
        self.hits: list[RateLimitHit] = []
        self.violations: list[Violation] = []
        self._calls: dict[_Key, deque[float]] = {}
        self._blocks: dict[_Key, _Block] = {}
        self._storms: dict[str, _Storm] = {}

    def configure(self, **changes: Any) -> RateLimitConfig:
        """Replace some settings, e.g. `configure(window_seconds=2, method_limits={"chat.update": 5})`."""
        self.config = RateLimitConfig.model_validate({**self.config.model_dump(), **changes})
        return self.config

    def storm(self, method: str, calls: int, *, retry_after: int = 1) -> None:
        """Answer 429 to the next `calls` calls of `method`, whatever the window says."""
        if calls < 1 or retry_after < 1:
            raise ValueError("a storm needs at least one call and a Retry-After of at least one second")
        self._storms[method] = _Storm(remaining=calls, retry_after=retry_after)

    def reset(self) -> None:
        self._calls.clear()
        self._blocks.clear()
        self._storms.clear()
        self.hits.clear()
        self.violations.clear()

    def _checks(self, token: str, method: str, channel: str | None) -> list[tuple[_Key, int | None, float]]:
        config = self.config
        if method == "chat.postMessage":
            checks: list[tuple[_Key, int | None, float]] = [
                (
                    (token, method, channel or "?"),
                    config.method_limits.get(method, config.post_message_channel_limit),
                    config.post_message_channel_window_seconds,
                )
            ]
            if config.post_message_workspace_limit is not None:
                checks.append(((token, method, "*"), config.post_message_workspace_limit, config.window_seconds))
            return checks
        return [((token, method, "*"), config.limit_for(method), config.window_seconds)]

    def admit(self, *, token: str, method: str, args: dict[str, Any], channel: str | None = None) -> Admission:
        """Decide whether a call goes through, recording 429s and Retry-After violations."""
        if not self.config.enabled:
            return Admission(True)
        now = self.clock.now()
        checks = self._checks(token, method, channel)
        call_print = fingerprint(method, args)

        for key, _, _ in checks:
            block = self._blocks.get(key)
            if block is None or now >= block.until - _TIMER_TOLERANCE:
                continue
            violated = call_print in block.fingerprints or now - block.since > self.config.in_flight_grace_seconds
            if violated:
                self.violations.append(
                    Violation(
                        method=method,
                        at=now,
                        blocked_since=block.since,
                        blocked_until=block.until,
                        channel=channel,
                        args=args,
                    )
                )
            else:
                block.fingerprints.add(call_print)
            retry_after = max(1, math.ceil(block.until - now))
            self._hit(method, now, retry_after, "retry_after_in_force", channel, violation=violated)
            return Admission(False, retry_after)

        storm = self._storms.get(method)
        if storm is not None and storm.remaining > 0:
            storm.remaining -= 1
            self._blocks[checks[0][0]] = _Block(since=now, until=now + storm.retry_after, fingerprints={call_print})
            self._hit(method, now, storm.retry_after, "storm", channel)
            return Admission(False, storm.retry_after)

        for key, limit, window in checks:
            if limit is None:
                continue
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= now - window:
                calls.popleft()
            if len(calls) >= limit:
                retry_after = max(1, math.ceil(calls[0] + window - now))
                self._blocks[key] = _Block(since=now, until=now + retry_after, fingerprints={call_print})
                self._hit(method, now, retry_after, "limit", channel)
                return Admission(False, retry_after)

        for key, _, _ in checks:
            self._calls.setdefault(key, deque()).append(now)
        return Admission(True)

    def _hit(
        self,
        method: str,
        at: float,
        retry_after: int,
        reason: Literal["limit", "storm", "retry_after_in_force"],
        channel: str | None,
        *,
        violation: bool = False,
    ) -> None:
        self.hits.append(
            RateLimitHit(
                method=method, at=at, retry_after=retry_after, reason=reason, channel=channel, violation=violation
            )
        )
