"""The HistoryStore contract, run against Qdrant Edge and against qdrant-client local mode."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.errors import StoreError
from engine.history import qdrant_store
from engine.history.audit import verify_chain
from engine.history.chain import content_hash
from engine.history.edge import EdgeHistoryStore
from engine.history.errors import InvalidTransitionError, RecordNotFoundError
from engine.history.filters import RecordFilter
from engine.history.outcomes import apply_plan_result, record_status_for
from engine.history.qdrant_store import QdrantHistoryStore
from engine.history.records import (
    ApprovalDecision,
    CommandStatus,
    Decision,
    ExecutionRecord,
    RecordStatus,
    cli_conversation_id,
    slack_conversation_id,
)
from engine.plan import Plan
from engine.results import CommandOutcome, CommandResult, PlanResult, RunState
from engine.risk import Risk
from tests.history.builders import new_record
from tests.history.conftest import Backend

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# -- create / get / by_conversation ---------------------------------------------------------------------------


async def test_create_then_get_returns_the_record_with_store_fields_set(store: QdrantHistoryStore) -> None:
    record = new_record("Terminate the old web servers", "aws ec2 terminate-instances --instance-ids i-0abc")
    stored = await store.create(record)

    fetched = await store.get(record.id)
    assert fetched == stored
    assert fetched.version == 1
    assert fetched.audit_seq == fetched.created_seq == 1
    assert fetched.content_hash == content_hash(fetched)
    assert fetched.summary == record.summary
    assert fetched.commands[0].command == "aws ec2 terminate-instances --instance-ids i-0abc"
    assert fetched.risk is Risk.DESTRUCTIVE
    assert fetched.services == ["ec2"]
    assert Plan.model_validate(fetched.execution_plan).hash == fetched.plan_hash


async def test_get_of_an_unknown_id_is_none(store: QdrantHistoryStore) -> None:
    assert await store.get(uuid.uuid4()) is None


async def test_create_never_overwrites_an_existing_record(store: QdrantHistoryStore) -> None:
    first = await store.create(new_record("The original"))
    impostor = new_record("A replacement").model_copy(update={"id": first.id})

    with pytest.raises(StoreError, match="already exists"):
        await store.create(impostor)
    assert (await store.get(first.id)).summary == "The original"


async def test_by_conversation_lists_that_conversation_oldest_first(store: QdrantHistoryStore) -> None:
    thread = slack_conversation_id("T0TEAM", "C0CHAN", "1712345678.000100")
    later = await store.create(new_record("second", conversation_id=thread, now=T0 + timedelta(minutes=5)))
    earlier = await store.create(new_record("first", conversation_id=thread, now=T0))
    await store.create(new_record("elsewhere", now=T0 + timedelta(minutes=1)))

    listed = await store.by_conversation(thread)

    assert [r.id for r in listed] == [earlier.id, later.id]


async def test_by_conversation_pages_through_records_sharing_a_timestamp(
    store: QdrantHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qdrant_store, "_PAGE", 2)
    thread = cli_conversation_id()
    created = [await store.create(new_record(f"same moment {i}", conversation_id=thread, now=T0)) for i in range(5)]
    created.append(await store.create(new_record("a moment later", conversation_id=thread, now=T0 + timedelta(1))))

    listed = await store.by_conversation(thread)

    assert sorted(r.id for r in listed[:5]) == sorted(r.id for r in created[:5])
    assert listed[5].id == created[5].id
    assert len(listed) == 6


# -- latest and filters ---------------------------------------------------------------------------------------


async def test_latest_lists_newest_first_and_honours_the_limit(store: QdrantHistoryStore) -> None:
    offsets = [3, 0, 4, 1, 2]
    for minutes in offsets:
        await store.create(new_record(f"at {minutes}", now=T0 + timedelta(minutes=minutes)))

    newest = await store.latest(3)

    assert [r.summary for r in newest] == ["at 4", "at 3", "at 2"]


THREAD = slack_conversation_id("T0TEAM", "C0OPS", "1712345678.000200")


@pytest.fixture
async def varied(store: QdrantHistoryStore) -> QdrantHistoryStore:
    await store.create(
        new_record("alice lists buckets", "aws s3api list-buckets", user="alice", channel="C0OPS", now=T0)
    )
    await store.create(
        new_record(
            "bob stops a server",
            "aws ec2 stop-instances --instance-ids i-1",
            user="bob",
            status=RecordStatus.APPROVED,
            channel="C0DEV",
            now=T0 + timedelta(hours=1),
        )
    )
    await store.create(
        new_record(
            "alice deletes a table",
            "aws dynamodb delete-table --table-name t",
            user="alice",
            status=RecordStatus.REJECTED,
            conversation_id=THREAD,
            channel="C0OPS",
            now=T0 + timedelta(hours=2),
        )
    )
    await store.create(
        new_record(
            "carol terminates instances",
            "aws ec2 terminate-instances --instance-ids i-2",
            user="carol",
            status=RecordStatus.APPROVED,
            now=T0 + timedelta(hours=3),
        )
    )
    return store


FILTER_CASES: list[tuple[RecordFilter, list[str]]] = [
    (RecordFilter(user="alice"), ["alice deletes a table", "alice lists buckets"]),
    (RecordFilter(status="approved"), ["carol terminates instances", "bob stops a server"]),
    (RecordFilter(status=["rejected", "pending_approval"]), ["alice deletes a table", "alice lists buckets"]),
    (RecordFilter(risk="destructive"), ["carol terminates instances", "alice deletes a table"]),
    (RecordFilter(risk=["read_only", "modify"]), ["bob stops a server", "alice lists buckets"]),
    (RecordFilter(service="ec2"), ["carol terminates instances", "bob stops a server"]),
    (RecordFilter(service=["s3api", "dynamodb"]), ["alice deletes a table", "alice lists buckets"]),
    (RecordFilter(channel="C0OPS"), ["alice deletes a table", "alice lists buckets"]),
    (RecordFilter(conversation_id=THREAD), ["alice deletes a table"]),
    (RecordFilter(since=T0 + timedelta(minutes=90)), ["carol terminates instances", "alice deletes a table"]),
    (RecordFilter(until=T0 + timedelta(minutes=90)), ["bob stops a server", "alice lists buckets"]),
    (
        RecordFilter(since=T0 + timedelta(minutes=30), until=T0 + timedelta(minutes=150)),
        ["alice deletes a table", "bob stops a server"],
    ),
    (RecordFilter(user="alice", status="approved"), []),
]


async def test_latest_and_count_apply_each_filter(varied: QdrantHistoryStore) -> None:
    # One data set, every filter: creating the records once per case would be most of the suite's time.
    for filters, expected in FILTER_CASES:
        shown = filters.model_dump(exclude_defaults=True)
        assert [r.summary for r in await varied.latest(10, filters)] == expected, shown
        assert await varied.count(filters) == len(expected), shown


async def test_latest_refuses_a_limit_out_of_range(store: QdrantHistoryStore) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.latest(0)


# -- search ---------------------------------------------------------------------------------------------------


async def test_search_finds_records_by_words_in_the_prompt(varied: QdrantHistoryStore) -> None:
    await varied.create(
        new_record("Clean up", "aws s3 rm s3://tmp-bucket --recursive", prompt="purge the scratch data")
    )

    hits = await varied.search("scratch data")

    assert [h.record.summary for h in hits] == ["Clean up"]


async def test_search_for_a_command_finds_only_records_running_it(varied: QdrantHistoryStore) -> None:
    await varied.create(new_record("look around", "aws ec2 describe-instances"))

    hits = await varied.search("terminate-instances")

    assert [h.record.summary for h in hits] == ["carol terminates instances"]


async def test_search_ranks_the_closest_record_first(varied: QdrantHistoryStore) -> None:
    await varied.create(new_record("look around", "aws ec2 describe-instances"))

    hits = await varied.search("terminate instances")

    assert hits[0].record.summary == "carol terminates instances"
    assert "look around" in [h.record.summary for h in hits]
    assert hits[0].score > hits[-1].score


async def test_search_matches_resource_names_inside_paths(store: QdrantHistoryStore) -> None:
    await store.create(new_record("logs", "aws s3 ls s3://audit-logs/2024/"))
    await store.create(new_record("other logs", "aws s3 ls s3://app-logs/"))

    assert [h.record.summary for h in await store.search("audit-logs")] == ["logs"]


async def test_search_honours_filters(varied: QdrantHistoryStore) -> None:
    everyone = {h.record.summary for h in await varied.search("instances server buckets table")}
    alice_only = await varied.search("instances server buckets table", RecordFilter(user="alice"))

    assert len(everyone) == 4
    assert {h.record.summary for h in alice_only} == {"alice lists buckets", "alice deletes a table"}


async def test_search_with_only_stop_words_finds_nothing(varied: QdrantHistoryStore) -> None:
    assert await varied.search("the and of") == []


# -- transitions ----------------------------------------------------------------------------------------------


async def test_transition_applies_changes_and_bumps_the_version(store: QdrantHistoryStore) -> None:
    record = await store.create(new_record(status=RecordStatus.PENDING_APPROVAL))
    approval = ApprovalDecision(user="bob", decision=Decision.APPROVE, plan_hash=record.plan_hash, plan_version=1)

    result = await store.transition(
        record.id,
        expected_status=RecordStatus.PENDING_APPROVAL,
        expected_version=1,
        changes={"approvals": [approval]},
        new_status=RecordStatus.APPROVED,
    )

    assert result.applied
    assert result.previous_status is RecordStatus.PENDING_APPROVAL
    stored = await store.get(record.id)
    assert stored == result.record
    assert (stored.status, stored.version, stored.approvals) == (RecordStatus.APPROVED, 2, [approval])
    assert stored.updated_at > record.updated_at
    assert stored.approvals_for_current_plan() == [approval]


async def test_transition_with_a_function_sees_the_current_record(store: QdrantHistoryStore) -> None:
    record = await store.create(new_record(status=RecordStatus.RUNNING))

    result = await store.transition(
        record.id,
        expected_status=RecordStatus.RUNNING,
        changes=lambda current: {"notes": [*current.notes, f"was at version {current.version}"]},
    )

    assert result.applied
    assert result.record.status is RecordStatus.RUNNING
    assert result.record.notes == ["was at version 1"]


async def test_transition_from_a_status_the_record_is_not_in_changes_nothing(store: QdrantHistoryStore) -> None:
    record = await store.create(new_record(status=RecordStatus.PENDING_APPROVAL))

    result = await store.transition(record.id, expected_status=RecordStatus.APPROVED, new_status=RecordStatus.RUNNING)

    assert not result.applied
    assert result.conflict == "status"
    assert result.record == await store.get(record.id)
    assert (result.record.status, result.record.version) == (RecordStatus.PENDING_APPROVAL, 1)


async def test_transition_with_a_stale_version_changes_nothing(store: QdrantHistoryStore) -> None:
    record = await store.create(new_record(status=RecordStatus.PENDING_APPROVAL))
    await store.transition(record.id, expected_status=RecordStatus.PENDING_APPROVAL, changes={"link": "https://x"})

    result = await store.transition(
        record.id,
        expected_status=RecordStatus.PENDING_APPROVAL,
        expected_version=1,
        new_status=RecordStatus.APPROVED,
    )

    assert not result.applied
    assert result.conflict == "version"
    assert (result.record.version, result.record.status) == (2, RecordStatus.PENDING_APPROVAL)
    assert (await store.get(record.id)).status is RecordStatus.PENDING_APPROVAL


async def test_a_write_that_lost_the_race_is_refused_by_the_store_condition(store: QdrantHistoryStore) -> None:
    record = await store.create(new_record(status=RecordStatus.APPROVED))

    async def meanwhile_someone_cancels(current: ExecutionRecord) -> dict[str, object]:
        # Runs after this transition read the record and before it writes: another writer gets in first.
        won = await store.transition(
            record.id,
            expected_status=RecordStatus.APPROVED,
            new_status=RecordStatus.CANCELLED,
            changes={"cancelled_by": "carol"},
        )
        assert won.applied
        return {"notes": ["starting"]}

    result = await store.transition(
        record.id,
        expected_status=RecordStatus.APPROVED,
        new_status=RecordStatus.RUNNING,
        changes=meanwhile_someone_cancels,
    )

    assert not result.applied
    assert result.conflict == "race"
    assert (result.record.status, result.record.cancelled_by) == (RecordStatus.CANCELLED, "carol")
    assert (await store.get(record.id)).status is RecordStatus.CANCELLED
    assert (await verify_chain(store)).ok


async def test_fifty_concurrent_starts_have_exactly_one_winner(store: QdrantHistoryStore) -> None:
    record = await store.create(new_record(status=RecordStatus.APPROVED))

    results = await asyncio.gather(
        *(
            store.transition(
                record.id,
                expected_status=RecordStatus.APPROVED,
                expected_version=1,
                new_status=RecordStatus.RUNNING,
                changes={"notes": [f"started by worker {i}"]},
            )
            for i in range(50)
        )
    )

    winners = [r for r in results if r.applied]
    losers = [r for r in results if not r.applied]
    assert len(winners) == 1
    assert len(losers) == 49
    final = await store.get(record.id)
    assert final == winners[0].record
    assert (final.status, final.version) == (RecordStatus.RUNNING, 2)
    for loser in losers:
        assert loser.conflict in {"status", "version", "race"}
        assert (loser.record.status, loser.record.version) == (RecordStatus.RUNNING, 2)
        assert loser.record.notes == final.notes
    report = await verify_chain(store)
    assert report.ok
    assert report.entries == 2


async def test_concurrent_creates_each_get_their_own_chain_entry(store: QdrantHistoryStore) -> None:
    created = await asyncio.gather(*(store.create(new_record(f"parallel {i}")) for i in range(20)))

    stored = [await store.get(r.id) for r in created]
    assert sorted(r.created_seq for r in stored) == list(range(1, 21))
    assert [r.id async for r in store.all_in_write_order()] == [
        r.id for r in sorted(stored, key=lambda r: r.created_seq)
    ]
    report = await verify_chain(store)
    assert report.ok, report.problems
    assert (report.entries, report.records) == (20, 20)


async def test_a_finished_record_cannot_be_started_again(store: QdrantHistoryStore) -> None:
    record = await store.create(new_record(status=RecordStatus.INTERRUPTED))

    with pytest.raises(InvalidTransitionError, match="interrupted to running"):
        await store.transition(record.id, expected_status=RecordStatus.INTERRUPTED, new_status=RecordStatus.RUNNING)
    assert (await store.get(record.id)).version == 1


async def test_changes_may_not_touch_what_the_store_owns(store: QdrantHistoryStore) -> None:
    record = await store.create(new_record(status=RecordStatus.PENDING_APPROVAL))

    for changes in ({"version": 7}, {"requested_by": "mallory"}, {"status": "approved"}, {"audit_seq": 99}):
        with pytest.raises(ValueError):
            await store.transition(record.id, expected_status=RecordStatus.PENDING_APPROVAL, changes=changes)
    with pytest.raises(ValueError, match="requested_by"):
        await store.transition(
            record.id,
            expected_status=RecordStatus.PENDING_APPROVAL,
            changes=lambda current: current.model_copy(update={"requested_by": "mallory"}),
        )
    assert (await store.get(record.id)).version == 1


async def test_transition_of_an_unknown_record_raises(store: QdrantHistoryStore) -> None:
    with pytest.raises(RecordNotFoundError):
        await store.transition(uuid.uuid4(), expected_status=RecordStatus.APPROVED, new_status=RecordStatus.RUNNING)


# -- recovery -------------------------------------------------------------------------------------------------


async def test_recover_interrupted_marks_running_records_and_runs_nothing(store: QdrantHistoryStore) -> None:
    running = await store.create(
        new_record("half done", "aws s3api list-buckets", "aws ec2 describe-instances", status=RecordStatus.RUNNING)
    )
    await store.transition(
        running.id,
        expected_status=RecordStatus.RUNNING,
        changes=lambda r: {
            "commands": [
                r.commands[0].model_copy(update={"status": CommandStatus.SUCCEEDED}),
                r.commands[1].model_copy(update={"status": CommandStatus.RUNNING}),
            ]
        },
    )
    approved = await store.create(new_record("waiting", status=RecordStatus.APPROVED))

    recovered = await store.recover_interrupted()

    assert [r.id for r in recovered] == [running.id]
    after = await store.get(running.id)
    assert after.status is RecordStatus.INTERRUPTED
    assert [c.status for c in after.commands] == [CommandStatus.SUCCEEDED, CommandStatus.INTERRUPTED]
    assert "not run again" in after.notes[-1]
    assert after.finished_at is not None
    assert (await store.get(approved.id)).status is RecordStatus.APPROVED
    assert await store.recover_interrupted() == []
    assert (await verify_chain(store)).ok


# -- results and output capping -------------------------------------------------------------------------------


async def test_a_run_result_is_kept_with_output_capped_and_hashed(store: QdrantHistoryStore) -> None:
    record = await store.create(new_record("dump", "aws s3api list-buckets", status=RecordStatus.RUNNING))
    output = "HEAD-MARKER\n" + "".join(f"bucket-{i:06d}\n" for i in range(20_000)) + "TAIL-MARKER\n"
    started = datetime.now(UTC)
    result = PlanResult(
        plan_hash=record.plan_hash,
        state=RunState.SUCCEEDED,
        started_at=started,
        finished_at=started + timedelta(seconds=2),
        duration_seconds=2.0,
        commands=[
            CommandOutcome(
                id="c1",
                display="aws s3api list-buckets",
                state=RunState.SUCCEEDED,
                started_at=started,
                finished_at=started + timedelta(seconds=2),
                duration_seconds=2.0,
                result=CommandResult(ok=True, executor="sdk", output=output, exit_code=0),
            )
        ],
    )

    done = await store.transition(
        record.id,
        expected_status=RecordStatus.RUNNING,
        expected_version=1,
        changes=lambda current: apply_plan_result(current, result, output_cap_bytes=4096),
        new_status=record_status_for(result.state),
    )

    assert done.applied
    kept = (await store.get(record.id)).commands[0]
    assert kept.status is CommandStatus.SUCCEEDED
    assert kept.executor == "sdk"
    assert kept.output_truncated
    assert kept.output_bytes == len(output.encode())
    assert kept.output_sha256 == hashlib.sha256(output.encode()).hexdigest()
    assert len(kept.output.encode()) <= 4096
    assert kept.output.startswith("HEAD-MARKER") and kept.output.endswith("TAIL-MARKER\n")
    assert "bytes of output not kept in the history" in kept.output
    assert (await store.get(record.id)).status is RecordStatus.SUCCEEDED


# -- durability and failure -----------------------------------------------------------------------------------


async def test_records_survive_closing_and_reopening_the_store(backend: Backend) -> None:
    store = await backend.open()
    record = await store.create(new_record("still here", status=RecordStatus.APPROVED))
    await store.transition(record.id, expected_status=RecordStatus.APPROVED, new_status=RecordStatus.RUNNING)
    await backend.close(store)

    reopened = await backend.open()

    again = await reopened.get(record.id)
    assert (again.summary, again.status, again.version) == ("still here", RecordStatus.RUNNING, 2)
    assert [h.record.id for h in await reopened.search("still here")] == [record.id]
    assert (await verify_chain(reopened)).ok
    second = await reopened.create(new_record("after reopening"))
    assert second.audit_seq == 3


async def test_a_broken_backend_fails_closed(backend: Backend) -> None:
    store = await backend.open()
    await store.create(new_record("before"))
    await backend.break_backend(store)

    with pytest.raises(StoreError):
        await store.create(new_record("after"))


async def test_a_closed_store_refuses_every_call(store: QdrantHistoryStore) -> None:
    await store.close()

    with pytest.raises(StoreError, match="closed"):
        await store.create(new_record())
    with pytest.raises(StoreError, match="closed"):
        await store.latest()


async def test_an_unreadable_chain_head_stops_all_writes(backend: Backend) -> None:
    store = await backend.open()
    await store.create(new_record("one"))
    entry = await backend.read_entry(store, 1)
    await backend.put_entry_point(store, str(uuid.uuid5(uuid.NAMESPACE_DNS, "x")), {**entry, "seq": 2, "at": "x"})

    with pytest.raises(StoreError, match="audit chain head"):
        await store.create(new_record("two"))


# -- Edge specifics -------------------------------------------------------------------------------------------


async def test_a_second_opener_of_an_edge_store_is_told_it_is_in_use(tmp_path: Path) -> None:
    first = await EdgeHistoryStore(tmp_path).open()
    try:
        with pytest.raises(StoreError, match="in use by another process"):
            await EdgeHistoryStore(tmp_path).open()
        script = textwrap.dedent(
            f"""
            import asyncio
            from engine.history.edge import EdgeHistoryStore
            from engine.errors import StoreError
            async def main():
                try:
                    await EdgeHistoryStore({str(tmp_path)!r}).open()
                except StoreError as exc:
                    print(exc)
            asyncio.run(main())
            """
        )
        other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert "in use by another process" in other.stdout
    finally:
        await first.close()
    reopened = await EdgeHistoryStore(tmp_path).open()
    await reopened.close()


async def test_edge_records_survive_a_reopen_on_the_real_disk(tmp_path: Path) -> None:
    store = await EdgeHistoryStore(tmp_path).open()
    record = await store.create(new_record("written to disk"))
    await store.close()

    reopened = await EdgeHistoryStore(tmp_path).open()
    try:
        assert await reopened.get(record.id) == record
        assert (await verify_chain(reopened)).ok
    finally:
        await reopened.close()


async def test_edge_store_creates_range_indexes_that_order_by_needs(tmp_path: Path) -> None:
    store = await EdgeHistoryStore(tmp_path).open()
    schema = await store.run_in_shard_thread(
        lambda records, audit: (records.info().payload_schema, audit.info().payload_schema)
    )
    await store.close()

    assert {"created_ts", "created_seq", "status", "requested_by", "conversation_id"} <= set(schema[0])
    assert {"seq", "record_id"} <= set(schema[1])
