"""A single Slack workspace held in memory, with the operations the Web API methods are built on."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from tests.slack_emulator.state import (
    ApiCall,
    Channel,
    Clock,
    Ephemeral,
    Message,
    MessageVersion,
    ResponseUrl,
    ResponseUrlPost,
    StoredFile,
    StoredView,
    Team,
    Trigger,
    User,
    UserGroup,
    new_id,
    ts_from_micros,
)


class ApiError(Exception):
    """A Slack error answer: `{"ok": false, "error": <error>, ...extra}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class Workspace:
    """People, conversations and everything posted in them, plus the bookkeeping the tests inspect."""

    def __init__(self, clock: Clock, *, team: Team | None = None, bot_name: str = "cloudops") -> None:
        self.clock = clock
        self.team = team or Team(id="T0EMULATE1", name="CloudOps Test", domain="cloudops-test")
        self.app_id = "A0EMULATE1"
        self.bot_id = "B0EMULATE1"
        self.bot_user = User(id="U0BOTUSER1", name=bot_name, real_name="CloudOps", is_bot=True)
        self.users: dict[str, User] = {self.bot_user.id: self.bot_user}
        self.usergroups: dict[str, UserGroup] = {}
        self.channels: dict[str, Channel] = {}
        self.messages: dict[str, dict[str, Message]] = {}
        self.ephemerals: list[Ephemeral] = []
        self.files: dict[str, StoredFile] = {}
        self.views: dict[str, StoredView] = {}
        self.triggers: dict[str, Trigger] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.response_url_posts: list[ResponseUrlPost] = []
        self.calls: list[ApiCall] = []
        self._last_micros = 0

    # ------------------------------------------------------------------ setup

    def add_user(
        self,
        name: str,
        *,
        user_id: str | None = None,
        real_name: str = "",
        email: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
    ) -> User:
        user = User(
            id=user_id or new_id("U"),
            name=name,
            real_name=real_name,
            email=email,
            is_admin=is_admin,
            is_owner=is_owner,
        )
        self.users[user.id] = user
        return user

    def add_channel(
        self,
        name: str,
        *,
        channel_id: str | None = None,
        is_private: bool = False,
        members: Iterable[str] = (),
        bot_is_member: bool = True,
    ) -> Channel:
        member_ids = set(members)
        unknown = member_ids - self.users.keys()
        if unknown:
            raise ValueError(f"unknown members: {sorted(unknown)}")
        if bot_is_member:
            member_ids.add(self.bot_user.id)
        channel = Channel(
            id=channel_id or new_id("G" if is_private else "C"),
            name=name,
            is_private=is_private,
            members=member_ids,
            created=int(self.clock.now()),
        )
        self.channels[channel.id] = channel
        self.messages[channel.id] = {}
        return channel

    def add_usergroup(
        self, handle: str, members: Iterable[str], *, name: str = "", group_id: str | None = None
    ) -> UserGroup:
        member_ids = list(members)
        unknown = set(member_ids) - self.users.keys()
        if unknown:
            raise ValueError(f"unknown members: {sorted(unknown)}")
        group = UserGroup(id=group_id or new_id("S"), handle=handle, name=name or handle, members=member_ids)
        self.usergroups[group.id] = group
        return group

    def open_dm(self, user_id: str) -> Channel:
        if user_id not in self.users:
            raise ValueError(f"unknown user {user_id}")
        for channel in self.channels.values():
            if channel.is_im and channel.im_user == user_id:
                return channel
        channel = Channel(
            id=new_id("D"),
            name=user_id,
            is_im=True,
            im_user=user_id,
            members={user_id, self.bot_user.id},
            created=int(self.clock.now()),
        )
        self.channels[channel.id] = channel
        self.messages[channel.id] = {}
        return channel

    # ------------------------------------------------------------------ lookups

    def next_ts(self) -> str:
        """A message timestamp: the current time in microseconds, strictly increasing like Slack's."""
        micros = max(int(self.clock.now() * 1_000_000), self._last_micros + 1)
        self._last_micros = micros
        return ts_from_micros(micros)

    def resolve_channel(self, ref: str | None) -> Channel:
        """A channel by id, by name (with or without '#'), or a user id meaning the DM with that user."""
        if not ref:
            raise ApiError("channel_not_found")
        if ref in self.channels:
            return self.channels[ref]
        name = ref.removeprefix("#")
        for channel in self.channels.values():
            if not channel.is_im and channel.name == name:
                return channel
        if ref in self.users and ref != self.bot_user.id:
            return self.open_dm(ref)
        raise ApiError("channel_not_found")

    def visible_channel(self, ref: str | None) -> Channel:
        """A channel the bot may know about: private channels it is not in look missing, as on Slack."""
        channel = self.resolve_channel(ref)
        if channel.is_private and self.bot_user.id not in channel.members:
            raise ApiError("channel_not_found")
        return channel

    def user(self, user_id: str | None) -> User:
        if not user_id or user_id not in self.users:
            raise ApiError("user_not_found")
        return self.users[user_id]

    def message(self, channel_id: str, ts: str | None) -> Message:
        message = self.messages.get(channel_id, {}).get(ts or "")
        if message is None or message.deleted_at is not None:
            raise ApiError("message_not_found")
        return message

    def thread_root(self, channel_id: str, ts: str) -> Message:
        message = self.message(channel_id, ts)
        if message.is_reply:
            return self.message(channel_id, message.thread_ts)
        return message

    def replies(self, channel_id: str, root_ts: str) -> list[Message]:
        return sorted(
            (
                m
                for m in self.messages.get(channel_id, {}).values()
                if m.thread_ts == root_ts and m.ts != root_ts and m.deleted_at is None
            ),
            key=lambda m: m.ts,
        )

    # ------------------------------------------------------------------ changes

    def post(
        self,
        channel: Channel,
        *,
        user: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: dict[str, Any] | None = None,
        files: list[str] | None = None,
        as_bot: bool,
        via: str,
    ) -> Message:
        root_ts = None
        if thread_ts:
            # Slack threads a reply to a reply under the original parent.
            root_ts = self.thread_root(channel.id, thread_ts).ts
        now = self.clock.now()
        message = Message(
            channel=channel.id,
            ts=self.next_ts(),
            user=user,
            text=text,
            blocks=blocks,
            thread_ts=root_ts,
            bot_id=self.bot_id if as_bot else None,
            app_id=self.app_id if as_bot else None,
            subtype="thread_broadcast" if root_ts and reply_broadcast else None,
            metadata=metadata,
            files=files or [],
            reply_broadcast=bool(root_ts and reply_broadcast),
            versions=[MessageVersion(at=now, text=text, blocks=blocks, via=via)],
        )
        self.messages[channel.id][message.ts] = message
        return message

    def edit(self, message: Message, *, text: str | None, blocks: list[dict[str, Any]] | None, via: str) -> Message:
        if text is not None:
            message.text = text
        if blocks is not None:
            # An empty list removes the blocks, as chat.update documents.
            message.blocks = blocks or None
        now = self.clock.now()
        message.last_edit_ts = self.next_ts()
        message.versions.append(MessageVersion(at=now, text=message.text, blocks=message.blocks, via=via))
        return message

    def post_ephemeral(
        self,
        channel: Channel,
        *,
        user: str,
        text: str,
        blocks: list[dict[str, Any]] | None,
        thread_ts: str | None,
        via: str,
    ) -> Ephemeral:
        now = self.clock.now()
        ephemeral = Ephemeral(
            message_ts=self.next_ts(),
            channel=channel.id,
            user=user,
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            via=via,
            at=now,
            versions=[MessageVersion(at=now, text=text, blocks=blocks, via=via)],
        )
        self.ephemerals.append(ephemeral)
        return ephemeral

    def ephemeral(self, channel_id: str, message_ts: str) -> Ephemeral | None:
        for ephemeral in self.ephemerals:
            if ephemeral.channel == channel_id and ephemeral.message_ts == message_ts and ephemeral.deleted_at is None:
                return ephemeral
        return None

    def issue_trigger(self, user_id: str) -> Trigger:
        self.user(user_id)
        trigger_id = f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        trigger = Trigger(trigger_id=trigger_id, user_id=user_id, issued_at=self.clock.now())
        self.triggers[trigger_id] = trigger
        return trigger

    # ------------------------------------------------------------------ rendering

    def message_to_api(self, message: Message, *, include_metadata: bool = True) -> dict[str, Any]:
        """A message as Slack returns it from conversations.replies and in interaction payloads."""
        body: dict[str, Any] = {
            "type": "message",
            "ts": message.ts,
            "user": message.user,
            "text": message.text,
            "team": self.team.id,
        }
        if message.blocks is not None:
            body["blocks"] = message.blocks
        if message.bot_id:
            body["bot_id"] = message.bot_id
            body["app_id"] = message.app_id
        if message.subtype:
            body["subtype"] = message.subtype
        if message.last_edit_ts:
            body["edited"] = {"user": message.user, "ts": message.last_edit_ts}
        if message.files:
            body["files"] = [self.files[f].to_api(self.team) for f in message.files if f in self.files]
        if include_metadata and message.metadata:
            body["metadata"] = message.metadata
        if message.is_reply:
            body["thread_ts"] = message.thread_ts
            parent = self.messages[message.channel].get(message.thread_ts or "")
            if parent is not None:
                body["parent_user_id"] = parent.user
        else:
            replies = self.replies(message.channel, message.ts)
            if replies:
                reply_users = list(dict.fromkeys(r.user for r in replies))
                body.update(
                    thread_ts=message.ts,
                    reply_count=len(replies),
                    reply_users_count=len(reply_users),
                    reply_users=reply_users,
                    latest_reply=replies[-1].ts,
                )
        return body
