"""How the history sits in Qdrant; the same layout on Qdrant Edge and on a Qdrant server.

Two collections (on Edge, two shards in the data directory), named from a prefix (default ``cloudops``):

``<prefix>_records``: one point per execution record, id = the record's UUID.
    payload: the record as JSON (``ExecutionRecord.model_dump(mode="json")``), plus ``created_ts``
    (creation time as epoch seconds) and ``search_sha`` (SHA-256 of the indexed text, so a write that does
    not change the text can keep the dense vector it has).
    indexes: keyword on conversation_id, requested_by, status, risk, services, channel, write_token; float
    on created_ts (``order_by`` for newest-first and the since/until range); integer on created_seq (write
    order) and version (compare-and-set). Edge refuses ``order_by`` on a field without a range index, so
    these exist from creation.
    vectors: ``lexical`` sparse (BM25 term weights, IDF modifier); ``dense`` (cosine) added the first time
    an embeddings endpoint answers, sized by its vectors.

``<prefix>_audit``: one point per audit entry, id = ``entry_point_id(seq)``, no vectors.
    payload: ``AuditEntry`` as JSON. indexes: integer on seq (the head is ``order_by seq desc``), keyword
    on record_id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from engine.canonical import stable_floats
from engine.history.lexical import SparseVector
from engine.history.records import ExecutionRecord

LEXICAL = "lexical"
DENSE = "dense"

CREATED_TS = "created_ts"
CREATED_SEQ = "created_seq"
SEARCH_SHA = "search_sha"

ENTRY_SEQ = "seq"


class IndexKind(StrEnum):
    KEYWORD = "keyword"
    FLOAT = "float"
    INTEGER = "integer"


RECORD_INDEXES: dict[str, IndexKind] = {
    "conversation_id": IndexKind.KEYWORD,
    "requested_by": IndexKind.KEYWORD,
    "status": IndexKind.KEYWORD,
    "risk": IndexKind.KEYWORD,
    "services": IndexKind.KEYWORD,
    "channel": IndexKind.KEYWORD,
    CREATED_TS: IndexKind.FLOAT,
    CREATED_SEQ: IndexKind.INTEGER,
    # The compare-and-set conditions filter on these; a server in strict mode refuses unindexed filters.
    "version": IndexKind.INTEGER,
    "write_token": IndexKind.KEYWORD,
}

AUDIT_INDEXES: dict[str, IndexKind] = {
    ENTRY_SEQ: IndexKind.INTEGER,
    "record_id": IndexKind.KEYWORD,
}


def records_name(prefix: str) -> str:
    return f"{prefix}_records"


def audit_name(prefix: str) -> str:
    return f"{prefix}_audit"


@dataclass(slots=True)
class StoredPoint:
    """A point as a backend returned it, before anything is trusted: what the audit verifier reads."""

    id: str
    payload: dict[str, Any]
    lexical: SparseVector | None = None
    dense: list[float] | None = None
    score: float | None = None


@dataclass(slots=True)
class PointToWrite:
    id: str
    payload: dict[str, Any]
    vectors: dict[str, SparseVector | list[float]] = field(default_factory=dict)


def search_sha(record: ExecutionRecord) -> str:
    return hashlib.sha256(record.indexed_text().encode()).hexdigest()


def record_payload(record: ExecutionRecord) -> dict[str, Any]:
    payload = stable_floats(record.model_dump(mode="json"))
    payload[CREATED_TS] = record.timestamp.timestamp()
    payload[SEARCH_SHA] = search_sha(record)
    return payload


def record_from_payload(payload: dict[str, Any]) -> ExecutionRecord:
    # The index-only fields need no filtering out: records ignore fields they do not have, and copying the
    # payload to drop them cost a quarter of reading a record.
    return ExecutionRecord.model_validate(payload)
