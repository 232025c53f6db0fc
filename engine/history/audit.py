"""Checking the audit chain against the records, and exporting records for auditors.

``verify_chain`` trusts nothing it reads: it scans every point of both collections as stored and reports

* ``changed``: a record whose content no longer matches the hash of its latest audit entry (edited behind
  the store's back, or a write whose entry never landed because the process died in between);
* ``removed``: an audit entry naming a record that is gone, or a missing entry (a gap in the sequence);
* ``inserted``: a record with no audit entry at all;
* ``forged``: an audit entry whose own hash, link to the previous entry, or point id does not check out.
"""

from __future__ import annotations

import csv
import json
from enum import StrEnum
from typing import Literal, TextIO

from pydantic import BaseModel, ValidationError

from engine.history.chain import GENESIS_HASH, AuditEntry, content_hash, entry_point_id
from engine.history.filters import RecordFilter
from engine.history.layout import CREATED_TS, record_from_payload
from engine.history.records import ExecutionRecord
from engine.history.store import HistoryStore


class ProblemKind(StrEnum):
    CHANGED = "changed"
    REMOVED = "removed"
    INSERTED = "inserted"
    FORGED = "forged"


class AuditProblem(BaseModel):
    kind: ProblemKind
    record_id: str | None = None
    seq: int | None = None
    detail: str

    def __str__(self) -> str:
        where = f"record {self.record_id}" if self.record_id else f"audit entry {self.seq}"
        return f"{self.kind.value}: {where}: {self.detail}"


class AuditReport(BaseModel):
    entries: int
    records: int
    head_seq: int
    head_hash: str
    problems: list[AuditProblem]

    @property
    def ok(self) -> bool:
        return not self.problems

    def records_with(self, kind: ProblemKind) -> set[str]:
        return {p.record_id for p in self.problems if p.kind == kind and p.record_id}


async def verify_chain(store: HistoryStore) -> AuditReport:
    problems: list[AuditProblem] = []

    entries: dict[int, AuditEntry] = {}
    async for point in store.scan_audit_points():
        try:
            entry = AuditEntry.model_validate(point.payload)
        except ValidationError as exc:
            problems.append(
                AuditProblem(kind=ProblemKind.FORGED, detail=f"audit point {point.id} is not an entry: {_first(exc)}")
            )
            continue
        if point.id != entry_point_id(entry.seq):
            problems.append(
                AuditProblem(
                    kind=ProblemKind.FORGED,
                    record_id=str(entry.record_id),
                    seq=entry.seq,
                    detail=f"audit point {point.id} claims seq {entry.seq}, which lives at another id",
                )
            )
            continue
        entries[entry.seq] = entry

    head_seq = max(entries, default=0)
    previous_hash = GENESIS_HASH
    for seq in range(1, head_seq + 1):
        entry = entries.get(seq)
        if entry is None:
            problems.append(
                AuditProblem(kind=ProblemKind.REMOVED, seq=seq, detail="audit entry is missing (gap in the chain)")
            )
            previous_hash = ""
            continue
        if entry.computed_hash() != entry.entry_hash:
            problems.append(
                AuditProblem(
                    kind=ProblemKind.FORGED,
                    record_id=str(entry.record_id),
                    seq=seq,
                    detail="entry content does not match its hash",
                )
            )
        elif previous_hash and entry.prev_hash != previous_hash:
            problems.append(
                AuditProblem(
                    kind=ProblemKind.FORGED,
                    record_id=str(entry.record_id),
                    seq=seq,
                    detail="entry does not link to the entry before it",
                )
            )
        previous_hash = entry.entry_hash

    # The latest entry of a record is the one for its highest version: two writers may append the entries
    # of consecutive versions out of order, never the versions themselves.
    latest: dict[str, AuditEntry] = {}
    created: dict[str, int] = {}
    for entry in entries.values():
        key = str(entry.record_id)
        if entry.op == "create":
            created[key] = entry.seq
        known = latest.get(key)
        if known is None or (entry.record_version, entry.seq) > (known.record_version, known.seq):
            latest[key] = entry

    seen: set[str] = set()
    records = 0
    async for point in store.scan_record_points():
        records += 1
        seen.add(point.id)
        problems.extend(_check_record(point.id, point.payload, latest.get(point.id), created.get(point.id)))

    for record_id, entry in latest.items():
        if record_id not in seen:
            problems.append(
                AuditProblem(
                    kind=ProblemKind.REMOVED,
                    record_id=record_id,
                    seq=entry.seq,
                    detail=f"record is gone (last audited at version {entry.record_version}, entry {entry.seq})",
                )
            )

    head = entries.get(head_seq)
    return AuditReport(
        entries=len(entries),
        records=records,
        head_seq=head_seq,
        head_hash=head.entry_hash if head else GENESIS_HASH,
        problems=problems,
    )


def _check_record(
    point_id: str, payload: dict, entry: AuditEntry | None, created_seq: int | None
) -> list[AuditProblem]:
    if entry is None:
        return [AuditProblem(kind=ProblemKind.INSERTED, record_id=point_id, detail="record has no audit entry")]
    try:
        record = record_from_payload(payload)
    except ValidationError as exc:
        return [AuditProblem(kind=ProblemKind.CHANGED, record_id=point_id, detail=f"unreadable: {_first(exc)}")]
    found: list[str] = []
    if str(record.id) != point_id:
        found.append(f"stored under id {point_id} but says it is {record.id}")
    actual = content_hash(record)
    if actual != entry.content_hash:
        found.append(f"content differs from audited version {entry.record_version} (entry {entry.seq})")
    elif record.content_hash != actual:
        found.append("stored content hash was altered")
    if record.version != entry.record_version:
        found.append(f"is at version {record.version}, audit chain at {entry.record_version}")
    if record.audit_seq != entry.seq:
        found.append(f"points at audit entry {record.audit_seq}, its latest entry is {entry.seq}")
    if created_seq is not None and record.created_seq != created_seq:
        found.append(f"claims to be created at entry {record.created_seq}, its create entry is {created_seq}")
    if payload.get(CREATED_TS) != record.timestamp.timestamp():
        found.append("index field created_ts does not match the record's timestamp")
    return [AuditProblem(kind=ProblemKind.CHANGED, record_id=point_id, detail=d) for d in found]


def _first(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    return f"{'.'.join(str(p) for p in error['loc']) or 'payload'}: {error['msg']}"


# ---------------------------------------------------------------------------------------------------------
# Export

CSV_COLUMNS = (
    "id",
    "timestamp",
    "updated_at",
    "conversation_id",
    "requested_by",
    "status",
    "risk",
    "services",
    "summary",
    "user_prompt",
    "commands",
    "approvals",
    "plan_hash",
    "plan_version",
    "duration_seconds",
    "aws_profile",
    "aws_region",
    "aws_account",
    "dry_run",
    "channel",
    "link",
    "cancelled_by",
    "version",
    "content_hash",
    "audit_seq",
)


async def export_records(
    store: HistoryStore,
    out: TextIO,
    format: Literal["jsonl", "csv"] = "jsonl",
    filters: RecordFilter | None = None,
) -> int:
    """Write matching records in write order and return how many.

    JSON Lines carries every field as stored. CSV has one row per record with the columns auditors sort
    on; a text cell that a spreadsheet would take for a formula gets a leading ``'``.
    """
    if format not in ("jsonl", "csv"):
        raise ValueError(f"unknown export format {format!r}: use jsonl or csv")
    written = 0
    writer = csv.writer(out) if format == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    async for record in store.all_in_write_order(filters):
        if writer is None:
            out.write(json.dumps(record.model_dump(mode="json"), ensure_ascii=False, sort_keys=True) + "\n")
        else:
            writer.writerow(csv_row(record))
        written += 1
    return written


def csv_row(record: ExecutionRecord) -> list[str]:
    data = record.model_dump(mode="json")
    flat: dict[str, object] = {
        **data,
        "services": ";".join(record.services),
        "commands": " | ".join(f"{c.id}: {c.command} [{c.status.value}]" for c in record.commands),
        "approvals": " | ".join(f"{a.user}: {a.decision.value} (v{a.plan_version})" for a in record.approvals),
    }
    return [_cell(flat.get(column)) for column in CSV_COLUMNS]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value)
    # A spreadsheet would run a cell starting like a formula; prompts and commands are user-controlled text.
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
