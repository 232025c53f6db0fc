"""The execution service: exactly-once runs from approved records, fail-closed starts, recorded outcomes.

Most tests run plans through the real orchestrator on ``ScriptedExecutor`` (AWS is beside the point there);
the end-to-end tests run the real executors against the moto server.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from engine.approval import ApprovalService
from engine.commands import ResolvedCommand
from engine.config import EngineSettings
from engine.dry_run import DRY_RUN_NOT_RUN_REASON
from engine.errors import StoreError
from engine.execution import TERMINAL_CONFIRMATION, ExecutionRefused, ExecutionService, RunOutcome, recover
from engine.executors.base import ExecutionContext
from engine.history.audit import verify_chain
from engine.history.edge import EdgeHistoryStore
from engine.history.qdrant_store import QdrantHistoryStore
from engine.history.records import CommandStatus, Decision, ExecutionRecord, RecordStatus, cli_conversation_id
from engine.orchestrator import Cancellation, Orchestrator
from engine.policy import Policy
from engine.results import Attempt, CommandResult, RunState
from engine.risk import Risk
from engine.runtime import execution_context
from engine.sinks import ListSink, NullSink
from engine.validate import validate_text
from tests.fakes import Script, ScriptedExecutor
from tests.stores import ChangeAfterRead

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")

REGION = "us-east-1"
CONTEXT = ExecutionContext(region=REGION)

BUCKET_PLAN = """
summary: Create the reports bucket
commands:
  - {id: make, cli: aws s3api create-bucket --bucket reports}
  - {id: list, cli: aws s3api list-buckets}
"""
FINAL_STATUSES = {
    RecordStatus.SUCCEEDED,
    RecordStatus.FAILED,
    RecordStatus.ROLLED_BACK,
    RecordStatus.CANCELLED,
    RecordStatus.INTERRUPTED,
}


def policy(**overrides: object) -> Policy:
    base: dict[str, object] = {
        "approvers": {Risk.MODIFY: ["UBOB"], Risk.DESTRUCTIVE: ["UBOB", "UCAROL"]},
        "min_approvals": {Risk.READ_ONLY: 0, Risk.MODIFY: 1, Risk.DESTRUCTIVE: 2},
    }
    base.update(overrides)
    return Policy.model_validate(base)


def settings() -> EngineSettings:
    return EngineSettings(retry={"max_attempts": 2, "base_delay_seconds": 0.05}, command_timeout_seconds=60)


def scripted_service(
    store: Any, executor: ScriptedExecutor, *, on: Policy | None = None, **kwargs: Any
) -> ExecutionService:
    return ExecutionService(
        store, on or policy(), settings(), orchestrator=Orchestrator(executor, max_parallel=4), **kwargs
    )


async def approved_record(store: Any, text: str = BUCKET_PLAN) -> ExecutionRecord:
    """A plan proposed by UALICE and approved by UBOB, the way the approval service does it."""
    approvals = ApprovalService(store, policy())
    record = await approvals.propose(
        validate_text(text, policy()), conversation_id=cli_conversation_id(), requested_by="UALICE", region=REGION
    )
    for approver in ("UBOB", "UCAROL")[: record.approvals_required or 0]:
        outcome = await approvals.decide(
            record.id, user=approver, decision="approve", plan_version=1, plan_hash=record.plan_hash
        )
        record = outcome.record
    assert record.status is RecordStatus.APPROVED
    return record


class FailingWrites:
    """The real store, except that creates, or transitions into ``into``, raise ``StoreError`` (the first
    ``times`` of them, or all): a disk that fills up or a server that goes away at that moment."""

    def __init__(
        self,
        inner: Any,
        *,
        into: set[RecordStatus] | frozenset[RecordStatus] = frozenset(),
        creates: bool = False,
        times: int | None = None,
    ) -> None:
        self._inner = inner
        self._into = set(into)
        self._creates = creates
        self._times = times
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _fail(self) -> None:
        if self._times is None or self.failed < self._times:
            self.failed += 1
            raise StoreError("history store: write failed: No space left on device")

    async def create(self, record: ExecutionRecord) -> ExecutionRecord:
        if self._creates:
            self._fail()
        return await self._inner.create(record)

    async def transition(self, record_id: Any, **kwargs: Any) -> Any:
        if kwargs.get("new_status") in self._into:
            self._fail()
        return await self._inner.transition(record_id, **kwargs)


@pytest.fixture
def executor() -> ScriptedExecutor:
    return ScriptedExecutor(default=Script(sleep=0.02, lines=["ok"]))


# -- exactly once ---------------------------------------------------------------------------------------------


async def test_an_approved_record_runs_exactly_once_under_50_concurrent_calls(any_store: QdrantHistoryStore) -> None:
    executor = ScriptedExecutor(default=Script(sleep=0.05, lines=["done"]))
    service = scripted_service(any_store, executor)
    record = await approved_record(any_store)

    outcomes = await asyncio.gather(
        *(
            service.run_approved(record.id, context=CONTEXT, sink=NullSink(), started_by=f"worker-{n}")
            for n in range(50)
        )
    )

    started = [o for o in outcomes if o.started]
    assert len(started) == 1
    assert executor.order == ["make", "list"]
    winner = started[0].record
    assert winner is not None and winner.status is RecordStatus.SUCCEEDED
    for outcome in outcomes:
        if not outcome.started:
            assert outcome.reason is not None
            assert outcome.reason.startswith(("already running", "already finished: succeeded"))
            assert f"(started by {winner.started_by})" in outcome.reason
    final = await any_store.get(record.id)
    assert final is not None and final.status is RecordStatus.SUCCEEDED
    assert [c.status for c in final.commands] == [CommandStatus.SUCCEEDED, CommandStatus.SUCCEEDED]
    assert (await verify_chain(any_store)).ok


async def test_a_caller_that_read_the_record_before_another_started_it_does_not_run_it(
    store: EdgeHistoryStore,
) -> None:
    executor = ScriptedExecutor(scripts={"make": Script(sleep=0.2)})
    interleaved = ChangeAfterRead(store)
    slow = scripted_service(interleaved, executor)
    other = scripted_service(store, executor)
    record = await approved_record(store)
    running: list[asyncio.Task[RunOutcome]] = []

    async def other_starts() -> None:
        running.append(
            asyncio.create_task(other.run_approved(record.id, context=CONTEXT, sink=NullSink(), started_by="UBOB"))
        )
        while not executor.ran("make"):
            await asyncio.sleep(0.01)

    interleaved.meanwhile = other_starts
    late = await slow.run_approved(record.id, context=CONTEXT, sink=NullSink(), started_by="UCAROL")
    first = await running[0]

    assert first.started and not late.started
    assert late.reason == "already running (started by UBOB)"
    assert executor.order == ["make", "list"]


async def test_a_finished_record_does_not_run_again(store: EdgeHistoryStore, executor: ScriptedExecutor) -> None:
    service = scripted_service(store, executor)
    record = await approved_record(store)
    first = await service.run_approved(record.id, context=CONTEXT, sink=NullSink(), started_by="UBOB")
    again = await service.run_approved(record.id, context=CONTEXT, sink=NullSink(), started_by="UCAROL")

    assert first.started and not again.started
    assert again.reason == "already finished: succeeded (started by UBOB)"
    assert len(executor.calls) == 2


# -- what may run ---------------------------------------------------------------------------------------------


async def test_a_record_whose_stored_plan_changed_after_approval_is_refused_and_failed(
    store: EdgeHistoryStore, executor: ScriptedExecutor
) -> None:
    service = scripted_service(store, executor)
    record = await approved_record(store)
    tampered = dict(record.execution_plan)
    tampered["commands"] = [{"id": "make", "cli": "aws s3api delete-bucket --bucket reports"}]
    await store.transition(record.id, expected_status=RecordStatus.APPROVED, changes={"execution_plan": tampered})

    outcome = await service.run_approved(record.id, context=CONTEXT, sink=NullSink())

    assert not outcome.started
    assert "changed after approval" in (outcome.reason or "")
    assert executor.calls == []
    assert outcome.record is not None and outcome.record.status is RecordStatus.FAILED
    assert any(note.startswith("refused before running") for note in outcome.record.notes)
    assert {c.status for c in outcome.record.commands} == {CommandStatus.SKIPPED}


async def test_a_pending_record_is_refused_and_left_pending(
    store: EdgeHistoryStore, executor: ScriptedExecutor
) -> None:
    service = scripted_service(store, executor)
    record = await ApprovalService(store, policy()).propose(
        validate_text(BUCKET_PLAN, policy()), conversation_id=cli_conversation_id(), requested_by="UALICE"
    )

    outcome = await service.run_approved(record.id, context=CONTEXT, sink=NullSink())

    assert not outcome.started
    assert outcome.reason == "this plan is not approved yet"
    assert executor.calls == []
    assert await store.get(record.id) == record


async def test_a_record_marked_approved_without_its_quorum_is_refused(
    store: EdgeHistoryStore, executor: ScriptedExecutor
) -> None:
    service = scripted_service(store, executor)
    record = await store.create(
        ExecutionRecord.new_from_plan(
            validate_text(BUCKET_PLAN, policy()),
            conversation_id=cli_conversation_id(),
            requested_by="UALICE",
            status=RecordStatus.APPROVED,
            approvals_required=1,
        )
    )

    outcome = await service.run_approved(record.id, context=CONTEXT, sink=NullSink())

    assert not outcome.started
    assert "holds 0 of the 1 approvals" in (outcome.reason or "")
    assert executor.calls == []
    assert outcome.record is not None and outcome.record.status is RecordStatus.FAILED


async def test_a_plan_the_current_policy_denies_is_not_run(store: EdgeHistoryStore, executor: ScriptedExecutor) -> None:
    record = await approved_record(store)
    service = scripted_service(store, executor, on=policy(deny=["s3:CreateBucket"]))

    outcome = await service.run_approved(record.id, context=CONTEXT, sink=NullSink())

    assert not outcome.started
    assert "current policy refuses this plan" in (outcome.reason or "")
    assert "denied by policy rule `s3:CreateBucket`" in (outcome.reason or "")
    assert executor.calls == []
    assert (await store.get(record.id)).status is RecordStatus.FAILED  # type: ignore[union-attr]


async def test_a_plan_the_current_policy_rates_riskier_than_approved_is_not_run(
    store: EdgeHistoryStore, executor: ScriptedExecutor
) -> None:
    record = await approved_record(store)
    stricter = policy(risk_overrides={"s3:CreateBucket": Risk.DESTRUCTIVE})
    service = scripted_service(store, executor, on=stricter)

    outcome = await service.run_approved(record.id, context=CONTEXT, sink=NullSink())

    assert not outcome.started
    assert "rates this plan destructive, above the modify it was approved at" in (outcome.reason or "")
    assert executor.calls == []


async def test_a_context_for_another_region_is_refused_and_the_record_left_as_it_was(
    store: EdgeHistoryStore, executor: ScriptedExecutor
) -> None:
    service = scripted_service(store, executor)
    record = await approved_record(store)

    with pytest.raises(ExecutionRefused, match="approved for region 'us-east-1', not 'eu-west-1'"):
        await service.run_approved(record.id, context=ExecutionContext(region="eu-west-1"), sink=NullSink())
    assert executor.calls == []
    assert await store.get(record.id) == record


async def test_run_approved_does_not_take_a_dry_run_context(
    store: EdgeHistoryStore, executor: ScriptedExecutor
) -> None:
    service = scripted_service(store, executor)
    record = await approved_record(store)

    with pytest.raises(ExecutionRefused, match="use run_dry"):
        await service.run_approved(record.id, context=CONTEXT.model_copy(update={"dry_run": True}), sink=NullSink())
    assert await store.get(record.id) == record


# -- failing closed -------------------------------------------------------------------------------------------


async def test_a_closed_store_runs_nothing(store: EdgeHistoryStore, executor: ScriptedExecutor) -> None:
    service = scripted_service(store, executor)
    record = await approved_record(store)
    await store.close()

    with pytest.raises(ExecutionRefused, match="nothing ran") as refused:
        await service.run_approved(record.id, context=CONTEXT, sink=NullSink())
    assert isinstance(refused.value.__cause__, StoreError)
    assert executor.calls == []


async def test_a_start_that_cannot_be_recorded_runs_nothing(
    store: EdgeHistoryStore, executor: ScriptedExecutor
) -> None:
    record = await approved_record(store)
    service = scripted_service(FailingWrites(store, into={RecordStatus.RUNNING}), executor)

    with pytest.raises(ExecutionRefused, match="could not record the run, so nothing ran"):
        await service.run_approved(record.id, context=CONTEXT, sink=NullSink())
    assert executor.calls == []
    assert (await store.get(record.id)).status is RecordStatus.APPROVED  # type: ignore[union-attr]


async def test_run_local_runs_nothing_when_its_record_cannot_be_created(
    store: EdgeHistoryStore, executor: ScriptedExecutor
) -> None:
    service = scripted_service(store, executor)
    await store.run_in_shard_thread(lambda records, audit: records.close())  # the disk under the store is gone

    with pytest.raises(ExecutionRefused, match="nothing ran"):
        await service.run_local(
            validate_text(BUCKET_PLAN, policy()),
            conversation_id=cli_conversation_id(),
            requested_by="operator",
            context=CONTEXT,
            sink=NullSink(),
        )
    assert executor.calls == []


# -- recording the outcome ------------------------------------------------------------------------------------


async def test_the_final_write_is_retried_until_it_lands(store: EdgeHistoryStore, executor: ScriptedExecutor) -> None:
    record = await approved_record(store)
    flaky = FailingWrites(store, into=FINAL_STATUSES, times=2)
    service = scripted_service(flaky, executor, final_write_backoff_seconds=0.01)

    outcome = await service.run_approved(record.id, context=CONTEXT, sink=NullSink())

    assert outcome.started and outcome.stored and outcome.reason is None
    assert flaky.failed == 2
    assert (await store.get(record.id)).status is RecordStatus.SUCCEEDED  # type: ignore[union-attr]


async def test_a_result_that_cannot_be_stored_is_still_returned_and_start_up_marks_the_record_interrupted(
    store: EdgeHistoryStore, executor: ScriptedExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    record = await approved_record(store)
    broken = FailingWrites(store, into=FINAL_STATUSES)
    service = scripted_service(broken, executor, final_write_attempts=3, final_write_backoff_seconds=0.01)

    with caplog.at_level(logging.WARNING, logger="engine.execution"):
        outcome = await service.run_approved(record.id, context=CONTEXT, sink=NullSink())

    assert outcome.started and not outcome.stored
    assert outcome.result is not None and outcome.result.ok
    assert "could not be updated" in (outcome.reason or "")
    assert broken.failed == 3
    assert any("could not be stored after 3 attempts" in message for message in caplog.messages)
    assert (await store.get(record.id)).status is RecordStatus.RUNNING  # type: ignore[union-attr]

    recovered = await recover(store)
    assert [r.id for r in recovered] == [record.id]
    assert recovered[0].status is RecordStatus.INTERRUPTED
    assert len(executor.calls) == 2, "recovery never runs anything again"


async def test_measured_times_survive_the_store_so_the_audit_chain_verifies(store: EdgeHistoryStore) -> None:
    # 17-digit values like these come back from Qdrant Edge one unit in the last place off.
    awkward = [0.021279235830317014, 0.059951072896201524, 0.041407952594966116]

    async def run_command(command: ResolvedCommand, context: ExecutionContext, sink: Any) -> CommandResult:
        now = datetime.now(UTC)
        attempts = [
            Attempt(number=n, started_at=now, finished_at=now, ok=True, delay_before_seconds=delay)
            for n, delay in enumerate(awkward, start=1)
        ]
        return CommandResult(ok=True, executor="measured", attempts=attempts, duration_seconds=awkward[0])

    service = ExecutionService(store, policy(), settings(), orchestrator=Orchestrator(run_command))
    record = await approved_record(store)

    outcome = await service.run_approved(record.id, context=CONTEXT, sink=NullSink())

    assert outcome.started and outcome.stored
    report = await verify_chain(store)
    assert report.ok, report.problems
    stored = await store.get(record.id)
    assert stored is not None
    # Stored to fifteen significant digits, the precision every JSON parser reads back exactly.
    assert [a.delay_before_seconds for a in stored.commands[0].attempts] == [float(f"{v:.15g}") for v in awkward]


async def test_recover_marks_records_left_running_as_interrupted_and_they_never_run(
    store: EdgeHistoryStore, executor: ScriptedExecutor
) -> None:
    service = scripted_service(store, executor)
    left_running = await store.create(
        ExecutionRecord.new_from_plan(
            validate_text(BUCKET_PLAN, policy()),
            conversation_id=cli_conversation_id(),
            requested_by="UALICE",
            status=RecordStatus.RUNNING,
        )
    )
    untouched = await approved_record(store)

    recovered = await service.recover()

    assert [r.id for r in recovered] == [left_running.id]
    assert recovered[0].status is RecordStatus.INTERRUPTED
    assert (await store.get(untouched.id)) == untouched
    again = await service.run_approved(left_running.id, context=CONTEXT, sink=NullSink())
    assert not again.started and again.reason == "already finished: interrupted"
    assert executor.calls == []


async def test_a_run_whose_task_is_cancelled_is_recorded_interrupted(store: EdgeHistoryStore) -> None:
    executor = ScriptedExecutor(scripts={"list": Script(hang=True)})
    service = scripted_service(store, executor)
    record = await approved_record(store)

    task = asyncio.create_task(service.run_approved(record.id, context=CONTEXT, sink=NullSink()))
    while not executor.ran("list"):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    final = await store.get(record.id)
    assert final is not None and final.status is RecordStatus.INTERRUPTED
    assert [c.status for c in final.commands] == [CommandStatus.SUCCEEDED, CommandStatus.INTERRUPTED]
    assert any("its task was cancelled" in note for note in final.notes)


async def test_a_run_cancelled_by_a_user_is_recorded_cancelled_by_them(store: EdgeHistoryStore) -> None:
    executor = ScriptedExecutor(scripts={"make": Script(hang=True)})
    service = scripted_service(store, executor)
    record = await approved_record(store)
    cancellation = Cancellation()

    task = asyncio.create_task(
        service.run_approved(record.id, context=CONTEXT, sink=NullSink(), cancellation=cancellation)
    )
    while not executor.ran("make"):
        await asyncio.sleep(0.01)
    cancellation.cancel("UCAROL")
    outcome = await task

    assert outcome.started and outcome.result is not None and outcome.result.state is RunState.CANCELLED
    assert outcome.record is not None and outcome.record.status is RecordStatus.CANCELLED
    assert outcome.record.cancelled_by == "UCAROL"
    assert not executor.ran("list")


# -- the command line -----------------------------------------------------------------------------------------


async def test_run_local_stores_an_approved_then_succeeded_record(
    store: EdgeHistoryStore, executor: ScriptedExecutor
) -> None:
    service = scripted_service(store, executor)
    validated = validate_text(BUCKET_PLAN, policy())
    conversation = cli_conversation_id()

    outcome = await service.run_local(
        validated,
        conversation_id=conversation,
        requested_by="operator",
        user_prompt="make the bucket",
        context=CONTEXT,
        sink=NullSink(),
    )

    assert outcome.started and outcome.result is not None and outcome.result.ok
    (record,) = await store.by_conversation(conversation)
    assert record.status is RecordStatus.SUCCEEDED
    assert (record.requested_by, record.started_by, record.user_prompt) == ("operator", "operator", "make the bucket")
    (approval,) = record.approvals
    assert (approval.user, approval.decision, approval.comment) == ("operator", Decision.APPROVE, TERMINAL_CONFIRMATION)
    assert (approval.plan_version, approval.plan_hash) == (1, validated.hash)
    assert [c.executor for c in record.commands] == ["scripted", "scripted"]
    assert record.aws_region == REGION
    assert executor.order == ["make", "list"]


async def test_run_local_with_a_dry_run_context_stores_a_dry_run_record(store: EdgeHistoryStore) -> None:
    executor = ScriptedExecutor()
    service = scripted_service(store, executor)
    text = """
summary: Launch one instance
commands:
  - id: launch
    sdk: {service: ec2, operation: RunInstances, params: {ImageId: ami-12c6146b, MinCount: 1, MaxCount: 1}}
  - {id: make, cli: aws s3api create-bucket --bucket reports}
"""
    conversation = cli_conversation_id()

    outcome = await service.run_local(
        validate_text(text, policy()),
        conversation_id=conversation,
        requested_by="operator",
        context=CONTEXT.model_copy(update={"dry_run": True}),
        sink=NullSink(),
    )

    assert outcome.result is not None and outcome.result.dry_run
    (call,) = executor.calls
    assert call.context.dry_run and call.command.params == {
        "ImageId": "ami-12c6146b",
        "MinCount": 1,
        "MaxCount": 1,
        "DryRun": True,
    }
    (record,) = await store.by_conversation(conversation)
    assert record.dry_run and record.status is RecordStatus.SUCCEEDED and record.approvals == []


# -- against AWS (moto) with the real executors ----------------------------------------------------------------


async def test_an_approved_s3_plan_runs_against_aws_and_its_record_keeps_the_results(
    aws: str, store: EdgeHistoryStore
) -> None:
    text = """
summary: Reports bucket, tagged
commands:
  - {id: make, cli: aws s3api create-bucket --bucket reports-e2e}
  - id: tag
    sdk:
      service: s3
      operation: PutBucketTagging
      params: {Bucket: reports-e2e, Tagging: {TagSet: [{Key: team, Value: ops}]}}
  - {id: list, cli: aws s3api list-buckets}
"""
    engine_settings = settings()
    service = ExecutionService(store, policy(), engine_settings)
    record = await approved_record(store, text)
    sink = ListSink()

    outcome = await service.run_approved(
        record.id, context=execution_context(engine_settings, region=REGION), sink=sink, started_by="UBOB"
    )

    assert outcome.started and outcome.stored
    assert outcome.result is not None and outcome.result.ok, outcome.result
    s3 = boto3.client("s3")
    assert "reports-e2e" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_bucket_tagging(Bucket="reports-e2e")["TagSet"] == [{"Key": "team", "Value": "ops"}]
    stored = await store.get(record.id)
    assert stored is not None and stored.status is RecordStatus.SUCCEEDED
    assert stored.started_at is not None and stored.finished_at is not None and stored.duration_seconds
    by_id = {c.id: c for c in stored.commands}
    assert all(c.status is CommandStatus.SUCCEEDED for c in stored.commands)
    assert all(len(c.attempts) >= 1 and c.attempts[-1].ok for c in stored.commands)
    assert by_id["tag"].executor == "sdk"
    assert "reports-e2e" in by_id["list"].output
    assert (await verify_chain(store)).ok


async def test_a_failing_plan_is_rolled_back_and_recorded_rolled_back(aws: str, store: EdgeHistoryStore) -> None:
    text = """
summary: Bucket, then tag a bucket that does not exist
on_failure: rollback
commands:
  - id: make
    cli: aws s3api create-bucket --bucket rollback-e2e
    rollback: aws s3api delete-bucket --bucket rollback-e2e
  - id: tag
    sdk: {service: s3, operation: PutBucketTagging, params: {Bucket: no-such-bucket-e2e, Tagging: {TagSet: []}}}
"""
    engine_settings = settings()
    service = ExecutionService(store, policy(), engine_settings)
    record = await approved_record(store, text)

    outcome = await service.run_approved(
        record.id, context=execution_context(engine_settings, region=REGION), sink=NullSink()
    )

    assert outcome.started and outcome.result is not None
    assert outcome.result.state is RunState.ROLLED_BACK
    stored = await store.get(record.id)
    assert stored is not None and stored.status is RecordStatus.ROLLED_BACK
    assert stored.rollback is not None and stored.rollback.rolled_back == ["make"]
    by_id = {c.id: c for c in stored.commands}
    assert by_id["make"].status is CommandStatus.ROLLED_BACK
    assert [step.status for step in by_id["make"].rollback] == [CommandStatus.SUCCEEDED]
    assert by_id["tag"].status is CommandStatus.FAILED and by_id["tag"].error_code == "NoSuchBucket"
    assert "rollback-e2e" not in [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]


async def test_a_dry_run_changes_nothing_and_leaves_the_approved_record_untouched(
    aws: str, store: EdgeHistoryStore
) -> None:
    text = """
summary: Launch one instance and make a bucket
commands:
  - id: launch
    sdk: {service: ec2, operation: RunInstances, params: {ImageId: ami-12c6146b, MinCount: 1, MaxCount: 1}}
  - {id: make, cli: aws s3api create-bucket --bucket dry-run-e2e}
"""
    engine_settings = settings()
    service = ExecutionService(store, policy(), engine_settings)
    record = await approved_record(store, text)
    context = execution_context(engine_settings, region=REGION)

    result = await service.run_dry(record.id, requested_by="UCAROL", context=context, sink=NullSink())

    assert result.dry_run
    assert result.command("launch").state is RunState.SUCCEEDED
    assert result.command("make").skipped_reason == DRY_RUN_NOT_RUN_REASON
    assert boto3.client("ec2").describe_instances()["Reservations"] == []
    assert "dry-run-e2e" not in [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    assert await store.get(record.id) == record
    original, dry = await store.by_conversation(record.conversation_id)
    assert original == record
    assert dry.dry_run and dry.dry_run_of == record.id and dry.plan_hash == record.plan_hash
    assert (dry.requested_by, dry.status) == ("UCAROL", RecordStatus.SUCCEEDED)

    refused = await service.run_approved(dry.id, context=context, sink=NullSink())
    assert not refused.started and "dry run" in (refused.reason or "")

    real = await service.run_approved(record.id, context=context, sink=NullSink())
    assert real.started and real.result is not None and real.result.ok
    assert "dry-run-e2e" in [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
