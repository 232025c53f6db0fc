"""The embedded history store: Qdrant Edge shards in a local data directory (the default backend).

Edge's API is synchronous. Every call runs on one dedicated worker thread: the event loop is never blocked,
and writes are serialized without further locking. One process at a time may open a data directory: a lock
file says so plainly, before Edge's own write-ahead-log lock would fail with a less helpful message.

Layout under ``<data_dir>/history/``: ``<prefix>_records/`` and ``<prefix>_audit/`` (one shard each, see
``engine.history.layout``) and ``<prefix>.lock``. ``optimize()`` is never called here: it blocks for minutes
on large shards, and filtered queries stay fast without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import qdrant_edge as qe

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

# Edge wants at least one vector per shard; audit entries carry none, so the audit shard declares one.
_PLACEHOLDER_VECTOR = "none"
_SCHEMA = {
    IndexKind.KEYWORD: qe.PayloadSchemaType.Keyword,
    IndexKind.FLOAT: qe.PayloadSchemaType.Float,
    IndexKind.INTEGER: qe.PayloadSchemaType.Integer,
}


class EdgeHistoryStore(QdrantHistoryStore):
    def __init__(
        self,
        data_dir: str | Path,
        *,
        prefix: str = "cloudops",
        embeddings: EmbeddingsClient | None = None,
    ) -> None:
        super().__init__(embeddings=embeddings)
        self.base_dir = Path(data_dir).expanduser() / "history"
        self.prefix = prefix
        self._records_path = self.base_dir / records_name(prefix)
        self._audit_path = self.base_dir / audit_name(prefix)
        self._lock_path = self.base_dir / f"{prefix}.lock"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cloudops-history")
        self._records: qe.EdgeShard | None = None
        self._audit: qe.EdgeShard | None = None
        self._lock_fd: int | None = None

    @property
    def description(self) -> str:
        return str(self.base_dir)

    async def open(self) -> EdgeHistoryStore:
        """Open (creating if needed) the shards now rather than on first use; raises ``StoreError``."""
        await self._call("open", lambda: None)
        return self

    async def run_in_shard_thread(self, fn: Callable[[qe.EdgeShard, qe.EdgeShard], T]) -> T:
        """Run ``fn(records_shard, audit_shard)`` on the store's worker thread (maintenance tools, tests)."""
        return await self._call("maintenance", lambda: fn(self._shard("records"), self._shard("audit")))

    # -- the worker thread ----------------------------------------------------------------------------------

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        self._check_open()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, partial(self._in_worker, fn))
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"history store {self.base_dir}: {what} failed: {_one_line(exc)}") from exc

    async def _read(self, what: str, fn: Callable[[], T]) -> T:
        """A bounded read, run on the calling thread once the shards are open.

        Edge answers such a query in about a millisecond and releases the GIL while it works; handing it to
        the worker thread and back cost more than the query itself. Writes stay on the worker thread, which
        keeps them serialized; the engine's own locks make a read beside a write safe.
        """
        self._check_open()
        if self._records is None:
            return await self._call(what, fn)
        try:
            return fn()
        except Exception as exc:
            raise StoreError(f"history store {self.base_dir}: {what} failed: {_one_line(exc)}") from exc

    def _in_worker(self, fn: Callable[[], T]) -> T:
        if self._records is None:
            self._open_in_worker()
        return fn()

    def _open_in_worker(self) -> None:
        try:
            self.base_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create history directory {self.base_dir}: {exc.strerror or exc}") from None
        self._lock()
        try:
            self._records = _open_shard(
                self._records_path,
                qe.EdgeConfig(sparse_vectors={LEXICAL: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)}),
                RECORD_INDEXES,
            )
            self._audit = _open_shard(
                self._audit_path,
                qe.EdgeConfig(sparse_vectors={_PLACEHOLDER_VECTOR: qe.EdgeSparseVectorParams()}),
                AUDIT_INDEXES,
            )
        except Exception as exc:
            self._release_in_worker()
            raise StoreError(f"cannot open history store {self.base_dir}: {_one_line(exc)}") from exc

    def _lock(self) -> None:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreError(
                f"history store {self.base_dir} is in use by another process (pid {holder}); "
                f"one process at a time can open it (use a Qdrant server, QDRANT_URL, to share history)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _release_in_worker(self) -> None:
        for shard in (self._records, self._audit):
            if shard is not None:
                with contextlib.suppress(Exception):
                    shard.close()
        self._records = self._audit = None
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
            self._lock_fd = None

    def _shard(self, which: Literal["records", "audit"]) -> qe.EdgeShard:
        shard = self._records if which == "records" else self._audit
        if shard is None:
            raise StoreError(f"history store {self.base_dir} is not open")
        return shard

    # -- primitives ----------------------------------------------------------------------------------------

    async def _retrieve_record(self, point_id: str, *, with_vectors: bool) -> StoredPoint | None:
        def run() -> StoredPoint | None:
            found = self._shard("records").retrieve([point_id], with_payload=True, with_vector=with_vectors)
            return _stored(found[0]) if found else None

        return await self._call("read", run)

    async def _write_record(self, point: PointToWrite, *, condition: list[Condition] | None, insert_only: bool) -> None:
        operation = qe.UpdateOperation.upsert_points(
            [_edge_point(point)],
            condition=_filter(condition) if condition else None,
            update_mode=qe.UpdateMode.InsertOnly if insert_only else None,
        )
        await self._call("write", lambda: self._shard("records").update(operation))

    async def _scroll_records_ordered(
        self,
        conditions: list[Condition],
        *,
        key: str,
        descending: bool,
        limit: int,
        start_from: float | int | None,
    ) -> list[StoredPoint]:
        request = qe.ScrollRequest(
            limit=limit,
            filter=_filter(conditions),
            with_payload=True,
            with_vector=False,
            order_by=qe.OrderBy(key, qe.Direction.Desc if descending else qe.Direction.Asc, start_from),
        )
        points, _ = await self._read("scroll", lambda: self._shard("records").scroll(request))
        return [_stored(p) for p in points]

    async def _scroll_page(
        self, collection: Literal["records", "audit"], offset: str | None, limit: int
    ) -> tuple[list[StoredPoint], str | None]:
        request = qe.ScrollRequest(offset=offset, limit=limit, with_payload=True, with_vector=False)
        points, next_offset = await self._call("scan", lambda: self._shard(collection).scroll(request))
        return [_stored(p) for p in points], None if next_offset is None else str(next_offset)

    async def _count_records(self, conditions: list[Condition]) -> int:
        request = qe.CountRequest(exact=True, filter=_filter(conditions))
        return await self._call("count", lambda: self._shard("records").count(request))

    async def _query_records(
        self,
        *,
        lexical: SparseVector | None,
        dense: list[float] | None,
        conditions: list[Condition],
        limit: int,
    ) -> list[StoredPoint]:
        flt = _filter(conditions)
        searches = []
        if lexical is not None:
            searches.append(qe.Query.Nearest(qe.SparseVector(lexical.indices, lexical.values), using=LEXICAL))
        if dense is not None:
            searches.append(qe.Query.Nearest(dense, using=DENSE))
        if len(searches) == 1:
            request = qe.QueryRequest(limit=limit, query=searches[0], filter=flt, with_payload=True)
        else:
            depth = max(limit * 4, 50)
            request = qe.QueryRequest(
                limit=limit,
                prefetches=[qe.Prefetch(limit=depth, query=q, filter=flt) for q in searches],
                query=qe.Fusion.Rrf(k=RRF_K),
                filter=flt,
                with_payload=True,
            )
        points = await self._read("search", lambda: self._shard("records").query(request))
        return [_stored(p) for p in points]

    async def _ensure_dense_vector(self, size: int) -> int:
        operation = qe.UpdateOperation.create_dense_vector(DENSE, size, qe.Distance.Cosine)
        try:
            await self._call("add dense vector", lambda: self._shard("records").update(operation))
        except StoreError as exc:
            if "different parameters" in str(exc):
                raise EmbeddingsError(
                    f"the store's dense vectors were made by another model (not {size} dimensions)"
                ) from exc
            raise
        return size

    async def _last_entry(self) -> StoredPoint | None:
        request = qe.ScrollRequest(
            limit=1, with_payload=True, with_vector=False, order_by=qe.OrderBy(ENTRY_SEQ, qe.Direction.Desc)
        )
        points, _ = await self._call("read chain head", lambda: self._shard("audit").scroll(request))
        return _stored(points[0]) if points else None

    async def _insert_entry(self, point: PointToWrite) -> None:
        operation = qe.UpdateOperation.upsert_points(
            [qe.Point(point.id, {}, point.payload)], update_mode=qe.UpdateMode.InsertOnly
        )
        await self._call("append audit entry", lambda: self._shard("audit").update(operation))

    async def _retrieve_entry(self, point_id: str) -> StoredPoint | None:
        def run() -> StoredPoint | None:
            found = self._shard("audit").retrieve([point_id], with_payload=True, with_vector=False)
            return _stored(found[0]) if found else None

        return await self._call("read audit entry", run)

    async def _make_durable(self) -> None:
        def run() -> None:
            self._shard("records").flush()
            self._shard("audit").flush()

        await self._call("flush", run)

    async def _close_backend(self) -> None:
        def run() -> None:
            for shard in (self._records, self._audit):
                if shard is not None:
                    with contextlib.suppress(Exception):
                        shard.flush()
            self._release_in_worker()

        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, run)
        finally:
            self._executor.shutdown(wait=True)


def _open_shard(path: Path, config: qe.EdgeConfig, indexes: dict[str, IndexKind]) -> qe.EdgeShard:
    shard = (
        qe.EdgeShard.load(str(path)) if (path / "edge_config.json").exists() else qe.EdgeShard.create(str(path), config)
    )
    present = set(shard.info().payload_schema)
    missing = {name: kind for name, kind in indexes.items() if name not in present}
    for name, kind in missing.items():
        shard.update(qe.UpdateOperation.create_field_index(name, _SCHEMA[kind]))
    if missing:
        shard.flush()
    return shard


def _filter(conditions: list[Condition] | None) -> qe.Filter | None:
    if not conditions:
        return None
    return qe.Filter(must=[_condition(c) for c in conditions])


def _condition(condition: Condition) -> qe.FieldCondition:
    if isinstance(condition, Match):
        return qe.FieldCondition(condition.key, match=qe.MatchValue(condition.value))
    if isinstance(condition, MatchAny):
        return qe.FieldCondition(condition.key, match=qe.MatchAny(list(condition.values)))
    if isinstance(condition, Range):
        return qe.FieldCondition(condition.key, range=qe.RangeFloat(gte=condition.gte, lte=condition.lte))
    raise TypeError(f"unsupported condition {condition!r}")


def _edge_point(point: PointToWrite) -> qe.Point:
    vectors: dict[str, Any] = {}
    for name, vector in point.vectors.items():
        vectors[name] = qe.SparseVector(vector.indices, vector.values) if isinstance(vector, SparseVector) else vector
    return qe.Point(point.id, vectors, point.payload)


def _stored(point: Any) -> StoredPoint:
    vectors = getattr(point, "vector", None) or {}
    lexical = vectors.get(LEXICAL) if isinstance(vectors, dict) else None
    dense = vectors.get(DENSE) if isinstance(vectors, dict) else None
    return StoredPoint(
        id=str(point.id),
        payload=point.payload or {},  # a fresh dict on every read already
        lexical=SparseVector(list(lexical.indices), list(lexical.values)) if lexical is not None else None,
        dense=list(dense) if dense is not None else None,
        score=getattr(point, "score", None),
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
