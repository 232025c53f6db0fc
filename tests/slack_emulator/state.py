"""The workspace an emulated Slack keeps: people, conversations, messages, files, views and the call log."""

from __future__ import annotations

import secrets
import string
import time
from typing import Any, Literal

from pydantic import BaseModel, Field


class Clock:
    """Wall-clock seconds plus an offset that tests can push forward.

    Expiry rules (trigger ids, response URLs, rate-limit windows) read this clock, so a test can
    jump past a deadline instead of sleeping through it.
    """

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds


def new_id(prefix: str, length: int = 10) -> str:
    alphabet = string.ascii_uppercase + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def ts_from_micros(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


class Team(BaseModel):
    id: str
    name: str
    domain: str


class User(BaseModel):
    id: str
    name: str
    real_name: str = ""
    email: str | None = None
    is_admin: bool = False
    is_owner: bool = False
    is_bot: bool = False
    deleted: bool = False
    tz: str = "Europe/London"

    def to_api(self, team_id: str) -> dict[str, Any]:
        real_name = self.real_name or self.name
        profile: dict[str, Any] = {"real_name": real_name, "display_name": self.name}
        if self.email:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": real_name,
            "tz": self.tz,
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "profile": profile,
        }


class UserGroup(BaseModel):
    id: str
    handle: str
    name: str
    members: list[str] = Field(default_factory=list)


class Channel(BaseModel):
    id: str
    name: str
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    members: set[str] = Field(default_factory=set)
    created: int = Field(default_factory=lambda: int(time.time()))

    def to_api(self, viewer_id: str) -> dict[str, Any]:
        if self.is_im:
            return {
                "id": self.id,
                "is_im": True,
                "is_channel": False,
                "is_group": False,
                "is_private": True,
                "user": self.im_user,
                "created": self.created,
            }
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_private": self.is_private,
            "is_archived": False,
            "is_member": viewer_id in self.members,
            "created": self.created,
            "num_members": len(self.members),
        }


class MessageVersion(BaseModel):
    """One state of a message: the original post, or an edit, with the moment it happened."""

    at: float
    text: str
    blocks: list[dict[str, Any]] | None
    via: str


class Message(BaseModel):
    channel: str
    ts: str
    user: str
    text: str = ""
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    subtype: str | None = None
    metadata: dict[str, Any] | None = None
    files: list[str] = Field(default_factory=list)
    reply_broadcast: bool = False
    deleted_at: float | None = None
    last_edit_ts: str | None = None
    versions: list[MessageVersion] = Field(default_factory=list)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def edits(self) -> list[MessageVersion]:
        return self.versions[1:]


class Ephemeral(BaseModel):
    message_ts: str
    channel: str
    user: str
    text: str = ""
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    via: str
    at: float
    deleted_at: float | None = None
    versions: list[MessageVersion] = Field(default_factory=list)


class StoredFile(BaseModel):
    id: str
    name: str
    declared_length: int
    user: str
    title: str | None = None
    alt_txt: str | None = None
    snippet_type: str | None = None
    content: bytes | None = None
    uploaded_at: float | None = None
    completed_at: float | None = None
    channels: list[str] = Field(default_factory=list)
    thread_ts: str | None = None
    initial_comment: str | None = None
    message_ts: str | None = None

    def to_api(self, team: Team) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "title": self.title or self.name,
            "size": len(self.content or b""),
            "user": self.user,
            "created": int(self.completed_at or self.uploaded_at or 0),
            "channels": list(self.channels),
            "permalink": f"https://{team.domain}.slack.com/files/{self.user}/{self.id}/{self.name}",
            "url_private": f"https://files.slack.com/files-pri/{team.id}-{self.id}/{self.name}",
        }


class ViewVersion(BaseModel):
    at: float
    view: dict[str, Any]
    via: str


class StoredView(BaseModel):
    id: str
    type: Literal["modal", "home"]
    user_id: str
    definition: dict[str, Any]
    hash: str
    external_id: str | None = None
    trigger_id: str | None = None
    root_view_id: str
    previous_view_id: str | None = None
    state_values: dict[str, Any] = Field(default_factory=dict)
    submission_errors: dict[str, str] = Field(default_factory=dict)
    opened_at: float
    closed_at: float | None = None
    history: list[ViewVersion] = Field(default_factory=list)

    def to_api(self, team: Team, app_id: str, bot_id: str) -> dict[str, Any]:
        definition = self.definition
        return {
            "id": self.id,
            "team_id": team.id,
            "type": self.type,
            "title": definition.get("title"),
            "submit": definition.get("submit"),
            "close": definition.get("close"),
            "blocks": definition.get("blocks", []),
            "private_metadata": definition.get("private_metadata", ""),
            "callback_id": definition.get("callback_id", ""),
            "external_id": self.external_id or "",
            "state": {"values": self.state_values},
            "hash": self.hash,
            "clear_on_close": bool(definition.get("clear_on_close", False)),
            "notify_on_close": bool(definition.get("notify_on_close", False)),
            "root_view_id": self.root_view_id,
            "previous_view_id": self.previous_view_id,
            "app_id": app_id,
            "app_installed_team_id": team.id,
            "bot_id": bot_id,
        }


class Trigger(BaseModel):
    trigger_id: str
    user_id: str
    issued_at: float
    exchanged_at: float | None = None


class ResponseUrl(BaseModel):
    id: str
    channel: str
    user: str
    original_ts: str | None
    original_is_ephemeral: bool = False
    issued_at: float
    uses: list[float] = Field(default_factory=list)


class ResponseUrlPost(BaseModel):
    at: float
    response_url_id: str
    payload: dict[str, Any]
    outcome: str


class ApiCall(BaseModel):
    """One request the emulator answered, whatever its outcome."""

    kind: Literal["api", "upload", "response_url"]
    method: str
    at: float
    args: dict[str, Any]
    http_status: int
    ok: bool | None = None
    error: str | None = None
    retry_after: int | None = None
