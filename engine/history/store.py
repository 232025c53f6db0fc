"""The history store interface: records in, records out, compare-and-set transitions.

Two implementations share it: ``EdgeHistoryStore`` (Qdrant Edge, embedded, the default) and
``ServerHistoryStore`` (a Qdrant server through qdrant-client). Every backend failure surfaces as
``engine.errors.StoreError``: a caller that cannot write the record of what it is about to do must not do it.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel

from engine.history.filters import RecordFilter
from engine.history.layout import StoredPoint
from engine.history.records import ExecutionRecord, RecordStatus

ChangeResult = ExecutionRecord | Mapping[str, Any] | None
Changes = (
    Mapping[str, Any]
    | Callable[[ExecutionRecord], ChangeResult]
    | Callable[[ExecutionRecord], Awaitable[ChangeResult]]
    | None
)


class TransitionResult(BaseModel):
    """What a transition did. ``record`` is the record as stored now: the new version when ``applied``,
    otherwise the version that won (or was already there), so the caller can say who got there first."""

    applied: bool
    record: ExecutionRecord
    previous_status: RecordStatus
    conflict: Literal["status", "version", "race"] | None = None


class SearchHit(BaseModel):
    record: ExecutionRecord
    score: float


class HistoryStore(abc.ABC):
    @abc.abstractmethod
    async def create(self, record: ExecutionRecord) -> ExecutionRecord:
        """Store a new record (version 1) and its audit entry; durable when this returns."""

    @abc.abstractmethod
    async def get(self, record_id: UUID | str) -> ExecutionRecord | None: ...

    @abc.abstractmethod
    async def by_conversation(self, conversation_id: str) -> list[ExecutionRecord]:
        """Every record of one conversation, oldest first."""

    @abc.abstractmethod
    async def latest(self, limit: int = 20, filters: RecordFilter | None = None) -> list[ExecutionRecord]:
        """The newest records matching ``filters``, newest first."""

    @abc.abstractmethod
    async def search(self, text: str, filters: RecordFilter | None = None, limit: int = 10) -> list[SearchHit]:
        """Records ranked by how well they match ``text``, best first."""

    @abc.abstractmethod
    async def transition(
        self,
        record_id: UUID | str,
        *,
        expected_status: RecordStatus | set[RecordStatus] | frozenset[RecordStatus],
        expected_version: int | None = None,
        changes: Changes = None,
        new_status: RecordStatus | None = None,
    ) -> TransitionResult:
        """Change a record only if it is still in ``expected_status`` (and at ``expected_version``).

        ``changes`` is a mapping of fields, or a function of the current record returning the changed
        record or a mapping (it may be async). ``new_status`` None keeps the status.
        """

    @abc.abstractmethod
    async def recover_interrupted(self) -> list[ExecutionRecord]:
        """Mark every record left ``running`` (by a process that stopped) as ``interrupted``; run nothing."""

    @abc.abstractmethod
    def all_in_write_order(self, filters: RecordFilter | None = None) -> AsyncIterator[ExecutionRecord]:
        """Every record (matching ``filters``) in the order they were created."""

    @abc.abstractmethod
    def scan_record_points(self) -> AsyncIterator[StoredPoint]:
        """Every point of the records collection as stored, unparsed (for the audit verifier)."""

    @abc.abstractmethod
    def scan_audit_points(self) -> AsyncIterator[StoredPoint]:
        """Every point of the audit collection as stored, unparsed (for the audit verifier)."""

    @abc.abstractmethod
    async def count(self, filters: RecordFilter | None = None) -> int: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """Where the store is, for messages: a path or a server URL and collection."""

    async def __aenter__(self) -> HistoryStore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
