"""What the Slack listeners need besides the Slack client: policy, history store, the approval and execution
services, the planner, the engine settings.

``create_app(settings, context=...)`` installs a middleware that puts the ``BotContext`` into every Bolt
request context under ``CONTEXT_KEY``; a listener reaches it with ``bot_context(context)``.

The Slack side runs plans only through ``engine.execution.ExecutionService`` (exactly-once claim, re-validation,
every outcome recorded).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.planner import Planner
from engine.approval import ApprovalService
from engine.config import EngineSettings
from engine.execution import ExecutionService
from engine.history.store import HistoryStore
from engine.policy import Policy

CONTEXT_KEY = "cloudops"
USERGROUP_CACHE_SECONDS = 60.0


@dataclass
class BotContext:
    policy: Policy
    store: HistoryStore
    approvals: ApprovalService
    executions: ExecutionService
    engine_settings: EngineSettings
    planner: Planner | None = None
    team_id: str | None = None
    bot_user_id: str | None = None
    _group_cache: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict, repr=False)
    # One refresh of the group cache at a time: a burst of clicks as the cache expires would otherwise send
    # every click to usergroups.users.list (Tier 2) and queue them all behind its pace.
    _group_refresh: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @classmethod
    def build(
        cls,
        *,
        policy: Policy,
        store: HistoryStore,
        engine_settings: EngineSettings | None = None,
        planner: Planner | None = None,
        executions: ExecutionService | None = None,
        team_id: str | None = None,
        bot_user_id: str | None = None,
    ) -> BotContext:
        settings = engine_settings or EngineSettings()
        return cls(
            policy=policy,
            store=store,
            approvals=ApprovalService(store, policy),
            executions=executions or ExecutionService(store, policy, settings),
            engine_settings=settings,
            planner=planner,
            team_id=team_id,
            bot_user_id=bot_user_id,
        )

    def approver_groups(self) -> set[str]:
        """The user groups (``S…`` ids) the policy names as approvers."""
        return {who for names in self.policy.approvers.values() for who in names if who.startswith("S")}

    async def user_groups(self, client: Any, user: str) -> frozenset[str]:
        """Which of the policy's approver groups ``user`` is in (``usergroups.users.list``, cached briefly)."""
        member_of: set[str] = set()
        for group in sorted(self.approver_groups()):
            members = self._fresh_members(group)
            if members is None:
                async with self._group_refresh:
                    members = self._fresh_members(group)  # another click may have refreshed it meanwhile
                    if members is None:
                        try:
                            answer = await client.usergroups_users_list(usergroup=group)
                        except Exception:
                            # Fail closed for this click (no group membership), but do not remember it.
                            continue
                        members = frozenset(answer.get("users") or [])
                        self._group_cache[group] = (time.monotonic(), members)
            if user in members:
                member_of.add(group)
        return frozenset(member_of)

    def _fresh_members(self, group: str) -> frozenset[str] | None:
        cached = self._group_cache.get(group)
        if cached is None or time.monotonic() - cached[0] > USERGROUP_CACHE_SECONDS:
            return None
        return cached[1]


def install(app: AsyncApp, bot: BotContext) -> None:
    """Make ``bot`` available to every listener of ``app`` as ``context[CONTEXT_KEY]``."""

    async def add_bot_context(context: AsyncBoltContext, next: Callable[[], Awaitable[Any]]) -> Any:
        context[CONTEXT_KEY] = bot
        return await next()

    app.middleware(add_bot_context)


def bot_context(context: AsyncBoltContext) -> BotContext:
    bot = context.get(CONTEXT_KEY)
    if bot is None:
        raise RuntimeError("the app was created without a BotContext (create_app(..., context=...))")
    return bot  # type: ignore[no-any-return]
