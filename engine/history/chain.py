"""The audit hash chain: one immutable entry per write, each hashing the one before it.

Records change over their life, so the chain covers writes, not records. Every ``create`` and ``transition``
appends an entry naming the record, the version written and the SHA-256 of that version's canonical
content. Entry ``n`` is stored under a point id derived from ``n`` and written insert-only: two writers
that both try to append entry ``n`` cannot both succeed, so the chain cannot fork (the loser reads the head
again and appends ``n + 1``).

What it proves: a record edited, removed or added behind the store's back, or an entry altered, removed or
forged, breaks a hash or a link that ``engine.history.audit.verify_chain`` checks. What it cannot prove
alone: someone with write access who rebuilds the whole chain consistently. Keep the head hash that
``cloudops audit verify`` prints somewhere else (a ticket, a log) to pin the chain down.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from engine.canonical import canonical_json
from engine.history.records import CHAIN_FIELDS, ExecutionRecord, RecordStatus

GENESIS_HASH = "0" * 64
_ENTRY_NAMESPACE = UUID("7c0f6a52-3c1e-5b8e-9a57-0d6f1f0c2a11")


def record_content(record: ExecutionRecord) -> dict[str, Any]:
    """What the content hash covers: every field but the chain's own bookkeeping."""
    return record.model_dump(mode="json", exclude=set(CHAIN_FIELDS))


def content_hash(record: ExecutionRecord) -> str:
    return hashlib.sha256(canonical_json(record_content(record)).encode()).hexdigest()


def entry_point_id(seq: int) -> str:
    """The one point id entry ``seq`` may have; insert-only writes at it are the chain's compare-and-set."""
    return str(uuid.uuid5(_ENTRY_NAMESPACE, f"audit-entry:{seq}"))


def writer_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=1)
    record_id: UUID
    record_version: int = Field(ge=1)
    op: Literal["create", "update"]
    status: RecordStatus
    content_hash: str
    at: datetime
    writer: str
    prev_hash: str
    entry_hash: str

    @classmethod
    def next(
        cls,
        *,
        seq: int,
        prev_hash: str,
        record: ExecutionRecord,
        op: Literal["create", "update"],
        at: datetime,
    ) -> AuditEntry:
        fields = {
            "seq": seq,
            "record_id": record.id,
            "record_version": record.version,
            "op": op,
            "status": record.status,
            "content_hash": record.content_hash,
            "at": at,
            "writer": writer_name(),
            "prev_hash": prev_hash,
        }
        unsigned = cls(**fields, entry_hash="")
        return unsigned.model_copy(update={"entry_hash": unsigned.computed_hash()})

    def computed_hash(self) -> str:
        body = self.model_dump(mode="json", exclude={"entry_hash"})
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()

    @property
    def point_id(self) -> str:
        return entry_point_id(self.seq)
