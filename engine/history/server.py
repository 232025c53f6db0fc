"""The shared history store: a Qdrant server through qdrant-client's ``AsyncQdrantClient``.

Several bot processes can use one server at once: record transitions and chain appends are
compare-and-set writes that Qdrant applies one at a time per shard. Collections and payload indexes are
created on first start (idempotently, so two processes starting together are fine). The layout is the
Edge backend's (``engine.history.layout``).

qdrant-client's local mode (``AsyncQdrantClient(path=...)`` or ``location=":memory:"``) can stand in for a
server in tests; it ignores payload indexes and scans, so it is not a store to ship.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Literal, TypeVar

from qdrant_client import AsyncQdrantClient, models

from engine.errors import StoreError
from engine.history.conditions import Condition, Match, MatchAny, Range
from engine.history.embeddings import EmbeddingsClient, EmbeddingsError
from engine.history.layout import (
    AUDIT_INDEXES,
    DENSE,
    ENTRY_SEQ,
    LEXICAL,
    RECORD_INDEXES,
    IndexKind,
    PointToWrite,
    StoredPoint,
    audit_name,
    records_name,
)
from engine.history.lexical import SparseVector
from engine.history.qdrant_store import RRF_K, QdrantHistoryStore

T = TypeVar("T")
log = logging.getLogger(__name__)

_PLACEHOLDER_VECTOR = "none"
_SCHEMA = {
    IndexKind.KEYWORD: models.PayloadSchemaType.KEYWORD,
    IndexKind.FLOAT: models.PayloadSchemaType.FLOAT,
    IndexKind.INTEGER: models.PayloadSchemaType.INTEGER,
}


class ServerHistoryStore(QdrantHistoryStore):
    def __init__(
        self,
        *,
        url: str | None = None,
        api_key: str | None = None,
        client: AsyncQdrantClient | None = None,
        prefix: str = "cloudops",
        embeddings: EmbeddingsClient | None = None,
        timeout_seconds: int = 10,
    ) -> None:
        super().__init__(embeddings=embeddings)
        if (client is None) == (url is None):
            raise ValueError("give exactly one of `url` or `client`")
        self._owns_client = client is None
        # The client's own compatibility check runs a blocking request on a thread of its own; the version
        # is checked here instead, on the first (async) round trip.
        self.client = client or AsyncQdrantClient(
            url=url, api_key=api_key, timeout=timeout_seconds, check_compatibility=False
        )
        self._where = url or "a Qdrant client"
        self.records_collection = records_name(prefix)
        self.audit_collection = audit_name(prefix)
        self._ready = False
        self._ready_lock = asyncio.Lock()

    @property
    def description(self) -> str:
        return f"{self._where} (collections {self.records_collection}, {self.audit_collection})"

    async def open(self) -> ServerHistoryStore:
        """Create the collections and indexes if missing; raises ``StoreError`` if the server is unusable."""
        await self._ensure_ready()
        return self

    async def _ensure_ready(self) -> None:
        if self._ready:
            return
        async with self._ready_lock:
            if self._ready:
                return
            await self._guard("create collections", self._create_collections())
            self._ready = True

    async def _create_collections(self) -> None:
        if self._owns_client:
            _warn_if_incompatible((await self.client.info()).version)
        for name, sparse, indexes in (
            (
                self.records_collection,
                {LEXICAL: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                RECORD_INDEXES,
            ),
            (self.audit_collection, {_PLACEHOLDER_VECTOR: models.SparseVectorParams()}, AUDIT_INDEXES),
        ):
            if not await self.client.collection_exists(name):
                try:
                    await self.client.create_collection(name, vectors_config={}, sparse_vectors_config=sparse)
                except Exception:
                    # Another process may have created it between the check and the create.
                    if not await self.client.collection_exists(name):
                        raise
            info = await self.client.get_collection(name)
            for field, kind in indexes.items():
                if field not in (info.payload_schema or {}):
                    await self.client.create_payload_index(name, field, _SCHEMA[kind], wait=True)

    async def _guard(self, what: str, operation: Awaitable[T]) -> T:
        try:
            return await operation
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"history store {self.description}: {what} failed: {_one_line(exc)}") from exc

    async def _do(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        self._check_open()
        await self._ensure_ready()
        return await self._guard(what, operation())

    # -- primitives ----------------------------------------------------------------------------------------

    async def _retrieve_record(self, point_id: str, *, with_vectors: bool) -> StoredPoint | None:
        found = await self._do(
            "read",
            lambda: self.client.retrieve(
                self.records_collection, [point_id], with_payload=True, with_vectors=with_vectors
            ),
        )
        return _stored(found[0]) if found else None

    async def _write_record(self, point: PointToWrite, *, condition: list[Condition] | None, insert_only: bool) -> None:
        await self._do(
            "write",
            lambda: self.client.upsert(
                self.records_collection,
                [_point_struct(point)],
                wait=True,
                update_filter=_filter(condition) if condition else None,
                update_mode=models.UpdateMode.INSERT_ONLY if insert_only else None,
            ),
        )

    async def _scroll_records_ordered(
        self,
        conditions: list[Condition],
        *,
        key: str,
        descending: bool,
        limit: int,
        start_from: float | int | None,
    ) -> list[StoredPoint]:
        order = models.OrderBy(
            key=key,
            direction=models.Direction.DESC if descending else models.Direction.ASC,
            start_from=start_from,
        )
        points, _ = await self._do(
            "scroll",
            lambda: self.client.scroll(
                self.records_collection,
                scroll_filter=_filter(conditions),
                limit=limit,
                order_by=order,
                with_payload=True,
                with_vectors=False,
            ),
        )
        return [_stored(p) for p in points]

    async def _scroll_page(
        self, collection: Literal["records", "audit"], offset: str | None, limit: int
    ) -> tuple[list[StoredPoint], str | None]:
        name = self.records_collection if collection == "records" else self.audit_collection
        points, next_offset = await self._do(
            "scan", lambda: self.client.scroll(name, limit=limit, offset=offset, with_payload=True, with_vectors=False)
        )
        return [_stored(p) for p in points], None if next_offset is None else str(next_offset)

    async def _count_records(self, conditions: list[Condition]) -> int:
        result = await self._do(
            "count", lambda: self.client.count(self.records_collection, count_filter=_filter(conditions), exact=True)
        )
        return result.count

    async def _query_records(
        self,
        *,
        lexical: SparseVector | None,
        dense: list[float] | None,
        conditions: list[Condition],
        limit: int,
    ) -> list[StoredPoint]:
        flt = _filter(conditions)
        searches: list[tuple[Any, str]] = []
        if lexical is not None:
            searches.append((models.SparseVector(indices=lexical.indices, values=lexical.values), LEXICAL))
        if dense is not None:
            searches.append((dense, DENSE))
        if len(searches) == 1:
            query, using = searches[0]
            call = partial(
                self.client.query_points,
                self.records_collection,
                query=query,
                using=using,
                query_filter=flt,
                limit=limit,
                with_payload=True,
            )
        else:
            depth = max(limit * 4, 50)
            call = partial(
                self.client.query_points,
                self.records_collection,
                prefetch=[models.Prefetch(query=q, using=u, filter=flt, limit=depth) for q, u in searches],
                query=models.RrfQuery(rrf=models.Rrf(k=RRF_K)),
                query_filter=flt,
                limit=limit,
                with_payload=True,
            )
        response = await self._do("search", call)
        return [_stored(p) for p in response.points]

    async def _ensure_dense_vector(self, size: int) -> int:
        existing = await self._dense_size_in_collection()
        if existing is None:
            config = models.DenseVectorNameConfig(
                dense=models.DenseVectorConfig(size=size, distance=models.Distance.COSINE)
            )
            try:
                await self._do(
                    "add dense vector", lambda: self.client.create_vector_name(self.records_collection, DENSE, config)
                )
            except StoreError:
                # A concurrent process may have added it first; what matters is the size it has now.
                existing = await self._dense_size_in_collection()
                if existing is None:
                    raise
            else:
                existing = size
        if existing != size:
            raise EmbeddingsError(f"the store's dense vectors have {existing} dimensions, the endpoint gives {size}")
        return existing

    async def _dense_size_in_collection(self) -> int | None:
        info = await self._do("read collection", lambda: self.client.get_collection(self.records_collection))
        vectors = info.config.params.vectors
        if isinstance(vectors, dict) and DENSE in vectors:
            return vectors[DENSE].size
        return None

    async def _last_entry(self) -> StoredPoint | None:
        points, _ = await self._do(
            "read chain head",
            lambda: self.client.scroll(
                self.audit_collection,
                limit=1,
                order_by=models.OrderBy(key=ENTRY_SEQ, direction=models.Direction.DESC),
                with_payload=True,
                with_vectors=False,
            ),
        )
        return _stored(points[0]) if points else None

    async def _insert_entry(self, point: PointToWrite) -> None:
        await self._do(
            "append audit entry",
            lambda: self.client.upsert(
                self.audit_collection,
                [models.PointStruct(id=point.id, vector={}, payload=point.payload)],
                wait=True,
                update_mode=models.UpdateMode.INSERT_ONLY,
            ),
        )

    async def _retrieve_entry(self, point_id: str) -> StoredPoint | None:
        found = await self._do(
            "read audit entry",
            lambda: self.client.retrieve(self.audit_collection, [point_id], with_payload=True, with_vectors=False),
        )
        return _stored(found[0]) if found else None

    async def _make_durable(self) -> None:
        # Writes use wait=True: the server has applied them to its write-ahead log when they return.
        return None

    async def _close_backend(self) -> None:
        if self._owns_client:
            await self._guard("close", self.client.close())


def _warn_if_incompatible(server_version: str) -> None:
    client_version = importlib.metadata.version("qdrant-client")
    try:
        server = [int(part) for part in server_version.split(".")[:2]]
        client = [int(part) for part in client_version.split(".")[:2]]
    except ValueError:
        log.warning("Qdrant server reports an unreadable version %r", server_version)
        return
    if server[0] != client[0] or abs(server[1] - client[1]) > 1:
        log.warning("Qdrant server %s may not work with qdrant-client %s", server_version, client_version)


def _filter(conditions: list[Condition] | None) -> models.Filter | None:
    if not conditions:
        return None
    return models.Filter(must=[_condition(c) for c in conditions])


def _condition(condition: Condition) -> models.FieldCondition:
    if isinstance(condition, Match):
        return models.FieldCondition(key=condition.key, match=models.MatchValue(value=condition.value))
    if isinstance(condition, MatchAny):
        return models.FieldCondition(key=condition.key, match=models.MatchAny(any=list(condition.values)))
    if isinstance(condition, Range):
        return models.FieldCondition(key=condition.key, range=models.Range(gte=condition.gte, lte=condition.lte))
    raise TypeError(f"unsupported condition {condition!r}")


def _point_struct(point: PointToWrite) -> models.PointStruct:
    vectors: dict[str, Any] = {}
    for name, vector in point.vectors.items():
        if isinstance(vector, SparseVector):
            vectors[name] = models.SparseVector(indices=vector.indices, values=vector.values)
        else:
            vectors[name] = vector
    return models.PointStruct(id=point.id, vector=vectors, payload=point.payload)


def _stored(point: Any) -> StoredPoint:
    vectors = point.vector if isinstance(getattr(point, "vector", None), dict) else {}
    lexical = vectors.get(LEXICAL)
    dense = vectors.get(DENSE)
    return StoredPoint(
        id=str(point.id),
        payload=dict(point.payload or {}),
        lexical=SparseVector(list(lexical.indices), list(lexical.values)) if lexical is not None else None,
        dense=list(dense) if dense is not None else None,
        score=getattr(point, "score", None),
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
