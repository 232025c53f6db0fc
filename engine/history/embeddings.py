"""Dense embeddings from an OpenAI-compatible ``/v1/embeddings`` endpoint (optional).

Only used when ``CLOUDOPS_EMBEDDINGS_URL`` is set. The store treats a failing endpoint as a degraded search,
never as a reason to lose an audit record: writes go ahead with the lexical vector alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from engine.errors import CloudOpsError

if TYPE_CHECKING:
    import aiohttp


class EmbeddingsError(CloudOpsError):
    """The embeddings endpoint could not be reached or answered something unusable."""


class _Item(BaseModel):
    index: int
    embedding: list[float]


class _Response(BaseModel):
    data: list[_Item]


class EmbeddingsClient:
    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        timeout_seconds: float = 15.0,
    ) -> None:
        # aiohttp is imported here, not with the module: the stores import this module whether or not
        # embeddings are configured, and most runs never make a client.
        import aiohttp

        base = url.rstrip("/")
        self.url = base if base.endswith("/embeddings") else base + "/embeddings"
        self.model = model
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        body: dict[str, object] = {"input": texts}
        if self.model:
            body["model"] = self.model
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        import aiohttp

        try:
            async with self._client().post(self.url, json=body, headers=headers) as response:
                if response.status != 200:
                    detail = (await response.text())[:200]
                    raise EmbeddingsError(f"embeddings endpoint {self.url} answered {response.status}: {detail}")
                parsed = _Response.model_validate(await response.json(content_type=None))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise EmbeddingsError(f"embeddings endpoint {self.url} unreachable: {exc or type(exc).__name__}") from exc
        except (ValidationError, ValueError) as exc:
            raise EmbeddingsError(f"embeddings endpoint {self.url} answered something unusable: {exc}") from exc
        vectors = [item.embedding for item in sorted(parsed.data, key=lambda item: item.index)]
        if len(vectors) != len(texts) or not all(vectors) or len({len(v) for v in vectors}) != 1:
            raise EmbeddingsError(f"embeddings endpoint {self.url} returned {len(vectors)} vectors for {len(texts)}")
        return vectors

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            import aiohttp

            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
