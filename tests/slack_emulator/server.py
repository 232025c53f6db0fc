"""An emulated Slack Web API on 127.0.0.1, for end-to-end tests of a Bolt app.

Point the app's client at it with `AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)`.
Tests share the process with the emulator, so they inspect its state directly through the methods below.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import secrets
import socket
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from tests.slack_emulator.blocks import MESSAGE_TEXT_MAX, block_errors, view_errors
from tests.slack_emulator.limits import RateLimitConfig, RateLimiter, RateLimitHit, Violation
from tests.slack_emulator.methods import METHODS, Args, MethodContext
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
    User,
    UserGroup,
    ViewVersion,
    new_id,
)
from tests.slack_emulator.workspace import ApiError, Workspace

T = TypeVar("T")

DEFAULT_BOT_TOKEN = "xoxb-1000000001-2000000002-emulatedbottoken"


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


async def _read_args(request: web.Request) -> dict[str, Any]:
    """Query string merged with a JSON or form body, as Slack accepts either."""
    args: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.body_exists:
        return args
    if request.content_type == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("a JSON body must be an object")
        args.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        args.update({key: value for key, value in form.items() if isinstance(value, str)})
    return args


class Seed:
    """Ids in the workspace a fresh emulator starts with."""

    ADMIN = "U0ADMIN001"  # workspace admin and owner
    ALICE = "U0ALICE001"
    BOB = "U0BOB00001"
    GENERAL = "C0GENERAL1"  # public: admin, alice, bob and the bot
    OPS = "G0OPSPRIV1"  # private: admin, alice and the bot
    RANDOM = "C0RANDOM01"  # public: admin and bob, without the bot
    APPROVERS = "S0APPROVE1"  # user group: admin and alice


class SlackEmulator:
    """One emulated workspace behind a real HTTP server.

    A fresh emulator holds the workspace described by `Seed` (pass `seed=False` for an empty one);
    add more with `add_user`, `add_channel` and `add_usergroup`.
    """

    def __init__(
        self,
        *,
        bot_token: str = DEFAULT_BOT_TOKEN,
        rate_limits: RateLimitConfig | None = None,
        trigger_ttl_seconds: float = 3.0,
        response_url_max_uses: int = 5,
        response_url_ttl_seconds: float = 30 * 60,
        seed: bool = True,
    ) -> None:
        self.bot_token = bot_token
        self.clock = Clock()
        self.workspace = Workspace(self.clock)
        self.limits = RateLimiter(self.clock, rate_limits)
        self.trigger_ttl_seconds = trigger_ttl_seconds
        self.response_url_max_uses = response_url_max_uses
        self.response_url_ttl_seconds = response_url_ttl_seconds
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        if seed:
            self._seed()

    def _seed(self) -> None:
        ws = self.workspace
        ws.add_user("admin", user_id=Seed.ADMIN, real_name="Ada Admin", is_admin=True, is_owner=True)
        ws.add_user("alice", user_id=Seed.ALICE, real_name="Alice Approver")
        ws.add_user("bob", user_id=Seed.BOB, real_name="Bob Builder")
        ws.add_channel("general", channel_id=Seed.GENERAL, members=[Seed.ADMIN, Seed.ALICE, Seed.BOB])
        ws.add_channel("ops", channel_id=Seed.OPS, is_private=True, members=[Seed.ADMIN, Seed.ALICE])
        ws.add_channel("random", channel_id=Seed.RANDOM, members=[Seed.ADMIN, Seed.BOB], bot_is_member=False)
        ws.add_usergroup("approvers", [Seed.ADMIN, Seed.ALICE], name="Approvers", group_id=Seed.APPROVERS)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application(client_max_size=64 * 1024 * 1024)  # uploads of whole command outputs
        app.add_routes(
            [
                web.route("*", "/api/{method}", self._handle_api),
                web.post("/upload/v1/{file_id}", self._handle_upload),
                web.post("/response/{response_url_id}", self._handle_response_url),
            ]
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackEmulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the emulator is not running")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """The base_url for slack_sdk clients."""
        return f"{self.url}/api/"

    # ------------------------------------------------------------------ workspace set-up

    @property
    def team_id(self) -> str:
        return self.workspace.team.id

    @property
    def bot_user_id(self) -> str:
        return self.workspace.bot_user.id

    def add_user(self, name: str, **options: Any) -> User:
        return self.workspace.add_user(name, **options)

    def add_channel(self, name: str, **options: Any) -> Channel:
        return self.workspace.add_channel(name, **options)

    def add_usergroup(self, handle: str, members: list[str], **options: Any) -> UserGroup:
        return self.workspace.add_usergroup(handle, members, **options)

    def open_dm(self, user_id: str) -> Channel:
        return self.workspace.open_dm(user_id)

    def user_id(self, name: str) -> str:
        for user in self.workspace.users.values():
            if user.name == name:
                return user.id
        raise KeyError(name)

    def channel_id(self, name: str) -> str:
        for channel in self.workspace.channels.values():
            if channel.name == name and not channel.is_im:
                return channel.id
        raise KeyError(name)

    # ------------------------------------------------------------------ what the driver needs

    def post_as_user(self, user_id: str, channel_id: str, text: str, *, thread_ts: str | None = None) -> Message:
        """A message typed by a person, so it is in the channel before Slack tells the app about it."""
        ws = self.workspace
        channel = ws.channels[channel_id]
        if user_id not in channel.members:
            raise ValueError(f"{user_id} is not in {channel_id}")
        return ws.post(channel, user=user_id, text=text, thread_ts=thread_ts, as_bot=False, via="user")

    def issue_trigger_id(self, user_id: str) -> str:
        return self.workspace.issue_trigger(user_id).trigger_id

    def mint_response_url(
        self,
        channel_id: str,
        user_id: str,
        *,
        original_ts: str | None = None,
        original_is_ephemeral: bool = False,
    ) -> str:
        record = ResponseUrl(
            id=secrets.token_urlsafe(16),
            channel=channel_id,
            user=user_id,
            original_ts=original_ts,
            original_is_ephemeral=original_is_ephemeral,
            issued_at=self.clock.now(),
        )
        self.workspace.response_urls[record.id] = record
        return f"{self.url}/response/{record.id}"

    def close_view(self, view_id: str) -> None:
        view = self.view(view_id)
        if view.closed_at is None:
            view.closed_at = self.clock.now()

    def apply_view_submission_answer(self, view_id: str, answer: Any) -> None:
        """Do what Slack does with the app's answer to a view_submission.

        No response_action closes the modal; "errors" keeps it open showing the errors; "update"
        replaces it; "push" stacks a new one on top; "clear" closes the whole stack. An invalid view in
        the answer is the app's bug, so it raises rather than being silently ignored.
        """
        ws = self.workspace
        view = self.view(view_id)
        now = self.clock.now()
        action = answer.get("response_action") if isinstance(answer, dict) else None
        if action is None:
            self.close_view(view_id)
        elif action == "errors":
            view.submission_errors = dict(answer.get("errors") or {})
        elif action in ("update", "push"):
            definition = answer.get("view")
            errors = view_errors(definition, expected_type="modal")
            if errors:
                raise ValueError(f"the app answered {action!r} with an invalid view: {errors}")
            if action == "update":
                view.definition = definition
                view.hash = f"{int(now)}.{secrets.token_hex(4)}"
                view.submission_errors = {}
                view.history.append(ViewVersion(at=now, view=definition, via="response_action:update"))
            else:
                pushed_id = new_id("V")
                ws.views[pushed_id] = StoredView(
                    id=pushed_id,
                    type="modal",
                    user_id=view.user_id,
                    definition=definition,
                    hash=f"{int(now)}.{secrets.token_hex(4)}",
                    root_view_id=view.root_view_id,
                    previous_view_id=view.id,
                    opened_at=now,
                    history=[ViewVersion(at=now, view=definition, via="response_action:push")],
                )
        elif action == "clear":
            for other in ws.views.values():
                if other.root_view_id == view.root_view_id and other.closed_at is None:
                    other.closed_at = now
        else:
            raise ValueError(f"unknown response_action {action!r}")

    # ------------------------------------------------------------------ inspection

    def channel_messages(self, channel_id: str) -> list[Message]:
        """What the channel shows: top-level messages and replies also sent to the channel."""
        return sorted(
            (
                m
                for m in self.workspace.messages.get(channel_id, {}).values()
                if m.deleted_at is None and (not m.is_reply or m.reply_broadcast)
            ),
            key=lambda m: m.ts,
        )

    def thread(self, channel_id: str, ts: str) -> list[Message]:
        root = self.workspace.thread_root(channel_id, ts)
        return [root, *self.workspace.replies(channel_id, root.ts)]

    def message(self, channel_id: str, ts: str) -> Message:
        """A message by its ts, including one deleted through a response URL."""
        return self.workspace.messages[channel_id][ts]

    def edit_history(self, channel_id: str, ts: str) -> list[MessageVersion]:
        """The original post followed by every edit, each with the time it happened."""
        return list(self.message(channel_id, ts).versions)

    def ephemerals(self, *, user: str | None = None, channel: str | None = None) -> list[Ephemeral]:
        return [
            e
            for e in self.workspace.ephemerals
            if (user is None or e.user == user) and (channel is None or e.channel == channel)
        ]

    def files(self) -> list[StoredFile]:
        return list(self.workspace.files.values())

    def views(self, *, user: str | None = None) -> list[StoredView]:
        return [v for v in self.workspace.views.values() if user is None or v.user_id == user]

    def view(self, view_id: str) -> StoredView:
        return self.workspace.views[view_id]

    def calls(self, method: str | None = None) -> list[ApiCall]:
        return [c for c in self.workspace.calls if method is None or c.method == method]

    def response_url_posts(self) -> list[ResponseUrlPost]:
        return list(self.workspace.response_url_posts)

    def rate_limited(self, method: str | None = None) -> list[RateLimitHit]:
        return [h for h in self.limits.hits if method is None or h.method == method]

    def count_429(self, method: str | None = None) -> int:
        return len(self.rate_limited(method))

    def violations(self, method: str | None = None) -> list[Violation]:
        """Calls that arrived while a Retry-After for their method was still in force."""
        return [v for v in self.limits.violations if method is None or v.method == method]

    async def wait_for(
        self,
        predicate: Callable[[], T | None] | Callable[[], Awaitable[T | None]],
        *,
        timeout: float = 5.0,
        interval: float = 0.02,
        what: str = "condition",
    ) -> T:
        """Poll until `predicate` returns something truthy, for work a Bolt app does after it acks."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result  # type: ignore[return-value]
            if loop.time() >= deadline:
                raise TimeoutError(f"{what} not met within {timeout}s")
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------ HTTP

    def _log(self, call: ApiCall) -> None:
        self.workspace.calls.append(call)

    def _rate_limit_channel(self, method: str, args: dict[str, Any]) -> str | None:
        if method != "chat.postMessage":
            return None
        ref = args.get("channel")
        try:
            return self.workspace.resolve_channel(str(ref) if ref is not None else None).id
        except ApiError:
            return str(ref)

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        at = self.clock.now()
        try:
            args = await _read_args(request)
        except ValueError:
            return self._api_answer(method, at, {}, {"ok": False, "error": "invalid_json"})
        token = _bearer(request) or args.get("token")
        args.pop("token", None)
        handler = METHODS.get(method)
        if handler is None:
            return self._api_answer(method, at, args, {"ok": False, "error": "unknown_method", "req_method": method})
        if not token:
            return self._api_answer(method, at, args, {"ok": False, "error": "not_authed"})
        if token != self.bot_token:
            return self._api_answer(method, at, args, {"ok": False, "error": "invalid_auth"})

        admission = self.limits.admit(
            token=token, method=method, args=args, channel=self._rate_limit_channel(method, args)
        )
        if not admission.allowed:
            return self._api_answer(
                method, at, args, {"ok": False, "error": "ratelimited"}, status=429, retry_after=admission.retry_after
            )

        context = MethodContext(self.workspace, self.url, self.trigger_ttl_seconds)
        try:
            body = {"ok": True, **handler(context, Args(args))}
        except ApiError as exc:
            body = {"ok": False, "error": exc.error, **exc.extra}
        return self._api_answer(method, at, args, body)

    def _api_answer(
        self,
        method: str,
        at: float,
        args: dict[str, Any],
        body: dict[str, Any],
        *,
        status: int = 200,
        retry_after: int | None = None,
    ) -> web.Response:
        self._log(
            ApiCall(
                kind="api",
                method=method,
                at=at,
                args=args,
                http_status=status,
                ok=body.get("ok"),
                error=body.get("error"),
                retry_after=retry_after,
            )
        )
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return web.json_response(body, status=status, headers=headers)

    async def _handle_upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        at = self.clock.now()
        if request.content_type == "multipart/form-data":
            form = await request.post()
            uploaded = next((v for v in form.values() if isinstance(v, web.FileField)), None)
            content = uploaded.file.read() if uploaded is not None else b""
        else:
            content = await request.read()
        stored = self.workspace.files.get(file_id)
        if stored is None or stored.completed_at is not None:
            status, text = 404, "file_not_found"
        else:
            stored.content = content
            stored.uploaded_at = at
            status, text = 200, f"OK - {len(content)}"
        self._log(
            ApiCall(
                kind="upload",
                method="files.upload",
                at=at,
                args={"file_id": file_id, "bytes": len(content)},
                http_status=status,
                ok=status == 200,
                error=None if status == 200 else text,
            )
        )
        return web.Response(status=status, text=text, content_type="text/plain")

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        response_url_id = request.match_info["response_url_id"]
        at = self.clock.now()
        try:
            if request.content_type == "application/json":
                payload = await request.json()
            else:
                payload = json.loads(str((await request.post()).get("payload", "")))
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            status, outcome = 400, "invalid_payload"
            payload = {}
        else:
            status, outcome = self._respond(response_url_id, payload)
        self.workspace.response_url_posts.append(
            ResponseUrlPost(at=at, response_url_id=response_url_id, payload=payload, outcome=outcome)
        )
        ok = status == 200
        self._log(
            ApiCall(
                kind="response_url",
                method="response_url",
                at=at,
                args=payload,
                http_status=status,
                ok=ok,
                error=None if ok else outcome,
            )
        )
        body = {"ok": True} if ok else {"ok": False, "error": outcome}
        return web.json_response(body, status=status)

    def _respond(self, response_url_id: str, payload: dict[str, Any]) -> tuple[int, str]:
        """Apply a response_url post the way Slack does; returns the HTTP status and what happened."""
        ws = self.workspace
        record = ws.response_urls.get(response_url_id)
        now = self.clock.now()
        if record is None:
            return 404, "invalid_url"
        if now - record.issued_at > self.response_url_ttl_seconds:
            return 404, "expired_url"
        if len(record.uses) >= self.response_url_max_uses:
            return 404, "used_url"
        record.uses.append(now)

        text = payload.get("text")
        text = None if text is None else str(text)
        blocks = payload.get("blocks")
        if blocks is not None and (not isinstance(blocks, list) or block_errors(blocks)):
            return 400, "invalid_blocks"
        if text is not None and len(text) > MESSAGE_TEXT_MAX:
            return 400, "msg_too_long"
        channel = ws.channels[record.channel]

        if payload.get("delete_original"):
            return self._delete_original(record, now)
        if payload.get("replace_original") and record.original_ts is not None:
            return self._replace_original(record, text, blocks, now)
        if not text and not blocks:
            return 400, "no_text"
        if payload.get("response_type") == "in_channel":
            thread_ts = payload.get("thread_ts")
            try:
                root_ts = ws.thread_root(channel.id, str(thread_ts)).ts if thread_ts else None
            except ApiError:
                return 400, "thread_not_found"
            ws.post(
                channel,
                user=ws.bot_user.id,
                text=text or "",
                blocks=blocks,
                thread_ts=root_ts,
                as_bot=True,
                via="response_url",
            )
            return 200, "posted_in_channel"
        ws.post_ephemeral(
            channel,
            user=record.user,
            text=text or "",
            blocks=blocks,
            thread_ts=payload.get("thread_ts"),
            via="response_url",
        )
        return 200, "posted_ephemeral"

    def _delete_original(self, record: ResponseUrl, now: float) -> tuple[int, str]:
        ws = self.workspace
        if record.original_ts is None:
            return 404, "message_not_found"
        if record.original_is_ephemeral:
            ephemeral = ws.ephemeral(record.channel, record.original_ts)
            if ephemeral is None:
                return 404, "message_not_found"
            ephemeral.deleted_at = now
            return 200, "deleted_original"
        try:
            message = ws.message(record.channel, record.original_ts)
        except ApiError:
            return 404, "message_not_found"
        message.deleted_at = now
        return 200, "deleted_original"

    def _replace_original(
        self, record: ResponseUrl, text: str | None, blocks: list[dict[str, Any]] | None, now: float
    ) -> tuple[int, str]:
        ws = self.workspace
        # A replacement is a whole new message body: blocks that are not resent disappear.
        if record.original_is_ephemeral:
            ephemeral = ws.ephemeral(record.channel, record.original_ts or "")
            if ephemeral is None:
                return 404, "message_not_found"
            ephemeral.text = text or ""
            ephemeral.blocks = blocks
            ephemeral.versions.append(MessageVersion(at=now, text=ephemeral.text, blocks=blocks, via="response_url"))
            return 200, "replaced_original"
        try:
            message = ws.message(record.channel, record.original_ts)
        except ApiError:
            return 404, "message_not_found"
        ws.edit(message, text=text or "", blocks=blocks if blocks is not None else [], via="response_url")
        return 200, "replaced_original"
