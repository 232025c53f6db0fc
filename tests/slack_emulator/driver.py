"""Sends requests into a Bolt app exactly as Slack does: signed, with Slack's content types and payloads.

Whatever a real user action would leave behind in Slack is recorded in the emulator first (the mention
message, the trigger id, the response URL), so the app's follow-up Web API calls find it there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import aiohttp
from pydantic import BaseModel, Field

from tests.slack_emulator.server import SlackEmulator
from tests.slack_emulator.state import Message, User
from tests.slack_emulator.workspace import Workspace

SLACK_USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
# Slack signs with the time of sending; receivers reject anything older than five minutes.
SIGNATURE_MAX_AGE_SECONDS = 5 * 60


class AppResponse(BaseModel):
    """What the app answered, and how long it took to answer."""

    status: int
    headers: dict[str, str]
    body: str
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class EventDelivery(BaseModel):
    response: AppResponse
    event_id: str
    envelope: dict[str, Any]
    message: Message | None = None


class Interaction(BaseModel):
    response: AppResponse
    payload: dict[str, Any]
    trigger_id: str | None = None
    response_url: str | None = None


class SignedBody(BaseModel):
    """A request body with the two headers Slack would send with it."""

    body: bytes
    content_type: str
    timestamp: str
    signature: str
    extra_headers: dict[str, str] = Field(default_factory=dict)


def _find_element(
    blocks: list[dict[str, Any]], action_id: str, block_id: str | None
) -> tuple[str, dict[str, Any]] | None:
    def walk(node: Any, owner_block_id: str) -> tuple[str, dict[str, Any]] | None:
        if isinstance(node, list):
            for item in node:
                found = walk(item, owner_block_id)
                if found:
                    return found
        elif isinstance(node, dict):
            if node.get("action_id") == action_id:
                return owner_block_id, node
            for key, child in node.items():
                if key != "text":
                    found = walk(child, owner_block_id)
                    if found:
                        return found
        return None

    for block in blocks:
        owner = str(block.get("block_id", ""))
        if block_id is not None and owner != block_id:
            continue
        found = walk(block, owner)
        if found:
            return found
    return None


class SlackDriver:
    """Drives a Bolt app's request URL the way Slack's servers do."""

    def __init__(
        self,
        app_url: str,
        signing_secret: str,
        emulator: SlackEmulator,
        *,
        path: str = "/slack/events",
        timeout_seconds: float = 10.0,
    ) -> None:
        base = app_url.rstrip("/")
        self.url = base if base.endswith(path) else base + path
        self.signing_secret = signing_secret
        self.emulator = emulator
        self.timeout_seconds = timeout_seconds
        # Slack still sends the deprecated verification token; Bolt ignores it.
        self.verification_token = "emulated-verification-token"
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SlackDriver:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ signing and sending

    def signature(self, body: bytes, timestamp: str) -> str:
        base = b"v0:" + timestamp.encode() + b":" + body
        return "v0=" + hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()

    def sign(self, body: bytes, content_type: str, *, timestamp: int | None = None) -> SignedBody:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        return SignedBody(body=body, content_type=content_type, timestamp=stamp, signature=self.signature(body, stamp))

    def sign_json(self, payload: dict[str, Any], *, timestamp: int | None = None) -> SignedBody:
        return self.sign(json.dumps(payload).encode(), "application/json", timestamp=timestamp)

    def sign_form(self, fields: dict[str, str], *, timestamp: int | None = None) -> SignedBody:
        return self.sign(urlencode(fields).encode(), "application/x-www-form-urlencoded", timestamp=timestamp)

    async def send(
        self,
        signed: SignedBody,
        *,
        body: bytes | None = None,
        omit_headers: tuple[str, ...] = (),
    ) -> AppResponse:
        """POST a signed body; `body` replaces what is sent (not what was signed), `omit_headers` drops headers."""
        headers = {
            "Content-Type": signed.content_type,
            "User-Agent": SLACK_USER_AGENT,
            "X-Slack-Request-Timestamp": signed.timestamp,
            "X-Slack-Signature": signed.signature,
            **signed.extra_headers,
        }
        for name in omit_headers:
            headers.pop(name, None)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_seconds))
        started = time.perf_counter()
        async with self._session.post(self.url, data=signed.body if body is None else body, headers=headers) as resp:
            text = await resp.text()
            elapsed = time.perf_counter() - started
            return AppResponse(status=resp.status, headers=dict(resp.headers), body=text, elapsed=elapsed)

    # ------------------------------------------------------------------ shared payload pieces

    @property
    def _ws(self) -> Workspace:
        return self.emulator.workspace

    def _user(self, user_id: str) -> User:
        return self._ws.user(user_id)

    def _user_object(self, user_id: str) -> dict[str, Any]:
        user = self._user(user_id)
        return {"id": user.id, "username": user.name, "name": user.name, "team_id": self._ws.team.id}

    def _team_object(self) -> dict[str, Any]:
        team = self._ws.team
        return {"id": team.id, "domain": team.domain}

    def _channel_object(self, channel_id: str) -> dict[str, Any]:
        channel = self._ws.channels[channel_id]
        return {"id": channel.id, "name": "directmessage" if channel.is_im else channel.name}

    def _action_ts(self) -> str:
        return f"{time.time():.6f}"

    # ------------------------------------------------------------------ Events API

    def event_envelope(self, event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        ws = self._ws
        return {
            "token": self.verification_token,
            "team_id": ws.team.id,
            "api_app_id": ws.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": ws.team.id,
                    "user_id": ws.bot_user.id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{secrets.token_urlsafe(24)}",
        }

    async def deliver(self, envelope: dict[str, Any], *, message: Message | None = None) -> EventDelivery:
        response = await self.send(self.sign_json(envelope))
        return EventDelivery(response=response, event_id=envelope["event_id"], envelope=envelope, message=message)

    async def redeliver(
        self, delivery: EventDelivery, *, retry_num: int = 1, reason: str = "http_timeout"
    ) -> AppResponse:
        """Slack's retry of an event it thinks was not acknowledged: same body and event_id, signed anew."""
        signed = self.sign_json(delivery.envelope)
        signed.extra_headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": reason}
        return await self.send(signed)

    def _mention_text(self, text: str) -> str:
        mention = f"<@{self._ws.bot_user.id}>"
        return text if mention in text else f"{mention} {text}"

    def mention_envelope(
        self, user: str, channel: str, text: str, *, thread_ts: str | None = None
    ) -> tuple[dict[str, Any], Message]:
        """Post the mention into the channel as the user, and build the app_mention event Slack would send."""
        message = self.emulator.post_as_user(user, channel, self._mention_text(text), thread_ts=thread_ts)
        event: dict[str, Any] = {
            "type": "app_mention",
            "user": user,
            "text": message.text,
            "ts": message.ts,
            "channel": channel,
            "event_ts": message.ts,
            "team": self._ws.team.id,
            "client_msg_id": secrets.token_hex(16),
        }
        if message.thread_ts:
            event["thread_ts"] = message.thread_ts
        return self.event_envelope(event), message

    async def app_mention(self, user: str, channel: str, text: str, *, thread_ts: str | None = None) -> EventDelivery:
        envelope, message = self.mention_envelope(user, channel, text, thread_ts=thread_ts)
        return await self.deliver(envelope, message=message)

    async def user_message(self, user: str, channel: str, text: str, *, thread_ts: str | None = None) -> EventDelivery:
        """A `message` event: a reply in a thread, or a direct message to the bot."""
        ws = self._ws
        message = self.emulator.post_as_user(user, channel, text, thread_ts=thread_ts)
        conversation = ws.channels[channel]
        channel_type = "im" if conversation.is_im else "group" if conversation.is_private else "channel"
        event: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": message.ts,
            "event_ts": message.ts,
            "channel_type": channel_type,
            "team": ws.team.id,
            "client_msg_id": secrets.token_hex(16),
        }
        if message.thread_ts:
            event["thread_ts"] = message.thread_ts
            event["parent_user_id"] = ws.messages[channel][message.thread_ts].user
        return await self.deliver(self.event_envelope(event), message=message)

    async def url_verification(self, challenge: str | None = None) -> AppResponse:
        payload = {
            "token": self.verification_token,
            "challenge": challenge or secrets.token_urlsafe(24),
            "type": "url_verification",
        }
        return await self.send(self.sign_json(payload))

    # ------------------------------------------------------------------ interactivity

    async def _interact(
        self, payload: dict[str, Any], *, trigger_id: str | None, response_url: str | None
    ) -> Interaction:
        response = await self.send(self.sign_form({"payload": json.dumps(payload)}))
        return Interaction(response=response, payload=payload, trigger_id=trigger_id, response_url=response_url)

    def _action(
        self,
        blocks: list[dict[str, Any]],
        action_id: str,
        block_id: str | None,
        value: str | None,
        selected_option: str | None,
    ) -> dict[str, Any]:
        found = _find_element(blocks, action_id, block_id)
        if found is None:
            raise LookupError(f"no element with action_id {action_id!r} in the message")
        owner_block_id, element = found
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": owner_block_id,
            "type": element.get("type"),
            "action_ts": self._action_ts(),
        }
        if element.get("type") == "button":
            action["text"] = element.get("text")
            chosen = value if value is not None else element.get("value")
            if chosen is not None:
                action["value"] = chosen
            if "style" in element:
                action["style"] = element["style"]
        elif "options" in element or element.get("type") in ("static_select", "overflow", "radio_buttons"):
            options = element.get("options", [])
            option = next((o for o in options if o.get("value") == selected_option), None)
            if option is None:
                raise LookupError(f"{action_id!r} has no option {selected_option!r}")
            action["selected_option"] = option
        elif value is not None:
            action["value"] = value
        return action

    async def block_action(
        self,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        *,
        block_id: str | None = None,
        value: str | None = None,
        selected_option: str | None = None,
        is_ephemeral: bool = False,
    ) -> Interaction:
        """A click on an element of a message as it now stands in the emulator."""
        ws = self._ws
        if is_ephemeral:
            ephemeral = ws.ephemeral(channel, message_ts)
            if ephemeral is None or ephemeral.user != user:
                raise LookupError(f"{user} sees no ephemeral message {message_ts} in {channel}")
            blocks = ephemeral.blocks or []
            message_body = None
        else:
            message = ws.message(channel, message_ts)
            blocks = message.blocks or []
            message_body = ws.message_to_api(message)
        action = self._action(blocks, action_id, block_id, value, selected_option)
        trigger_id = self.emulator.issue_trigger_id(user)
        response_url = self.emulator.mint_response_url(
            channel, user, original_ts=message_ts, original_is_ephemeral=is_ephemeral
        )
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user_object(user),
            "api_app_id": ws.app_id,
            "token": self.verification_token,
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": is_ephemeral,
            },
            "trigger_id": trigger_id,
            "team": self._team_object(),
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": self._channel_object(channel),
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [action],
        }
        if message_body is not None:
            payload["message"] = message_body
        return await self._interact(payload, trigger_id=trigger_id, response_url=response_url)

    async def view_submission(self, user: str, view_id: str, values: dict[str, Any] | None = None) -> Interaction:
        """Submit an open modal with `values` as its state ({block_id: {action_id: {...}}})."""
        ws = self._ws
        view = self.emulator.view(view_id)
        if view.closed_at is not None or view.type != "modal":
            raise LookupError(f"view {view_id} is not an open modal")
        view.state_values = values or {}
        trigger_id = self.emulator.issue_trigger_id(user)
        payload = {
            "type": "view_submission",
            "team": self._team_object(),
            "user": self._user_object(user),
            "api_app_id": ws.app_id,
            "token": self.verification_token,
            "trigger_id": trigger_id,
            "view": view.to_api(ws.team, ws.app_id, ws.bot_id),
            "response_urls": [],
            "enterprise": None,
            "is_enterprise_install": False,
        }
        interaction = await self._interact(payload, trigger_id=trigger_id, response_url=None)
        if interaction.response.status == 200:
            self.emulator.apply_view_submission_answer(view_id, interaction.response.json())
        return interaction

    async def view_closed(self, user: str, view_id: str, *, is_cleared: bool = False) -> Interaction:
        ws = self._ws
        view = self.emulator.view(view_id)
        payload = {
            "type": "view_closed",
            "team": self._team_object(),
            "user": self._user_object(user),
            "api_app_id": ws.app_id,
            "token": self.verification_token,
            "view": view.to_api(ws.team, ws.app_id, ws.bot_id),
            "is_cleared": is_cleared,
            "enterprise": None,
            "is_enterprise_install": False,
        }
        self.emulator.close_view(view_id)
        return await self._interact(payload, trigger_id=None, response_url=None)

    async def global_shortcut(self, user: str, callback_id: str) -> Interaction:
        ws = self._ws
        trigger_id = self.emulator.issue_trigger_id(user)
        payload = {
            "type": "shortcut",
            "token": self.verification_token,
            "action_ts": self._action_ts(),
            "team": self._team_object(),
            "user": self._user_object(user),
            "api_app_id": ws.app_id,
            "callback_id": callback_id,
            "trigger_id": trigger_id,
            "enterprise": None,
            "is_enterprise_install": False,
        }
        return await self._interact(payload, trigger_id=trigger_id, response_url=None)

    async def message_shortcut(self, user: str, channel: str, message_ts: str, callback_id: str) -> Interaction:
        ws = self._ws
        message = ws.message(channel, message_ts)
        trigger_id = self.emulator.issue_trigger_id(user)
        response_url = self.emulator.mint_response_url(channel, user, original_ts=message_ts)
        payload = {
            "type": "message_action",
            "token": self.verification_token,
            "action_ts": self._action_ts(),
            "team": self._team_object(),
            "user": self._user_object(user),
            "api_app_id": ws.app_id,
            "channel": self._channel_object(channel),
            "callback_id": callback_id,
            "trigger_id": trigger_id,
            "message_ts": message_ts,
            "message": ws.message_to_api(message),
            "response_url": response_url,
            "enterprise": None,
            "is_enterprise_install": False,
        }
        return await self._interact(payload, trigger_id=trigger_id, response_url=response_url)

    async def slash_command(self, user: str, channel: str, command: str, text: str = "") -> Interaction:
        ws = self._ws
        trigger_id = self.emulator.issue_trigger_id(user)
        response_url = self.emulator.mint_response_url(channel, user)
        conversation = ws.channels[channel]
        fields = {
            "token": self.verification_token,
            "team_id": ws.team.id,
            "team_domain": ws.team.domain,
            "channel_id": channel,
            "channel_name": "directmessage" if conversation.is_im else conversation.name,
            "user_id": user,
            "user_name": self._user(user).name,
            "command": command,
            "text": text,
            "api_app_id": ws.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        response = await self.send(self.sign_form(fields))
        return Interaction(response=response, payload=dict(fields), trigger_id=trigger_id, response_url=response_url)

    # ------------------------------------------------------------------ requests Slack would never send

    async def send_with_forged_signature(self, payload: dict[str, Any]) -> AppResponse:
        signed = self.sign_json(payload)
        signed.signature = "v0=" + hmac.new(b"not-the-secret", signed.body, hashlib.sha256).hexdigest()
        return await self.send(signed)

    async def send_without_signature_headers(
        self,
        payload: dict[str, Any],
        *,
        drop: tuple[str, ...] = ("X-Slack-Signature", "X-Slack-Request-Timestamp"),
    ) -> AppResponse:
        return await self.send(self.sign_json(payload), omit_headers=drop)

    async def send_with_stale_timestamp(
        self, payload: dict[str, Any], *, age_seconds: int = SIGNATURE_MAX_AGE_SECONDS + 60
    ) -> AppResponse:
        """Correctly signed, but with a timestamp older than receivers accept: a replayed request."""
        return await self.send(self.sign_json(payload, timestamp=int(time.time()) - age_seconds))

    async def send_with_altered_body(self, payload: dict[str, Any], altered: dict[str, Any]) -> AppResponse:
        """Signed for `payload`, but `altered` is what arrives: a body changed in transit."""
        return await self.send(self.sign_json(payload), body=json.dumps(altered).encode())
