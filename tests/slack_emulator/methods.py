"""The Web API methods the emulator answers, each checking its arguments the way Slack does.

Every handler takes the request context and its arguments and returns the success body (without
`ok`), or raises `ApiError` with the error name Slack's reference lists for that method.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.slack_emulator.blocks import (
    MESSAGE_MAX_BLOCKS,
    MESSAGE_TEXT_MAX,
    block_errors,
    view_errors,
    view_too_large,
)
from tests.slack_emulator.state import Channel, StoredFile, StoredView, ViewVersion, new_id
from tests.slack_emulator.workspace import ApiError, Workspace

REPLIES_MAX_LIMIT = 1000


@dataclass
class MethodContext:
    workspace: Workspace
    base_url: str
    trigger_ttl_seconds: float


class Args:
    """Arguments of one call, merged from the query string and a form or JSON body."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def present(self, name: str) -> bool:
        return self.raw.get(name) is not None

    def string(self, name: str, *, required_error: str | None = None) -> str | None:
        value = self.raw.get(name)
        if value is None or value == "":
            if required_error:
                raise ApiError(required_error)
            return None
        return str(value)

    def flag(self, name: str) -> bool:
        value = self.raw.get(name)
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true")

    def number(self, name: str, *, default: int) -> int:
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise ApiError("invalid_arguments") from exc

    def decoded(self, name: str, *, error: str = "invalid_arguments") -> Any:
        """A JSON-valued argument: already decoded in a JSON body, a JSON string in a form body."""
        value = self.raw.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ApiError(error) from exc
        return value


def _invalid_blocks(errors: list[str]) -> ApiError:
    return ApiError("invalid_blocks", errors=errors, response_metadata={"messages": errors})


def message_blocks(args: Args) -> list[dict[str, Any]] | None:
    if not args.present("blocks"):
        return None
    blocks = args.decoded("blocks", error="invalid_blocks_format")
    if not isinstance(blocks, list):
        raise ApiError("invalid_blocks_format")
    errors = block_errors(blocks, max_blocks=MESSAGE_MAX_BLOCKS)
    if errors:
        raise _invalid_blocks(errors)
    return blocks


def _message_text(args: Args) -> str | None:
    text = args.raw.get("text")
    if text is None:
        return None
    text = str(text)
    if len(text) > MESSAGE_TEXT_MAX:
        raise ApiError("msg_too_long")
    return text


def _require_bot_membership(ws: Workspace, channel: Channel) -> None:
    if ws.bot_user.id not in channel.members:
        raise ApiError("not_in_channel")


def _metadata(args: Args) -> dict[str, Any] | None:
    if not args.present("metadata"):
        return None
    metadata = args.decoded("metadata", error="invalid_metadata_format")
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("event_type"), str)
        or not isinstance(metadata.get("event_payload"), dict)
    ):
        raise ApiError("invalid_metadata_format")
    return metadata


def _thread_root_ts(ws: Workspace, channel: Channel, thread_ts: str | None) -> str | None:
    if thread_ts is None:
        return None
    try:
        return ws.thread_root(channel.id, thread_ts).ts
    except ApiError as exc:
        raise ApiError("thread_not_found") from exc


# ---------------------------------------------------------------------- auth / chat


def auth_test(ctx: MethodContext, args: Args) -> dict[str, Any]:
    ws = ctx.workspace
    return {
        "url": f"https://{ws.team.domain}.slack.com/",
        "team": ws.team.name,
        "user": ws.bot_user.name,
        "team_id": ws.team.id,
        "user_id": ws.bot_user.id,
        "bot_id": ws.bot_id,
        "is_enterprise_install": False,
    }


def chat_post_message(ctx: MethodContext, args: Args) -> dict[str, Any]:
    ws = ctx.workspace
    channel = ws.visible_channel(args.string("channel"))
    _require_bot_membership(ws, channel)
    text = _message_text(args)
    blocks = message_blocks(args)
    if not text and not blocks and not args.present("attachments"):
        raise ApiError("no_text")
    metadata = _metadata(args)
    root_ts = _thread_root_ts(ws, channel, args.string("thread_ts"))
    message = ws.post(
        channel,
        user=ws.bot_user.id,
        text=text or "",
        blocks=blocks,
        thread_ts=root_ts,
        reply_broadcast=args.flag("reply_broadcast"),
        metadata=metadata,
        as_bot=True,
        via="chat.postMessage",
    )
    return {"channel": channel.id, "ts": message.ts, "message": ws.message_to_api(message)}


def chat_update(ctx: MethodContext, args: Args) -> dict[str, Any]:
    ws = ctx.workspace
    channel = ws.visible_channel(args.string("channel"))
    message = ws.message(channel.id, args.string("ts"))
    if message.bot_id != ws.bot_id:
        raise ApiError("cant_update_message")
    text = _message_text(args)
    blocks = message_blocks(args)
    if text is None and blocks is None and not args.present("attachments"):
        raise ApiError("no_text")
    ws.edit(message, text=text, blocks=blocks, via="chat.update")
    return {"channel": channel.id, "ts": message.ts, "text": message.text, "message": ws.message_to_api(message)}


def chat_post_ephemeral(ctx: MethodContext, args: Args) -> dict[str, Any]:
    ws = ctx.workspace
    channel = ws.visible_channel(args.string("channel"))
    _require_bot_membership(ws, channel)
    user = ws.user(args.string("user"))
    if user.id not in channel.members:
        raise ApiError("user_not_in_channel")
    text = _message_text(args)
    blocks = message_blocks(args)
    if not text and not blocks and not args.present("attachments"):
        raise ApiError("no_text")
    root_ts = _thread_root_ts(ws, channel, args.string("thread_ts"))
    ephemeral = ws.post_ephemeral(
        channel, user=user.id, text=text or "", blocks=blocks, thread_ts=root_ts, via="chat.postEphemeral"
    )
    return {"message_ts": ephemeral.message_ts}


def chat_get_permalink(ctx: MethodContext, args: Args) -> dict[str, Any]:
    ws = ctx.workspace
    channel = ws.visible_channel(args.string("channel"))
    message = ws.message(channel.id, args.string("message_ts"))
    permalink = f"https://{ws.team.domain}.slack.com/archives/{channel.id}/p{message.ts.replace('.', '')}"
    if message.is_reply:
        permalink += f"?thread_ts={message.thread_ts}&cid={channel.id}"
    return {"channel": channel.id, "permalink": permalink}


# ---------------------------------------------------------------------- conversations / users


def _encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        prefix, _, offset = base64.b64decode(cursor, validate=True).decode().partition(":")
        if prefix != "offset":
            raise ValueError(cursor)
        return int(offset)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ApiError("invalid_cursor") from exc


def conversations_replies(ctx: MethodContext, args: Args) -> dict[str, Any]:
    ws = ctx.workspace
    channel = ws.visible_channel(args.string("channel"))
    _require_bot_membership(ws, channel)
    ts = args.string("ts", required_error="invalid_arguments")
    try:
        root = ws.thread_root(channel.id, ts or "")
    except ApiError as exc:
        raise ApiError("thread_not_found") from exc
    thread = [root, *ws.replies(channel.id, root.ts)]
    limit = min(max(args.number("limit", default=REPLIES_MAX_LIMIT), 1), REPLIES_MAX_LIMIT)
    offset = _decode_cursor(args.string("cursor"))
    page = thread[offset : offset + limit]
    has_more = offset + limit < len(thread)
    include_metadata = args.flag("include_all_metadata")
    return {
        "messages": [ws.message_to_api(m, include_metadata=include_metadata) for m in page],
        "has_more": has_more,
        "response_metadata": {"next_cursor": _encode_cursor(offset + limit) if has_more else ""},
    }


def conversations_info(ctx: MethodContext, args: Args) -> dict[str, Any]:
    ws = ctx.workspace
    channel = ws.visible_channel(args.string("channel"))
    return {"channel": channel.to_api(ws.bot_user.id)}


# Slack may answer with fewer conversations than asked for; tests lower this to make the caller page.
USERS_CONVERSATIONS_MAX_PAGE = 200


def users_conversations(ctx: MethodContext, args: Args) -> dict[str, Any]:
    """The conversations a user is in; with a bot token, non-public ones only where the bot is a member too."""
    ws = ctx.workspace
    user = ws.user(args.string("user"))
    types = set((args.string("types") or "public_channel").split(","))

    def kind(channel: Channel) -> str:
        return "im" if channel.is_im else "private_channel" if channel.is_private else "public_channel"

    listed = sorted(
        (
            channel
            for channel in ws.channels.values()
            if user.id in channel.members
            and kind(channel) in types
            and (kind(channel) == "public_channel" or ws.bot_user.id in channel.members)
        ),
        key=lambda channel: channel.id,
    )
    limit = min(max(args.number("limit", default=100), 1), USERS_CONVERSATIONS_MAX_PAGE)
    offset = _decode_cursor(args.string("cursor"))
    page = listed[offset : offset + limit]
    more = offset + limit < len(listed)
    return {
        "channels": [channel.to_api(ws.bot_user.id) for channel in page],
        "response_metadata": {"next_cursor": _encode_cursor(offset + limit) if more else ""},
    }


def users_info(ctx: MethodContext, args: Args) -> dict[str, Any]:
    ws = ctx.workspace
    return {"user": ws.user(args.string("user")).to_api(ws.team.id)}


def usergroups_users_list(ctx: MethodContext, args: Args) -> dict[str, Any]:
    ws = ctx.workspace
    group = ws.usergroups.get(args.string("usergroup") or "")
    if group is None:
        raise ApiError("no_such_subteam")
    return {"users": list(group.members)}


# ---------------------------------------------------------------------- views


def _new_view_hash(ctx: MethodContext) -> str:
    return f"{int(ctx.workspace.clock.now())}.{secrets.token_hex(4)}"


def _checked_view(args: Args, *, expected_type: str) -> dict[str, Any]:
    view = args.decoded("view")
    if view is None:
        raise ApiError("invalid_arguments")
    if view_too_large(view):
        raise ApiError("view_too_large")
    errors = view_errors(view, expected_type=expected_type)
    if errors:
        raise ApiError("invalid_arguments", response_metadata={"messages": errors})
    return view


def _exchange_trigger(ctx: MethodContext, trigger_id: str | None) -> str:
    """Spend a trigger id: each is good once, and only within a few seconds of the user's action."""
    ws = ctx.workspace
    trigger = ws.triggers.get(trigger_id or "")
    if trigger is None:
        raise ApiError("invalid_trigger_id")
    if trigger.exchanged_at is not None:
        raise ApiError("exchanged_trigger_id")
    now = ws.clock.now()
    if now - trigger.issued_at > ctx.trigger_ttl_seconds:
        raise ApiError("expired_trigger_id")
    trigger.exchanged_at = now
    return trigger.user_id


def _external_id_taken(ws: Workspace, external_id: str | None, *, other_than: str | None = None) -> bool:
    return external_id is not None and any(
        v.external_id == external_id and v.id != other_than for v in ws.views.values()
    )


def _view_body(ctx: MethodContext, view: StoredView) -> dict[str, Any]:
    ws = ctx.workspace
    return {"view": view.to_api(ws.team, ws.app_id, ws.bot_id)}


def views_open(ctx: MethodContext, args: Args) -> dict[str, Any]:
    ws = ctx.workspace
    definition = _checked_view(args, expected_type="modal")
    external_id = definition.get("external_id")
    if _external_id_taken(ws, external_id):
        raise ApiError("duplicate_external_id")
    trigger_id = args.string("trigger_id") or args.string("interactivity_pointer")
    user_id = _exchange_trigger(ctx, trigger_id)
    now = ws.clock.now()
    view_id = new_id("V")
    view = StoredView(
        id=view_id,
        type="modal",
        user_id=user_id,
        definition=definition,
        hash=_new_view_hash(ctx),
        external_id=external_id,
        trigger_id=trigger_id,
        root_view_id=view_id,
        opened_at=now,
        history=[ViewVersion(at=now, view=definition, via="views.open")],
    )
    ws.views[view.id] = view
    return _view_body(ctx, view)


def views_update(ctx: MethodContext, args: Args) -> dict[str, Any]:
    ws = ctx.workspace
    view_id, external_id = args.string("view_id"), args.string("external_id")
    if view_id is None and external_id is None:
        raise ApiError("invalid_arguments")
    stored = ws.views.get(view_id or "") if view_id else None
    if stored is None and external_id is not None:
        stored = next((v for v in ws.views.values() if v.external_id == external_id), None)
    if stored is None:
        raise ApiError("not_found")
    given_hash = args.string("hash")
    if given_hash is not None and given_hash != stored.hash:
        raise ApiError("hash_conflict")
    definition = _checked_view(args, expected_type=stored.type)
    new_external_id = definition.get("external_id", stored.external_id)
    if _external_id_taken(ws, new_external_id, other_than=stored.id):
        raise ApiError("duplicate_external_id")
    stored.definition = definition
    stored.external_id = new_external_id
    stored.hash = _new_view_hash(ctx)
    stored.history.append(ViewVersion(at=ws.clock.now(), view=definition, via="views.update"))
    return _view_body(ctx, stored)


def views_publish(ctx: MethodContext, args: Args) -> dict[str, Any]:
    ws = ctx.workspace
    user_id = args.string("user_id")
    if user_id not in ws.users:
        raise ApiError("invalid_arguments")
    definition = _checked_view(args, expected_type="home")
    now = ws.clock.now()
    stored = next((v for v in ws.views.values() if v.type == "home" and v.user_id == user_id), None)
    given_hash = args.string("hash")
    if stored is not None and given_hash is not None and given_hash != stored.hash:
        raise ApiError("hash_conflict")
    if stored is None:
        view_id = new_id("V")
        stored = StoredView(
            id=view_id,
            type="home",
            user_id=user_id,
            definition=definition,
            hash=_new_view_hash(ctx),
            external_id=definition.get("external_id"),
            root_view_id=view_id,
            opened_at=now,
        )
        ws.views[stored.id] = stored
    else:
        stored.definition = definition
        stored.hash = _new_view_hash(ctx)
    stored.history.append(ViewVersion(at=now, view=definition, via="views.publish"))
    return _view_body(ctx, stored)


# ---------------------------------------------------------------------- files


def files_get_upload_url_external(ctx: MethodContext, args: Args) -> dict[str, Any]:
    ws = ctx.workspace
    filename = args.string("filename", required_error="invalid_arguments")
    length = args.number("length", default=-1)
    if length < 0:
        raise ApiError("invalid_arguments")
    stored = StoredFile(
        id=new_id("F"),
        name=filename or "",
        declared_length=length,
        user=ws.bot_user.id,
        alt_txt=args.string("alt_txt"),
        snippet_type=args.string("snippet_type"),
    )
    ws.files[stored.id] = stored
    return {"upload_url": f"{ctx.base_url}/upload/v1/{stored.id}", "file_id": stored.id}


def files_complete_upload_external(ctx: MethodContext, args: Args) -> dict[str, Any]:
    ws = ctx.workspace
    entries = args.decoded("files")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) and "id" in e for e in entries):
        raise ApiError("invalid_arguments")
    files: list[StoredFile] = []
    for entry in entries:
        stored = ws.files.get(str(entry["id"]))
        # The method can be called only once per upload, and only after the bytes arrived.
        if stored is None or stored.content is None or stored.completed_at is not None:
            raise ApiError("file_not_found")
        files.append(stored)
    targets = [c for c in [args.string("channel_id"), *(args.string("channels") or "").split(",")] if c]
    channels = [ws.visible_channel(ref) for ref in targets]
    for channel in channels:
        _require_bot_membership(ws, channel)
    thread_ts = args.string("thread_ts")
    if thread_ts and len(channels) != 1:
        raise ApiError("invalid_arguments")
    root_ts = _thread_root_ts(ws, channels[0], thread_ts) if thread_ts else None
    initial_comment = _message_text(Args({"text": args.raw.get("initial_comment")})) or ""
    now = ws.clock.now()
    for stored, entry in zip(files, entries, strict=True):
        stored.title = entry.get("title") or stored.title or stored.name
        stored.completed_at = now
        stored.initial_comment = initial_comment or None
        stored.thread_ts = root_ts
    for channel in channels:
        message = ws.post(
            channel,
            user=ws.bot_user.id,
            text=initial_comment,
            thread_ts=root_ts,
            files=[f.id for f in files],
            as_bot=True,
            via="files.completeUploadExternal",
        )
        for stored in files:
            stored.channels.append(channel.id)
            stored.message_ts = message.ts
    return {"files": [f.to_api(ws.team) for f in files]}


Handler = Callable[[MethodContext, Args], dict[str, Any]]

METHODS: dict[str, Handler] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.getPermalink": chat_get_permalink,
    "conversations.replies": conversations_replies,
    "conversations.info": conversations_info,
    "users.info": users_info,
    "users.conversations": users_conversations,
    "usergroups.users.list": usergroups_users_list,
    "views.open": views_open,
    "views.update": views_update,
    "views.publish": views_publish,
    "files.getUploadURLExternal": files_get_upload_url_external,
    "files.completeUploadExternal": files_complete_upload_external,
}
