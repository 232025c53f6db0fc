"""Test-only servers on loopback: a reverse proxy in front of moto that can throttle, and a server that hangs.

``ThrottleProxy`` answers the first N requests with the error AWS itself sends when it throttles, in the
wire format of the protocol the request used, then forwards requests to moto unchanged. Executors pointed
at it see real throttling responses and parse them with the real botocore and aws CLI code.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType

import aiohttp
from aiohttp import web

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "expect",
}
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/(?P<service>[^/]+)/aws4_request")


@dataclass
class SeenRequest:
    method: str
    path: str
    service: str | None
    protocol: str
    rejected_with: str | None


@dataclass
class _Rule:
    failures: int = 0
    code: str | None = None
    status: int | None = None
    delay_seconds: float = 0.0


@dataclass
class ThrottleProxy:
    """A reverse proxy to ``target`` that rejects the first ``failures`` requests.

    ``code``/``status`` replace the protocol's usual throttling error (e.g. ``AccessDenied``, 403, to show
    an error that must not be retried); ``delay_seconds`` holds every request before forwarding it.
    """

    target: str
    failures: int = 0
    code: str | None = None
    status: int | None = None
    delay_seconds: float = 0.0
    seen: list[SeenRequest] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _client: aiohttp.ClientSession | None = None

    def configure(
        self, failures: int = 0, *, code: str | None = None, status: int | None = None, delay_seconds: float = 0.0
    ) -> None:
        self.failures, self.code, self.status, self.delay_seconds = failures, code, status, delay_seconds
        self.seen.clear()

    @property
    def rejected(self) -> int:
        return sum(1 for request in self.seen if request.rejected_with)

    async def __aenter__(self) -> ThrottleProxy:
        self._client = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        service = _service_of(request)
        protocol = _protocol_of(request, service)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.rejected < self.failures:
            response = self._error_response(protocol)
            self.seen.append(SeenRequest(request.method, request.path, service, protocol, self._code_for(protocol)))
            return response
        self.seen.append(SeenRequest(request.method, request.path, service, protocol, None))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        assert self._client is not None
        async with self._client.request(
            request.method, self.target + request.raw_path, headers=headers, data=body, allow_redirects=False
        ) as upstream:
            payload = await upstream.read()
            out_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP | {"date", "server"}
            }
            return web.Response(status=upstream.status, headers=out_headers, body=payload)

    def _code_for(self, protocol: str) -> str:
        return self.code or _DEFAULT_CODES[protocol]

    def _error_response(self, protocol: str) -> web.Response:
        code = self._code_for(protocol)
        status = self.status or _DEFAULT_STATUS[protocol]
        request_id = str(uuid.uuid4())
        message = "Rate exceeded" if self.code is None else f"{code} (from the test proxy)"
        if protocol == "ec2":
            body = (
                f"<?xml version='1.0' encoding='UTF-8'?>\n<Response><Errors><Error><Code>{code}</Code>"
                f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            )
            return web.Response(status=status, body=body, content_type="text/xml")
        if protocol == "s3":
            body = (
                f"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>{code}</Code><Message>{message}</Message>"
                f"<RequestId>{request_id}</RequestId></Error>"
            )
            return web.Response(status=status, body=body, content_type="application/xml")
        if protocol == "query":
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            )
            return web.Response(status=status, body=body, content_type="text/xml")
        # JSON protocols (awsJson and restJson) read the code from __type or the X-Amzn-ErrorType header.
        return web.Response(
            status=status,
            body=json.dumps({"__type": code, "message": message}),
            content_type="application/x-amz-json-1.0",
            headers={"X-Amzn-ErrorType": code, "X-Amzn-RequestId": request_id},
        )


_DEFAULT_CODES = {
    "ec2": "RequestLimitExceeded",
    "s3": "SlowDown",
    "query": "Throttling",
    "json": "ThrottlingException",
    "rest-json": "TooManyRequestsException",
}
_DEFAULT_STATUS = {"ec2": 503, "s3": 503, "query": 400, "json": 400, "rest-json": 429}


def _service_of(request: web.Request) -> str | None:
    match = _CREDENTIAL_SCOPE.search(request.headers.get("Authorization", ""))
    return match["service"] if match else None


def _protocol_of(request: web.Request, service: str | None) -> str:
    content_type = request.headers.get("Content-Type", "")
    if "X-Amz-Target" in request.headers or content_type.startswith("application/x-amz-json"):
        return "json"
    if service == "ec2":
        return "ec2"
    if service == "s3":
        return "s3"
    if content_type.startswith("application/x-www-form-urlencoded"):
        return "query"
    return "rest-json"


@dataclass
class HangingServer:
    """Accepts TCP connections and never answers. ``connected`` is set at the first connection."""

    url: str
    connected: asyncio.Event
    connections: int = 0


@asynccontextmanager
async def hanging_server() -> AsyncIterator[HangingServer]:
    writers: list[asyncio.StreamWriter] = []
    state = HangingServer(url="", connected=asyncio.Event())

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        state.connections += 1
        state.connected.set()
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        server.close()
        # Closing the connections releases any client still waiting, such as an abandoned boto3 call.
        for writer in writers:
            writer.close()
        await server.wait_closed()
