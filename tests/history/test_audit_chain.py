"""The audit hash chain catches each kind of tampering, on both backends; exports carry what was stored."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from engine.history.audit import ProblemKind, export_records, verify_chain
from engine.history.chain import GENESIS_HASH, AuditEntry, content_hash, entry_point_id
from engine.history.filters import RecordFilter
from engine.history.layout import record_payload
from engine.history.qdrant_store import QdrantHistoryStore
from engine.history.records import ExecutionRecord, RecordStatus
from tests.history.builders import new_record
from tests.history.conftest import Backend

T0 = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def history(store: QdrantHistoryStore) -> list[ExecutionRecord]:
    """Three records with a few transitions: seven chain entries."""
    first = await store.create(new_record("list buckets", user="alice", now=T0))
    second = await store.create(
        new_record(
            "stop the batch hosts",
            "aws ec2 stop-instances --instance-ids i-9",
            user="bob",
            status=RecordStatus.PENDING_APPROVAL,
            now=T0 + timedelta(minutes=1),
        )
    )
    third = await store.create(
        new_record('=HYPERLINK("http://evil")', "aws s3api list-objects --bucket b", now=T0 + timedelta(minutes=2))
    )
    await store.transition(second.id, expected_status=RecordStatus.PENDING_APPROVAL, new_status=RecordStatus.APPROVED)
    await store.transition(second.id, expected_status=RecordStatus.APPROVED, new_status=RecordStatus.RUNNING)
    await store.transition(second.id, expected_status=RecordStatus.RUNNING, new_status=RecordStatus.SUCCEEDED)
    await store.transition(first.id, expected_status=RecordStatus.PENDING_APPROVAL, changes={"link": "https://l"})
    return [await store.get(r.id) for r in (first, second, third)]


async def test_an_untouched_store_verifies(store: QdrantHistoryStore, history: list[ExecutionRecord]) -> None:
    report = await verify_chain(store)

    assert report.ok, report.problems
    assert (report.entries, report.records, report.head_seq) == (7, 3, 7)
    assert report.head_hash != GENESIS_HASH


async def test_an_empty_store_verifies(store: QdrantHistoryStore) -> None:
    report = await verify_chain(store)

    assert report.ok
    assert (report.entries, report.records, report.head_hash) == (0, 0, GENESIS_HASH)


async def test_an_edited_record_field_is_reported_as_changed(
    store: QdrantHistoryStore, backend: Backend, history: list[ExecutionRecord]
) -> None:
    target = history[1]
    await backend.set_record_fields(store, target.id, {"requested_by": "mallory"})

    report = await verify_chain(store)

    assert not report.ok
    assert report.records_with(ProblemKind.CHANGED) == {str(target.id)}
    assert all(p.kind is ProblemKind.CHANGED for p in report.problems)


async def test_a_status_rewritten_with_its_hash_is_still_caught(
    store: QdrantHistoryStore, backend: Backend, history: list[ExecutionRecord]
) -> None:
    # Whoever edits the status and recomputes the record's own hash still cannot make the chain agree.
    target = history[1]
    forged = target.model_copy(update={"status": RecordStatus.FAILED})
    await backend.set_record_fields(store, target.id, {"status": "failed", "content_hash": content_hash(forged)})

    report = await verify_chain(store)

    assert report.records_with(ProblemKind.CHANGED) == {str(target.id)}


async def test_a_deleted_record_is_reported_as_removed(
    store: QdrantHistoryStore, backend: Backend, history: list[ExecutionRecord]
) -> None:
    await backend.delete_record_point(store, history[0].id)

    report = await verify_chain(store)

    assert report.records_with(ProblemKind.REMOVED) == {str(history[0].id)}
    assert len(report.problems) == 1


async def test_a_record_inserted_behind_the_store_is_reported(
    store: QdrantHistoryStore, backend: Backend, history: list[ExecutionRecord]
) -> None:
    planted = history[2].model_copy(update={"id": uuid.uuid4(), "summary": "nothing to see here"})
    await backend.insert_record_point(store, str(planted.id), record_payload(planted))

    report = await verify_chain(store)

    assert report.records_with(ProblemKind.INSERTED) == {str(planted.id)}
    assert len(report.problems) == 1


async def test_a_deleted_entry_in_the_middle_is_a_gap(
    store: QdrantHistoryStore, backend: Backend, history: list[ExecutionRecord]
) -> None:
    await backend.delete_entry(store, 2)

    report = await verify_chain(store)

    assert [(p.kind, p.seq) for p in report.problems if p.record_id is None] == [(ProblemKind.REMOVED, 2)]


async def test_deleting_the_last_entry_shows_on_the_record_it_covered(
    store: QdrantHistoryStore, backend: Backend, history: list[ExecutionRecord]
) -> None:
    await backend.delete_entry(store, 7)

    report = await verify_chain(store)

    assert report.records_with(ProblemKind.CHANGED) == {str(history[0].id)}


async def test_an_altered_entry_is_reported_as_forged(
    store: QdrantHistoryStore, backend: Backend, history: list[ExecutionRecord]
) -> None:
    entry = await backend.read_entry(store, 4)
    await backend.put_entry_point(store, entry_point_id(4), {**entry, "status": "rejected"})

    report = await verify_chain(store)

    forged = [p for p in report.problems if p.kind is ProblemKind.FORGED]
    assert [(p.seq, p.record_id) for p in forged] == [(4, str(history[1].id))]


async def test_an_entry_rehashed_after_editing_breaks_the_next_link(
    store: QdrantHistoryStore, backend: Backend, history: list[ExecutionRecord]
) -> None:
    entry = AuditEntry.model_validate(await backend.read_entry(store, 3))
    edited = entry.model_copy(update={"writer": "someone-else:1"})
    rehashed = edited.model_copy(update={"entry_hash": edited.computed_hash()})
    await backend.put_entry_point(store, entry_point_id(3), rehashed.model_dump(mode="json"))

    report = await verify_chain(store)

    assert [(p.kind, p.seq) for p in report.problems] == [(ProblemKind.FORGED, 4)]


async def test_an_entry_planted_under_a_foreign_id_is_forged(
    store: QdrantHistoryStore, backend: Backend, history: list[ExecutionRecord]
) -> None:
    entry = await backend.read_entry(store, 5)
    await backend.put_entry_point(store, str(uuid.uuid4()), {**entry, "seq": 3})

    report = await verify_chain(store)

    assert [(p.kind, p.seq) for p in report.problems] == [(ProblemKind.FORGED, 3)]


async def test_a_point_that_is_not_an_entry_is_forged(
    store: QdrantHistoryStore, backend: Backend, history: list[ExecutionRecord]
) -> None:
    await backend.put_entry_point(store, str(uuid.uuid4()), {"note": "hello"})

    report = await verify_chain(store)

    assert [p.kind for p in report.problems] == [ProblemKind.FORGED]


# -- export ---------------------------------------------------------------------------------------------------


async def test_jsonl_export_has_every_record_in_write_order(
    store: QdrantHistoryStore, history: list[ExecutionRecord]
) -> None:
    out = io.StringIO()

    count = await export_records(store, out, "jsonl")

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == 3
    assert [ExecutionRecord.model_validate(line) for line in lines] == history


async def test_csv_export_has_a_row_per_record_and_defuses_formulas(
    store: QdrantHistoryStore, history: list[ExecutionRecord]
) -> None:
    out = io.StringIO()

    count = await export_records(store, out, "csv", RecordFilter(since=T0 + timedelta(seconds=30)))

    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert count == 2
    assert [r["id"] for r in rows] == [str(history[1].id), str(history[2].id)]
    assert rows[0]["status"] == "succeeded"
    assert rows[0]["commands"] == "c1: aws ec2 stop-instances --instance-ids i-9 [pending]"
    assert rows[0]["version"] == "4"
    assert rows[1]["summary"] == '\'=HYPERLINK("http://evil")'


async def test_export_refuses_an_unknown_format(store: QdrantHistoryStore) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        await export_records(store, io.StringIO(), "xml")  # type: ignore[arg-type]


# Floats that some JSON parsers (Qdrant's among them) read back one unit in the last place off.
LONG_FLOATS = [0.021279235830317014, 0.1 + 0.2, 1.0000000000000002, 12.345678901234567, 9.876543210987654e-05]


async def test_records_with_long_floats_read_back_with_an_unchanged_hash(store: QdrantHistoryStore) -> None:
    created = await store.create(new_record("time things", user="alice", now=T0))
    for duration in LONG_FLOATS:
        current = await store.get(created.id)
        result = await store.transition(
            created.id,
            expected_status=current.status,
            changes={"duration_seconds": duration, "notes": [f"{duration!r}"]},
        )
        assert result.applied

    stored = await store.get(created.id)
    assert stored is not None and stored.content_hash == content_hash(stored)
    report = await verify_chain(store)
    assert report.ok, report.problems


def test_plan_hash_ignores_float_noise_beyond_fifteen_digits() -> None:
    from engine.plan import plan_from_data

    def plan(value: float):
        return plan_from_data(
            {
                "summary": "s",
                "commands": [{"id": "a", "sdk": {"service": "s3", "operation": "ListBuckets", "params": {"x": value}}}],
            }
        )

    assert plan(0.021279235830317014).hash == plan(0.021279235830317017).hash
    assert plan(0.02127923583).hash != plan(0.02127923584).hash


async def test_a_burst_of_concurrent_writes_all_land_on_one_unbroken_chain(store: QdrantHistoryStore) -> None:
    records = [new_record(f"burst {n}", user="alice", now=T0) for n in range(150)]
    created = await asyncio.gather(*(store.create(record) for record in records))
    await asyncio.gather(
        *(store.transition(r.id, expected_status=r.status, changes={"notes": ["seen"]}) for r in created)
    )

    report = await verify_chain(store)
    assert report.ok, report.problems
    assert (report.entries, report.records) == (300, 150)
