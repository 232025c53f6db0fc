"""A local stand-in for an OpenAI-compatible chat-completions endpoint, on loopback with a random port.

Each test scripts the answers in order. The fake checks that requests look like the real protocol
(model, messages with roles, the bearer token) and that a scripted answer fits the request (a
structured answer needs ``response_format``, a tool call needs that tool declared); a request that does
not fit gets the 400 a real endpoint would give and is listed in ``protocol_errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

AnswerKind = Literal["structured", "tool_call", "content", "raw", "error", "unsupported_response_format", "hang"]
_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})


@dataclass(frozen=True)
class Answer:
    """One scripted answer. Build them with the functions below rather than by hand."""

    kind: AnswerKind
    content: str | None = None
    plan: dict[str, Any] | None = None
    reply: str | None = None
    tool_name: str = "propose_plan"
    status: int = 200
    body: str | None = None
    finish_reason: str = "stop"
    hang_seconds: float = 0.0


def structured(plan: dict[str, Any] | None = None, reply: str | None = None) -> Answer:
    """The json_schema answer: content is the JSON object ``{"reply": ..., "plan": ...}``."""
    return Answer(kind="structured", plan=plan, reply=reply)


def tool_call(plan: dict[str, Any], name: str = "propose_plan", content: str | None = None) -> Answer:
    return Answer(kind="tool_call", plan=plan, tool_name=name, content=content)


def content(text: str, finish_reason: str = "stop") -> Answer:
    """Plain assistant text: a clarifying question, or prose around a fenced plan."""
    return Answer(kind="content", content=text, finish_reason=finish_reason)


def raw(body: str, status: int = 200) -> Answer:
    """Exactly this body, for malformed answers."""
    return Answer(kind="raw", body=body, status=status)


def error(status: int, message: str) -> Answer:
    return Answer(kind="error", status=status, content=message)


def unsupported_response_format() -> Answer:
    """What an endpoint without structured output says when asked for it; other requests pass to the next answer."""
    return Answer(kind="unsupported_response_format")


def hang(seconds: float = 30.0) -> Answer:
    return Answer(kind="hang", hang_seconds=seconds)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    raw_body: str
    body: Any


@dataclass
class FakeLLM:
    """``async with FakeLLM(api_key=...) as llm``: ``llm.base_url`` ends in ``/v1`` like a real endpoint."""

    api_key: str | None = "sk-test-fake"
    model: str | None = None
    answers: list[Answer] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    protocol_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._closing = asyncio.Event()
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    def script(self, *answers: Answer) -> FakeLLM:
        self.answers.extend(answers)
        return self

    async def __aenter__(self) -> FakeLLM:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Releases hanging handlers so shutdown does not wait for them.
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        raw_body = await request.text()
        try:
            body: Any = json.loads(raw_body)
        except ValueError:
            body = None
        self.requests.append(RecordedRequest(request.method, request.path, dict(request.headers), raw_body, body))
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key", "invalid_request_error")
        problem = self._protocol_problem(request, body)
        if problem is not None:
            self.protocol_errors.append(problem)
            return _error(400, problem, None, "invalid_request_error")
        if not self.answers:
            self.protocol_errors.append("request without a scripted answer")
            return _error(500, "the fake has no scripted answer left", None, "server_error")
        answer = self.answers.pop(0)
        return await self._answer(answer, body)

    def _protocol_problem(self, request: web.Request, body: Any) -> str | None:
        if not request.content_type.startswith("application/json"):
            return f"Content-Type must be application/json, not {request.content_type}"
        if not isinstance(body, dict):
            return "body must be a JSON object"
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "you must provide a model parameter"
        if self.model is not None and body["model"] != self.model:
            return f"model {body['model']!r} does not exist"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages must be a non-empty array"
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in _ROLES:
                return f"messages[{index}].role must be one of {sorted(_ROLES)}"
            if not isinstance(message.get("content"), str):
                return f"messages[{index}].content must be a string"
        return None

    async def _answer(self, answer: Answer, body: dict[str, Any]) -> web.Response:
        if answer.kind == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), answer.hang_seconds)
            return _error(504, "the fake hung on purpose", None, "server_error")
        if answer.kind == "unsupported_response_format":
            if "response_format" in body:
                return _error(
                    400,
                    "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.",
                    None,
                    "invalid_request_error",
                    param="response_format",
                )
            # The client already dropped response_format: this answer has done its job; use the next one.
            if not self.answers:
                return _error(500, "the fake has no scripted answer left", None, "server_error")
            return await self._answer(self.answers.pop(0), body)
        if answer.kind == "raw":
            return web.Response(status=answer.status, text=answer.body or "", content_type="application/json")
        if answer.kind == "error":
            kind = "server_error" if answer.status >= 500 else "invalid_request_error"
            return _error(answer.status, answer.content or "", None, kind)
        if answer.kind == "structured":
            response_format = body.get("response_format")
            if not _is_json_schema_format(response_format):
                problem = "a structured answer was scripted but the request has no json_schema response_format"
                self.protocol_errors.append(problem)
                return _error(400, problem, None, "invalid_request_error")
            text = json.dumps({"reply": answer.reply, "plan": answer.plan})
            return self._completion(body, {"role": "assistant", "content": text, "refusal": None}, "stop")
        if answer.kind == "tool_call":
            declared = {
                tool.get("function", {}).get("name")
                for tool in body.get("tools") or []
                if isinstance(tool, dict) and tool.get("type") == "function"
            }
            # A misbehaving model may call a name it was not given, but never call a tool with none declared.
            if not declared:
                problem = "a tool call was scripted but the request declares no tools"
                self.protocol_errors.append(problem)
                return _error(400, problem, None, "invalid_request_error")
            call = {
                "id": f"call_{next(self._ids)}",
                "type": "function",
                "function": {"name": answer.tool_name, "arguments": json.dumps(answer.plan)},
            }
            message = {"role": "assistant", "content": answer.content, "tool_calls": [call], "refusal": None}
            return self._completion(body, message, "tool_calls")
        message = {"role": "assistant", "content": answer.content, "refusal": None}
        return self._completion(body, message, answer.finish_reason)

    def _completion(self, body: dict[str, Any], message: dict[str, Any], finish_reason: str) -> web.Response:
        prompt_tokens = sum(len(m["content"]) for m in body["messages"]) // 4
        completion_tokens = len(json.dumps(message)) // 4
        return web.json_response(
            {
                "id": f"chatcmpl-fake{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )


def _is_json_schema_format(response_format: Any) -> bool:
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return False
    json_schema = response_format.get("json_schema")
    return (
        isinstance(json_schema, dict)
        and isinstance(json_schema.get("name"), str)
        and isinstance(json_schema.get("schema"), dict)
    )


def _error(status: int, message: str, code: str | None, kind: str, param: str | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "param": param, "code": code}}, status=status)
