"""The approval state machine against real history stores: votes, quorum, races, binding, expiry, edits."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from engine.approval import ApprovalError, ApprovalService, DecisionOutcome
from engine.commands import ValidatedPlan
from engine.errors import StoreError
from engine.history.audit import verify_chain
from engine.history.edge import EdgeHistoryStore
from engine.history.qdrant_store import QdrantHistoryStore
from engine.history.records import Decision, ExecutionRecord, RecordStatus, cli_conversation_id
from engine.policy import Policy
from engine.risk import Risk
from engine.validate import validate_text
from tests.stores import ChangeAfterRead

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

READ_ONLY = """
summary: List the buckets
commands:
  - {id: list, cli: aws s3api list-buckets}
"""
MODIFY = """
summary: Create the reports bucket
commands:
  - {id: make, cli: aws s3api create-bucket --bucket reports}
"""
MODIFY_EDITED = """
summary: Create the reports bucket, tagged
commands:
  - {id: make, cli: aws s3api create-bucket --bucket reports-2024}
  - {id: tag, cli: "aws s3api put-bucket-tagging --bucket reports-2024 --tagging TagSet=[{Key=team,Value=ops}]"}
"""
DESTRUCTIVE = """
summary: Remove the old reports bucket
commands:
  - {id: drop, cli: aws s3api delete-bucket --bucket old-reports}
"""
DESTRUCTIVE_EDITED = """
summary: Remove the old reports bucket
commands:
  - {id: drop, cli: aws s3api delete-bucket --bucket older-reports}
"""


def policy(**overrides: object) -> Policy:
    base: dict[str, object] = {
        "approvers": {
            Risk.MODIFY: ["UALICE", "UBOB", "S0SRE"],
            Risk.DESTRUCTIVE: ["UALICE", "UBOB", "UCAROL", "UDAVE", "UERIN"],
        },
        "min_approvals": {Risk.READ_ONLY: 0, Risk.MODIFY: 1, Risk.DESTRUCTIVE: 2},
        "self_approval": {Risk.READ_ONLY: True, Risk.MODIFY: True, Risk.DESTRUCTIVE: False},
        "approval_ttl_minutes": 30,
    }
    base.update(overrides)
    return Policy.model_validate(base)


def plan(text: str, on: Policy | None = None) -> ValidatedPlan:
    return validate_text(text, on or policy())


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(store: EdgeHistoryStore, clock: Clock) -> ApprovalService:
    return ApprovalService(store, policy(), clock=clock)


async def propose(service: ApprovalService, text: str, *, by: str = "UALICE") -> ExecutionRecord:
    return await service.propose(
        plan(text, service.policy),
        conversation_id=cli_conversation_id(),
        requested_by=by,
        user_prompt="please",
        channel="C0OPS",
        region="us-east-1",
        environment="staging",
    )


async def vote(
    service: ApprovalService,
    record: ExecutionRecord,
    user: str,
    decision: str = "approve",
    *,
    groups: frozenset[str] = frozenset(),
    comment: str | None = None,
) -> DecisionOutcome:
    return await service.decide(
        record.id,
        user=user,
        user_groups=groups,
        decision=decision,  # type: ignore[arg-type]
        plan_version=record.plan_version,
        plan_hash=record.plan_hash,
        comment=comment,
    )


def denied(record: ExecutionRecord) -> list[str]:
    return [a.user for a in record.approvals if a.decision is Decision.DENIED]


# -- proposing ------------------------------------------------------------------------------------------------


async def test_propose_stores_a_pending_request_with_its_quorum_and_expiry(
    service: ApprovalService, store: EdgeHistoryStore
) -> None:
    record = await propose(service, DESTRUCTIVE)

    assert record.status is RecordStatus.PENDING_APPROVAL
    assert record.risk is Risk.DESTRUCTIVE
    assert record.approvals_required == 2
    assert record.expires_at == T0 + timedelta(minutes=30)
    assert (record.environment, record.channel, record.aws_region) == ("staging", "C0OPS", "us-east-1")
    assert await store.get(record.id) == record


async def test_read_only_plan_is_approved_at_once_with_a_note_saying_why(service: ApprovalService) -> None:
    record = await propose(service, READ_ONLY)

    assert record.status is RecordStatus.APPROVED
    assert record.approvals_required == 0
    assert record.approvals == []
    assert any("auto_run_read_only" in note for note in record.notes)


async def test_read_only_plan_waits_for_a_vote_when_the_policy_asks_for_one(
    store: EdgeHistoryStore, clock: Clock
) -> None:
    strict = policy(auto_run_read_only=False, min_approvals={Risk.READ_ONLY: 1}, approvers={Risk.READ_ONLY: ["UBOB"]})
    service = ApprovalService(store, strict, clock=clock)
    record = await propose(service, READ_ONLY)

    assert record.status is RecordStatus.PENDING_APPROVAL
    assert record.approvals_required == 1


async def test_a_request_proposed_twice_under_one_id_is_stored_once(
    service: ApprovalService, store: EdgeHistoryStore
) -> None:
    record_id = uuid.uuid4()
    conversation = cli_conversation_id()
    first = await service.propose(
        plan(MODIFY), conversation_id=conversation, requested_by="UALICE", record_id=record_id
    )

    with pytest.raises(StoreError, match="already exists"):
        await service.propose(plan(MODIFY), conversation_id=conversation, requested_by="UBOB", record_id=record_id)
    assert first.id == record_id
    assert await store.by_conversation(conversation) == [first]


async def test_propose_refuses_a_malformed_conversation_id(service: ApprovalService) -> None:
    with pytest.raises(ApprovalError, match="conversation"):
        await service.propose(plan(MODIFY), conversation_id="not-a-conversation", requested_by="UALICE")


# -- who may approve --------------------------------------------------------------------------------------------


async def test_listed_approver_approves_a_modify_plan(service: ApprovalService) -> None:
    record = await propose(service, MODIFY, by="UZED")
    outcome = await vote(service, record, "UBOB", comment="looks right")

    assert outcome.accepted and outcome.now_approved and outcome.quorum_reached
    assert outcome.reason is None
    assert outcome.record.status is RecordStatus.APPROVED
    (approval,) = outcome.record.approvals
    assert (approval.user, approval.decision, approval.comment) == ("UBOB", Decision.APPROVE, "looks right")
    assert (approval.plan_version, approval.plan_hash) == (1, record.plan_hash)
    assert approval.at == T0


async def test_user_not_listed_is_refused_and_the_attempt_is_kept_as_denied(service: ApprovalService) -> None:
    record = await propose(service, MODIFY, by="UZED")
    outcome = await vote(service, record, "UMALLORY")

    assert not outcome.accepted
    assert "not an approver for modify plans" in (outcome.reason or "")
    assert outcome.record.status is RecordStatus.PENDING_APPROVAL
    assert denied(outcome.record) == ["UMALLORY"]
    assert outcome.record.approvals_for_current_plan()[0].comment.startswith("tried to approve")
    assert outcome.approvals == 0


async def test_member_of_an_approver_group_may_approve(service: ApprovalService) -> None:
    record = await propose(service, MODIFY, by="UZED")
    outcome = await vote(service, record, "UFRANK", groups=frozenset({"S0SRE"}))

    assert outcome.accepted and outcome.now_approved
    assert [a.user for a in outcome.record.approvals] == ["UFRANK"]


async def test_membership_of_an_unlisted_group_does_not_help(service: ApprovalService) -> None:
    record = await propose(service, MODIFY, by="UZED")
    outcome = await vote(service, record, "UFRANK", groups=frozenset({"S0DEVS"}))

    assert not outcome.accepted
    assert denied(outcome.record) == ["UFRANK"]


async def test_requester_may_not_approve_their_own_destructive_plan(service: ApprovalService) -> None:
    record = await propose(service, DESTRUCTIVE, by="UALICE")
    outcome = await vote(service, record, "UALICE")

    assert not outcome.accepted
    assert "their own destructive plan" in (outcome.reason or "")
    assert denied(outcome.record) == ["UALICE"]


async def test_requester_may_approve_their_own_modify_plan_when_the_policy_allows(service: ApprovalService) -> None:
    record = await propose(service, MODIFY, by="UALICE")
    outcome = await vote(service, record, "UALICE")

    assert outcome.accepted and outcome.now_approved


async def test_self_approval_of_modify_is_refused_when_the_policy_says_so(
    store: EdgeHistoryStore, clock: Clock
) -> None:
    service = ApprovalService(store, policy(self_approval={Risk.MODIFY: False}), clock=clock)
    record = await propose(service, MODIFY, by="UALICE")
    outcome = await vote(service, record, "UALICE")

    assert not outcome.accepted
    assert denied(outcome.record) == ["UALICE"]


async def test_with_no_approvers_configured_nobody_can_approve(store: EdgeHistoryStore, clock: Clock) -> None:
    service = ApprovalService(store, Policy(), clock=clock)
    record = await propose(service, MODIFY, by="UALICE")
    outcome = await vote(service, record, "UALICE")

    assert not outcome.accepted
    assert "names no approvers for modify plans" in (outcome.reason or "")
    assert outcome.record.status is RecordStatus.PENDING_APPROVAL
    assert denied(outcome.record) == ["UALICE"]


# -- quorum -------------------------------------------------------------------------------------------------------


async def test_one_approval_is_not_enough_when_two_are_required(service: ApprovalService) -> None:
    record = await propose(service, DESTRUCTIVE, by="UALICE")
    first = await vote(service, record, "UBOB")

    assert first.accepted and not first.now_approved and not first.quorum_reached
    assert (first.approvals, first.approvals_required) == (1, 2)
    assert first.record.status is RecordStatus.PENDING_APPROVAL

    second = await vote(service, record, "UCAROL")
    assert second.now_approved
    assert second.record.status is RecordStatus.APPROVED
    assert [a.user for a in second.record.approvals] == ["UBOB", "UCAROL"]


async def test_the_same_approver_twice_counts_once(service: ApprovalService) -> None:
    record = await propose(service, DESTRUCTIVE, by="UALICE")
    await vote(service, record, "UBOB")
    again = await vote(service, record, "UBOB")

    assert again.accepted and again.already_counted and not again.now_approved
    assert "counts once" in (again.reason or "")
    assert again.record.status is RecordStatus.PENDING_APPROVAL
    assert [a.user for a in again.record.approvals] == ["UBOB"]


async def test_concurrent_approvers_count_once_each_and_exactly_one_caller_approves(
    any_store: QdrantHistoryStore,
) -> None:
    service = ApprovalService(any_store, policy())
    record = await propose(service, DESTRUCTIVE, by="UALICE")
    voters = ["UBOB", "UCAROL", "UDAVE", "UERIN"]

    outcomes = await asyncio.gather(*(vote(service, record, user) for user in voters))

    assert sum(o.now_approved for o in outcomes) == 1
    accepted = sorted(user for user, o in zip(voters, outcomes, strict=True) if o.accepted)
    assert len(accepted) == 2
    final = await any_store.get(record.id)
    assert final is not None and final.status is RecordStatus.APPROVED
    approvals = [a.user for a in final.approvals if a.decision is Decision.APPROVE]
    assert sorted(approvals) == accepted
    for user, outcome in zip(voters, outcomes, strict=True):
        if not outcome.accepted:
            assert outcome.reason == "this plan is already approved", user
    assert (await verify_chain(any_store)).ok


async def test_a_vote_that_lands_between_another_votes_read_and_write_is_not_lost(
    store: EdgeHistoryStore, clock: Clock
) -> None:
    interleaved = ChangeAfterRead(store)
    slow = ApprovalService(interleaved, policy(), clock=clock)  # type: ignore[arg-type]
    other = ApprovalService(store, policy(), clock=clock)
    record = await propose(other, DESTRUCTIVE, by="UALICE")
    carol: list[DecisionOutcome] = []

    async def carol_votes() -> None:
        carol.append(await vote(other, record, "UCAROL"))

    interleaved.meanwhile = carol_votes
    bob = await vote(slow, record, "UBOB")

    assert carol[0].accepted and not carol[0].now_approved
    assert bob.accepted and bob.now_approved
    assert [a.user for a in bob.record.approvals] == ["UCAROL", "UBOB"]
    assert bob.record.status is RecordStatus.APPROVED


async def test_an_edit_racing_another_edit_is_refused_as_stale(store: EdgeHistoryStore, clock: Clock) -> None:
    interleaved = ChangeAfterRead(store)
    slow = ApprovalService(interleaved, policy(), clock=clock)  # type: ignore[arg-type]
    other = ApprovalService(store, policy(), clock=clock)
    record = await propose(other, MODIFY, by="UALICE")

    async def bob_edits() -> None:
        await other.edit(record.id, plan(MODIFY_EDITED), editor="UBOB", plan_version=1, plan_hash=record.plan_hash)

    interleaved.meanwhile = bob_edits
    with pytest.raises(ApprovalError, match="version 2 is current"):
        await slow.edit(record.id, plan(DESTRUCTIVE), editor="UALICE", plan_version=1, plan_hash=record.plan_hash)
    final = await store.get(record.id)
    assert final is not None and [e.by for e in final.edits] == ["UBOB"]


async def test_the_same_approver_clicking_twice_at_once_counts_once(any_store: QdrantHistoryStore) -> None:
    service = ApprovalService(any_store, policy())
    record = await propose(service, DESTRUCTIVE, by="UALICE")

    outcomes = await asyncio.gather(*(vote(service, record, "UBOB") for _ in range(3)))

    assert all(o.accepted for o in outcomes)
    assert sum(o.already_counted for o in outcomes) == 2
    final = await any_store.get(record.id)
    assert final is not None and final.status is RecordStatus.PENDING_APPROVAL
    assert [a.user for a in final.approvals] == ["UBOB"]


async def test_a_stricter_policy_raises_the_quorum_of_a_request_already_out(
    store: EdgeHistoryStore, clock: Clock
) -> None:
    record = await propose(ApprovalService(store, policy(), clock=clock), MODIFY, by="UZED")
    stricter = ApprovalService(store, policy(min_approvals={Risk.MODIFY: 2}), clock=clock)

    first = await vote(stricter, record, "UALICE")
    assert not first.now_approved and first.approvals_required == 2
    second = await vote(stricter, record, "UBOB")
    assert second.now_approved


# -- binding to the plan shown -------------------------------------------------------------------------------------


async def test_a_click_on_an_edited_plan_is_refused_and_kept_under_the_old_version(service: ApprovalService) -> None:
    original = await propose(service, DESTRUCTIVE, by="UALICE")
    await service.edit(
        original.id,
        plan(DESTRUCTIVE_EDITED),
        editor="UALICE",
        plan_version=original.plan_version,
        plan_hash=original.plan_hash,
    )
    outcome = await vote(service, original, "UBOB")

    assert not outcome.accepted
    assert "this plan was edited; version 2 is current" in (outcome.reason or "")
    (attempt,) = outcome.record.approvals
    assert (attempt.decision, attempt.plan_version, attempt.plan_hash) == (Decision.DENIED, 1, original.plan_hash)
    assert outcome.record.approvals_for_current_plan() == []


async def test_a_click_with_another_hash_is_refused(service: ApprovalService) -> None:
    record = await propose(service, MODIFY, by="UZED")
    forged = "0" * 64
    outcome = await service.decide(
        record.id, user="UBOB", decision="approve", plan_version=record.plan_version, plan_hash=forged
    )

    assert not outcome.accepted
    assert outcome.record.status is RecordStatus.PENDING_APPROVAL
    assert denied(outcome.record) == ["UBOB"]


async def test_the_short_hash_a_button_carries_binds_but_a_shorter_one_does_not(service: ApprovalService) -> None:
    record = await propose(service, MODIFY, by="UZED")
    too_short = await service.decide(
        record.id, user="UBOB", decision="approve", plan_version=1, plan_hash=record.plan_hash[:8]
    )
    assert not too_short.accepted

    short = await service.decide(
        record.id, user="UBOB", decision="approve", plan_version=1, plan_hash=record.plan_hash[:12]
    )
    assert short.accepted and short.now_approved
    assert short.record.approvals[-1].plan_hash == record.plan_hash


async def test_a_decision_that_is_neither_approve_nor_reject_is_a_caller_error(service: ApprovalService) -> None:
    record = await propose(service, MODIFY, by="UZED")
    with pytest.raises(ApprovalError, match="approve` or `reject"):
        await service.decide(record.id, user="UBOB", decision="denied", plan_version=1, plan_hash=record.plan_hash)  # type: ignore[arg-type]


# -- states -------------------------------------------------------------------------------------------------------


async def test_a_vote_on_an_approved_plan_is_refused_with_its_state(service: ApprovalService) -> None:
    record = await propose(service, MODIFY, by="UZED")
    await vote(service, record, "UBOB")
    late = await vote(service, record, "UALICE")

    assert not late.accepted
    assert late.reason == "this plan is already approved"
    assert [a.user for a in late.record.approvals] == ["UBOB"]


async def test_an_expired_request_is_refused_and_marked_expired(service: ApprovalService, clock: Clock) -> None:
    record = await propose(service, DESTRUCTIVE, by="UALICE")
    await vote(service, record, "UBOB")
    clock.advance(minutes=31)
    outcome = await vote(service, record, "UCAROL")

    assert not outcome.accepted
    assert "expired" in (outcome.reason or "")
    assert outcome.record.status is RecordStatus.EXPIRED
    assert [a.user for a in outcome.record.approvals] == ["UBOB"]
    assert any("1 of 2 approvals" in note for note in outcome.record.notes)


async def test_a_request_on_its_last_minute_still_takes_votes(service: ApprovalService, clock: Clock) -> None:
    record = await propose(service, MODIFY, by="UZED")
    clock.advance(minutes=30)
    assert (await vote(service, record, "UBOB")).now_approved


async def test_expire_due_expires_only_requests_past_their_expiry(
    service: ApprovalService, store: EdgeHistoryStore, clock: Clock
) -> None:
    old = await propose(service, MODIFY, by="UZED")
    clock.advance(minutes=20)
    fresh = await propose(service, MODIFY, by="UZED")
    approved = await propose(service, READ_ONLY)
    clock.advance(minutes=15)

    expired = await service.expire_due()

    assert [r.id for r in expired] == [old.id]
    assert (await store.get(old.id)).status is RecordStatus.EXPIRED  # type: ignore[union-attr]
    assert (await store.get(fresh.id)).status is RecordStatus.PENDING_APPROVAL  # type: ignore[union-attr]
    assert (await store.get(approved.id)).status is RecordStatus.APPROVED  # type: ignore[union-attr]
    assert await service.expire_due() == []


# -- rejecting -----------------------------------------------------------------------------------------------------


async def test_an_approver_rejects_with_a_reason(service: ApprovalService) -> None:
    record = await propose(service, DESTRUCTIVE, by="UALICE")
    await vote(service, record, "UBOB")
    outcome = await vote(service, record, "UCAROL", "reject", comment="wrong bucket")

    assert outcome.accepted and outcome.now_rejected
    assert outcome.record.status is RecordStatus.REJECTED
    rejection = outcome.record.approvals[-1]
    assert (rejection.user, rejection.decision, rejection.comment) == ("UCAROL", Decision.REJECT, "wrong bucket")
    assert any("rejected by UCAROL" in note and "wrong bucket" in note for note in outcome.record.notes)
    assert (await vote(service, record, "UDAVE")).reason == "this plan was rejected by UCAROL"


async def test_the_requester_may_withdraw_their_plan(service: ApprovalService) -> None:
    record = await propose(service, DESTRUCTIVE, by="UZED")
    outcome = await vote(service, record, "UZED", "reject")

    assert outcome.accepted and outcome.record.status is RecordStatus.REJECTED
    assert any("withdrawn by the requester" in note for note in outcome.record.notes)


async def test_someone_neither_requester_nor_approver_cannot_reject(service: ApprovalService) -> None:
    record = await propose(service, MODIFY, by="UZED")
    outcome = await vote(service, record, "UMALLORY", "reject")

    assert not outcome.accepted
    assert outcome.record.status is RecordStatus.PENDING_APPROVAL
    assert denied(outcome.record) == ["UMALLORY"]


# -- editing -------------------------------------------------------------------------------------------------------


async def test_an_edit_makes_a_new_version_whose_approvals_start_from_nothing(
    service: ApprovalService, clock: Clock
) -> None:
    record = await propose(service, DESTRUCTIVE, by="UALICE")
    await vote(service, record, "UBOB")
    clock.advance(minutes=10)
    edited_plan = plan(MODIFY_EDITED)

    edited = await service.edit(
        record.id,
        edited_plan,
        editor="UALICE",
        plan_version=record.plan_version,
        plan_hash=record.plan_hash,
        note="create instead of delete",
    )

    assert (edited.plan_version, edited.plan_hash) == (2, edited_plan.hash)
    assert edited.status is RecordStatus.PENDING_APPROVAL
    assert edited.risk is Risk.MODIFY and edited.approvals_required == 1
    assert edited.expires_at == T0 + timedelta(minutes=40)
    assert edited.approvals_for_current_plan() == []
    (old_vote,) = edited.approvals
    assert (old_vote.user, old_vote.plan_version, old_vote.plan_hash) == ("UBOB", 1, record.plan_hash)
    (entry,) = edited.edits
    assert (entry.by, entry.from_version, entry.to_version) == ("UALICE", 1, 2)
    assert (entry.from_hash, entry.to_hash) == (record.plan_hash, edited_plan.hash)
    assert (entry.added, entry.removed, entry.settings) == (["make", "tag"], ["drop"], ["summary"])
    assert (entry.from_risk, entry.to_risk, entry.note) == (Risk.DESTRUCTIVE, Risk.MODIFY, "create instead of delete")
    assert [c.id for c in edited.commands] == ["make", "tag"]

    approved = await vote(service, edited, "UBOB")
    assert approved.now_approved


async def test_editing_an_approved_plan_sends_it_back_for_approval(service: ApprovalService) -> None:
    record = await propose(service, DESTRUCTIVE, by="UALICE")
    await vote(service, record, "UBOB")
    approved = (await vote(service, record, "UCAROL")).record
    assert approved.status is RecordStatus.APPROVED

    edited = await service.edit(
        record.id, plan(DESTRUCTIVE_EDITED), editor="UALICE", plan_version=1, plan_hash=approved.plan_hash
    )

    assert edited.status is RecordStatus.PENDING_APPROVAL
    assert edited.approvals_for_current_plan() == []
    assert edited.edits[0].changed == ["drop"]


async def test_a_stale_edit_is_refused(service: ApprovalService) -> None:
    record = await propose(service, MODIFY, by="UALICE")
    await service.edit(record.id, plan(MODIFY_EDITED), editor="UALICE", plan_version=1, plan_hash=record.plan_hash)

    with pytest.raises(ApprovalError, match="version 2 is current"):
        await service.edit(record.id, plan(MODIFY), editor="UBOB", plan_version=1, plan_hash=record.plan_hash)


async def test_an_edit_by_someone_neither_requester_nor_approver_is_refused(service: ApprovalService) -> None:
    record = await propose(service, MODIFY, by="UALICE")
    with pytest.raises(ApprovalError, match="only the requester or an approver"):
        await service.edit(
            record.id, plan(MODIFY_EDITED), editor="UMALLORY", plan_version=1, plan_hash=record.plan_hash
        )


async def test_an_edit_that_changes_nothing_is_refused(service: ApprovalService) -> None:
    record = await propose(service, MODIFY, by="UALICE")
    with pytest.raises(ApprovalError, match="nothing changed"):
        await service.edit(record.id, plan(MODIFY), editor="UALICE", plan_version=1, plan_hash=record.plan_hash)


async def test_a_finished_plan_cannot_be_edited(service: ApprovalService) -> None:
    record = await propose(service, MODIFY, by="UALICE")
    await vote(service, record, "UBOB", "reject")
    with pytest.raises(ApprovalError, match="rejected"):
        await service.edit(record.id, plan(MODIFY_EDITED), editor="UALICE", plan_version=1, plan_hash=record.plan_hash)


async def test_the_audit_chain_holds_over_a_whole_approval_history(
    service: ApprovalService, store: EdgeHistoryStore
) -> None:
    record = await propose(service, DESTRUCTIVE, by="UALICE")
    await vote(service, record, "UMALLORY")
    await vote(service, record, "UBOB")
    edited = await service.edit(
        record.id, plan(DESTRUCTIVE_EDITED), editor="UALICE", plan_version=1, plan_hash=record.plan_hash
    )
    await vote(service, edited, "UBOB")
    await vote(service, edited, "UCAROL")

    report = await verify_chain(store)
    assert report.ok, report
    final = await store.get(record.id)
    assert final is not None and final.version == 6
