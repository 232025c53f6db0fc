"""What both Qdrant backends do the same way: compare-and-set, the audit chain, search, recovery.

A backend supplies a handful of primitives (retrieve, conditional write, ordered scroll, query, count,
insert-only entry write); everything that decides what gets written lives here, once.

A write, step by step:
1. read the record (a transition) and check the expected status and version;
2. reserve the next chain position from the current head and compute the content hash;
3. write the record with a condition (status in the expected set and version unchanged) or, for a create,
   insert-only; neither API reports whether a conditional write applied, so
4. read it back: a random ``write_token`` in the payload tells whether this write is the one stored;
5. append the audit entry insert-only at the reserved position; if another writer took it, take the next
   one and correct the record's ``audit_seq``;
6. make both durable before returning.
A process that dies between 3 and 5 leaves a write with no entry: ``verify_chain`` reports it (it cannot be
told apart from an edit made behind the store's back, and should not be silently accepted).
"""

from __future__ import annotations

import abc
import asyncio
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal
from uuid import UUID

from pydantic import ValidationError

from engine.errors import StoreError
from engine.history.chain import GENESIS_HASH, AuditEntry, content_hash, writer_name
from engine.history.conditions import Condition, Match, MatchAny, record_conditions
from engine.history.embeddings import EmbeddingsClient, EmbeddingsError
from engine.history.errors import RecordNotFoundError
from engine.history.filters import RecordFilter
from engine.history.layout import (
    CREATED_SEQ,
    CREATED_TS,
    DENSE,
    LEXICAL,
    SEARCH_SHA,
    PointToWrite,
    StoredPoint,
    record_from_payload,
    record_payload,
    search_sha,
)
from engine.history.lexical import LexicalEncoder, SparseVector
from engine.history.limits import MAX_LIMIT
from engine.history.records import (
    IMMUTABLE_FIELDS,
    CommandStatus,
    ExecutionRecord,
    RecordStatus,
    check_transition,
    utc_now,
)
from engine.history.store import Changes, HistoryStore, SearchHit, TransitionResult

log = logging.getLogger(__name__)

_PAGE = 256
_CHAIN_ATTEMPTS = 64
RRF_K = 60


class ChainHead:
    __slots__ = ("hash", "seq")

    def __init__(self, seq: int, hash_: str) -> None:
        self.seq = seq
        self.hash = hash_


class QdrantHistoryStore(HistoryStore):
    def __init__(self, *, embeddings: EmbeddingsClient | None = None) -> None:
        self._lexical = LexicalEncoder()
        self._embeddings = embeddings
        self._dense_size: int | None = None
        self._closed = False
        # One writer at a time in this process between reading the chain head and appending to it: many
        # concurrent writes (a burst of clicks) otherwise race for the same position, and retry each other
        # out. Other processes on a shared server are still kept apart by the insert-only entry ids.
        self._chain_lock = asyncio.Lock()

    # -- backend primitives -------------------------------------------------------------------------------

    @abc.abstractmethod
    async def _retrieve_record(self, point_id: str, *, with_vectors: bool) -> StoredPoint | None: ...

    @abc.abstractmethod
    async def _write_record(
        self, point: PointToWrite, *, condition: list[Condition] | None, insert_only: bool
    ) -> None: ...

    @abc.abstractmethod
    async def _scroll_records_ordered(
        self,
        conditions: list[Condition],
        *,
        key: str,
        descending: bool,
        limit: int,
        start_from: float | int | None,
    ) -> list[StoredPoint]: ...

    @abc.abstractmethod
    async def _scroll_page(
        self, collection: Literal["records", "audit"], offset: str | None, limit: int
    ) -> tuple[list[StoredPoint], str | None]: ...

    @abc.abstractmethod
    async def _count_records(self, conditions: list[Condition]) -> int: ...

    @abc.abstractmethod
    async def _query_records(
        self,
        *,
        lexical: SparseVector | None,
        dense: list[float] | None,
        conditions: list[Condition],
        limit: int,
    ) -> list[StoredPoint]: ...

    @abc.abstractmethod
    async def _ensure_dense_vector(self, size: int) -> int:
        """Create the dense vector with ``size`` if absent; return the size the collection has."""

    @abc.abstractmethod
    async def _last_entry(self) -> StoredPoint | None: ...

    @abc.abstractmethod
    async def _insert_entry(self, point: PointToWrite) -> None:
        """Write an audit entry only if no point has its id yet."""

    @abc.abstractmethod
    async def _retrieve_entry(self, point_id: str) -> StoredPoint | None: ...

    @abc.abstractmethod
    async def _make_durable(self) -> None: ...

    @abc.abstractmethod
    async def _close_backend(self) -> None: ...

    # -- writes ---------------------------------------------------------------------------------------------

    async def create(self, record: ExecutionRecord) -> ExecutionRecord:
        self._check_open()
        async with self._chain_lock:
            head = await self._chain_head()
            new = ExecutionRecord.model_validate(
                {
                    **record.model_dump(),
                    "version": 1,
                    "updated_at": utc_now(),
                    "audit_seq": head.seq + 1,
                    "created_seq": head.seq + 1,
                    "write_token": uuid.uuid4().hex,
                }
            )
            new = new.model_copy(update={"content_hash": content_hash(new)})
            vectors = await self._vectors_for(new, existing=None)
            await self._write_record(_point(new, vectors), condition=None, insert_only=True)
            landed = await self._retrieve_record(str(new.id), with_vectors=False)
            if landed is None:
                raise StoreError(f"record {new.id} was not stored in {self.description}")
            if landed.payload.get("write_token") != new.write_token:
                raise StoreError(f"record {new.id} already exists in {self.description}; not overwritten")
            stored = await self._append_entry(new, head=head, op="create", vectors=vectors)
        await self._make_durable()
        return stored

    async def transition(
        self,
        record_id: UUID | str,
        *,
        expected_status: RecordStatus | set[RecordStatus] | frozenset[RecordStatus],
        expected_version: int | None = None,
        changes: Changes = None,
        new_status: RecordStatus | None = None,
    ) -> TransitionResult:
        self._check_open()
        expected = (
            frozenset({RecordStatus(expected_status)})
            if isinstance(expected_status, str)
            else frozenset(RecordStatus(s) for s in expected_status)
        )
        if not expected:
            raise ValueError("expected_status must name at least one status")
        point_id = _point_id(record_id)
        found = await self._retrieve_record(point_id, with_vectors=True)
        if found is None:
            raise RecordNotFoundError(f"no execution record {point_id} in {self.description}")
        current = self._parse(found)
        if current.status not in expected:
            return TransitionResult(applied=False, record=current, previous_status=current.status, conflict="status")
        if expected_version is not None and current.version != expected_version:
            return TransitionResult(applied=False, record=current, previous_status=current.status, conflict="version")
        target = RecordStatus(new_status) if new_status is not None else current.status
        check_transition(current.status, target)

        changed = await _apply_changes(current, changes)
        async with self._chain_lock:
            head = await self._chain_head()
            new = ExecutionRecord.model_validate(
                {
                    **changed.model_dump(),
                    "status": target,
                    "version": current.version + 1,
                    "updated_at": utc_now(),
                    "audit_seq": head.seq + 1,
                    "created_seq": current.created_seq,
                    "write_token": uuid.uuid4().hex,
                }
            )
            new = new.model_copy(update={"content_hash": content_hash(new)})
            vectors = await self._vectors_for(new, existing=found)
            condition: list[Condition] = [
                MatchAny("status", tuple(sorted(s.value for s in expected))),
                Match("version", current.version),
            ]
            await self._write_record(_point(new, vectors), condition=condition, insert_only=False)
            landed = await self._retrieve_record(point_id, with_vectors=False)
            if landed is None:
                raise StoreError(f"record {point_id} disappeared from {self.description} during a transition")
            stored = self._parse(landed)
            if stored.write_token != new.write_token:
                return TransitionResult(applied=False, record=stored, previous_status=current.status, conflict="race")
            stored = await self._append_entry(new, head=head, op="update", vectors=vectors)
        await self._make_durable()
        return TransitionResult(applied=True, record=stored, previous_status=current.status)

    async def recover_interrupted(self) -> list[ExecutionRecord]:
        self._check_open()
        stale = [r async for r in self._ordered_records([Match("status", RecordStatus.RUNNING.value)])]
        recovered: list[ExecutionRecord] = []
        note = (
            f"interrupted: the process running this plan stopped before it finished "
            f"(found at start-up by {writer_name()} at {utc_now().isoformat(timespec='seconds')}); "
            f"not run again"
        )
        for record in stale:
            result = await self.transition(
                record.id,
                expected_status=RecordStatus.RUNNING,
                expected_version=record.version,
                new_status=RecordStatus.INTERRUPTED,
                changes=lambda current: _interrupted(current, note),
            )
            if result.applied:
                recovered.append(result.record)
        return recovered

    # -- reads ----------------------------------------------------------------------------------------------

    async def get(self, record_id: UUID | str) -> ExecutionRecord | None:
        self._check_open()
        found = await self._retrieve_record(_point_id(record_id), with_vectors=False)
        return None if found is None else self._parse(found)

    async def by_conversation(self, conversation_id: str) -> list[ExecutionRecord]:
        self._check_open()
        conditions = record_conditions(RecordFilter(conversation_id=conversation_id))
        return [r async for r in self._ordered_records(conditions, key=CREATED_TS)]

    async def latest(self, limit: int = 20, filters: RecordFilter | None = None) -> list[ExecutionRecord]:
        self._check_open()
        _check_limit(limit)
        points = await self._scroll_records_ordered(
            record_conditions(filters), key=CREATED_TS, descending=True, limit=limit, start_from=None
        )
        return [self._parse(p) for p in points]

    async def search(self, text: str, filters: RecordFilter | None = None, limit: int = 10) -> list[SearchHit]:
        self._check_open()
        _check_limit(limit)
        lexical = self._lexical.query(text)
        dense = await self._dense_query(text) if text.strip() else None
        if not lexical and dense is None:
            return []
        points = await self._query_records(
            lexical=lexical or None, dense=dense, conditions=record_conditions(filters), limit=limit
        )
        return [SearchHit(record=self._parse(p), score=p.score or 0.0) for p in points]

    async def all_in_write_order(self, filters: RecordFilter | None = None) -> AsyncIterator[ExecutionRecord]:
        self._check_open()
        async for record in self._ordered_records(record_conditions(filters), key=CREATED_SEQ):
            yield record

    async def scan_record_points(self) -> AsyncIterator[StoredPoint]:
        self._check_open()
        async for point in self._scan("records"):
            yield point

    async def scan_audit_points(self) -> AsyncIterator[StoredPoint]:
        self._check_open()
        async for point in self._scan("audit"):
            yield point

    async def count(self, filters: RecordFilter | None = None) -> int:
        self._check_open()
        return await self._count_records(record_conditions(filters))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._close_backend()
        finally:
            if self._embeddings is not None:
                await self._embeddings.close()

    # -- helpers --------------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"history store {self.description} is closed")

    def _parse(self, point: StoredPoint) -> ExecutionRecord:
        try:
            return record_from_payload(point.payload)
        except ValidationError as exc:
            raise StoreError(
                f"record {point.id} in {self.description} is unreadable ({exc.error_count()} bad fields); "
                f"run `cloudops audit verify`"
            ) from None

    async def _chain_head(self) -> ChainHead:
        last = await self._last_entry()
        if last is None:
            return ChainHead(0, GENESIS_HASH)
        try:
            entry = AuditEntry.model_validate(last.payload)
        except ValidationError:
            # Appending after an unreadable head would bury the damage; refuse until someone looks.
            raise StoreError(
                f"the audit chain head in {self.description} is unreadable; run `cloudops audit verify`"
            ) from None
        return ChainHead(entry.seq, entry.entry_hash)

    async def _append_entry(
        self,
        record: ExecutionRecord,
        *,
        head: ChainHead,
        op: Literal["create", "update"],
        vectors: dict[str, SparseVector | list[float]],
    ) -> ExecutionRecord:
        for _ in range(_CHAIN_ATTEMPTS):
            entry = AuditEntry.next(seq=head.seq + 1, prev_hash=head.hash, record=record, op=op, at=record.updated_at)
            await self._insert_entry(PointToWrite(entry.point_id, entry.model_dump(mode="json")))
            landed = await self._retrieve_entry(entry.point_id)
            if landed is not None and landed.payload.get("entry_hash") == entry.entry_hash:
                break
            head = await self._chain_head()
        else:
            raise StoreError(
                f"could not append to the audit chain in {self.description} after {_CHAIN_ATTEMPTS} attempts"
            )
        if entry.seq == record.audit_seq:
            return record
        # Another writer took the reserved position: point the record at the entry it really has. Only if
        # the record is still this write (another transition may already have superseded it).
        moved = record.model_copy(
            update={"audit_seq": entry.seq, "created_seq": entry.seq if op == "create" else record.created_seq}
        )
        await self._write_record(
            _point(moved, vectors), condition=[Match("write_token", record.write_token)], insert_only=False
        )
        return moved

    async def _vectors_for(
        self, record: ExecutionRecord, *, existing: StoredPoint | None
    ) -> dict[str, SparseVector | list[float]]:
        vectors: dict[str, SparseVector | list[float]] = {}
        lexical = self._lexical.document(record.indexed_text())
        if lexical:
            vectors[LEXICAL] = lexical
        if self._embeddings is None:
            return vectors
        if existing is not None and existing.dense and existing.payload.get(SEARCH_SHA) == search_sha(record):
            vectors[DENSE] = existing.dense
            return vectors
        try:
            (dense,) = await self._embeddings.embed([record.indexed_text()])
            await self._ensure_dense(len(dense))
            vectors[DENSE] = dense
        except EmbeddingsError as exc:
            # The audit record matters more than its semantic searchability: store it without.
            log.warning("record %s stored without a dense vector: %s", record.id, exc)
        return vectors

    async def _dense_query(self, text: str) -> list[float] | None:
        if self._embeddings is None:
            return None
        try:
            (dense,) = await self._embeddings.embed([text])
            await self._ensure_dense(len(dense))
        except EmbeddingsError as exc:
            log.warning("search falls back to lexical ranking only: %s", exc)
            return None
        return dense

    async def _ensure_dense(self, size: int) -> None:
        if self._dense_size is None:
            try:
                self._dense_size = await self._ensure_dense_vector(size)
            except StoreError as exc:
                # Without a dense vector the record is still written (and fails on its own if the store is down).
                raise EmbeddingsError(f"cannot add dense vectors to the store: {exc}") from exc
        if self._dense_size != size:
            raise EmbeddingsError(
                f"the store's dense vectors have {self._dense_size} dimensions, the endpoint gives {size}; "
                f"use the model the store was built with or a new collection prefix"
            )

    async def _ordered_records(
        self, conditions: list[Condition], *, key: str = CREATED_SEQ
    ) -> AsyncIterator[ExecutionRecord]:
        """Every matching record in ascending ``key`` order, a page at a time (``order_by`` + ``start_from``).

        ``start_from`` includes the boundary value, so ids already seen at that value are skipped.
        """
        start: float | int | None = None
        boundary: set[str] = set()
        while True:
            want = _PAGE + len(boundary)
            batch = await self._scroll_records_ordered(
                conditions, key=key, descending=False, limit=want, start_from=start
            )
            for point in batch:
                if point.id not in boundary:
                    yield self._parse(point)
            if len(batch) < want:
                return
            last = batch[-1].payload.get(key)
            at_last = {p.id for p in batch if p.payload.get(key) == last}
            boundary = at_last | boundary if last == start else at_last
            start = last

    async def _scan(self, collection: Literal["records", "audit"]) -> AsyncIterator[StoredPoint]:
        offset: str | None = None
        while True:
            points, offset = await self._scroll_page(collection, offset, _PAGE)
            for point in points:
                yield point
            if offset is None:
                return


def _point(record: ExecutionRecord, vectors: dict[str, SparseVector | list[float]]) -> PointToWrite:
    return PointToWrite(str(record.id), record_payload(record), vectors)


def _point_id(record_id: UUID | str) -> str:
    try:
        return str(record_id if isinstance(record_id, UUID) else UUID(str(record_id)))
    except ValueError:
        raise ValueError(f"{record_id!r} is not an execution record id (a UUID)") from None


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")


async def _apply_changes(current: ExecutionRecord, changes: Changes) -> ExecutionRecord:
    if changes is None:
        return current
    if isinstance(changes, Mapping):
        return current.with_changes(changes)
    working = current.model_copy(deep=True)
    outcome: Any = changes(working)
    if inspect.isawaitable(outcome):
        outcome = await outcome
    if outcome is None:
        outcome = working
    if isinstance(outcome, Mapping):
        return current.with_changes(outcome)
    if not isinstance(outcome, ExecutionRecord):
        raise TypeError("changes must return an ExecutionRecord, a mapping of fields or None")
    for name in (*IMMUTABLE_FIELDS, "status"):
        if getattr(outcome, name) != getattr(current, name):
            raise ValueError(f"changes may not alter `{name}`" + (" (use new_status)" if name == "status" else ""))
    return ExecutionRecord.model_validate(outcome.model_dump())


def _interrupted(record: ExecutionRecord, note: str) -> dict[str, Any]:
    commands = [
        c.model_copy(update={"status": CommandStatus.INTERRUPTED}) if c.status == CommandStatus.RUNNING else c
        for c in record.commands
    ]
    return {"notes": [*record.notes, note], "commands": commands, "finished_at": utc_now()}
