"""Record models, conversation ids, output capping, result folding and filters: no store involved."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from engine.history.errors import ConversationIdError
from engine.history.filters import RecordFilter, parse_time_bound
from engine.history.lexical import LexicalEncoder, query_terms
from engine.history.outcomes import apply_plan_result, record_status_for
from engine.history.output import cap_output
from engine.history.records import (
    ApprovalDecision,
    CommandStatus,
    Decision,
    RecordStatus,
    can_transition,
    cli_conversation_id,
    parse_conversation_id,
    slack_conversation_id,
)
from engine.plan import Plan
from engine.results import CommandOutcome, CommandResult, PlanResult, RollbackOutcome, RunState
from engine.risk import Risk
from tests.history.builders import new_record, validated_plan

# -- conversation ids -----------------------------------------------------------------------------------------


def test_a_slack_conversation_id_round_trips() -> None:
    value = slack_conversation_id("T024BE7LD", "C01ABCDEF", "1712345678.123456")

    ref = parse_conversation_id(value)

    assert value == "slack:T024BE7LD:C01ABCDEF:1712345678.123456"
    assert (ref.kind, ref.team, ref.channel, ref.thread_ts) == ("slack", "T024BE7LD", "C01ABCDEF", "1712345678.123456")


def test_a_cli_conversation_id_names_a_fresh_session_each_time() -> None:
    first, second = cli_conversation_id(), cli_conversation_id()

    assert first != second
    assert parse_conversation_id(first).session == uuid.UUID(first.removeprefix("cli:"))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "slack:T1:C1",
        "slack:t024:C01ABCDEF:1712345678.1",
        "slack:T024BE7LD:X01ABCDEF:1712345678.1",
        "slack:T024BE7LD:C01ABCDEF:yesterday",
        "cli:not-a-uuid",
        "cli:" + str(uuid.uuid4()).upper(),
        "teams:abc",
    ],
)
def test_a_malformed_conversation_id_is_refused_with_the_expected_forms(bad: str) -> None:
    with pytest.raises(ConversationIdError, match="slack:<team>:<channel>:<thread_ts>"):
        parse_conversation_id(bad)


def test_a_record_refuses_a_malformed_conversation_id() -> None:
    with pytest.raises(ValidationError, match="bad conversation id"):
        new_record(conversation_id="slack:nope")


# -- building records -----------------------------------------------------------------------------------------


def test_a_record_from_a_validated_plan_carries_the_plan_as_approved() -> None:
    validated = validated_plan("Stop and list", "aws ec2 stop-instances --instance-ids i-1", "aws s3api list-buckets")

    record = new_record("Stop and list", "aws ec2 stop-instances --instance-ids i-1", "aws s3api list-buckets")

    assert Plan.model_validate(record.execution_plan).hash == validated.hash == record.plan_hash
    assert record.plan_version == 1
    assert record.risk is Risk.MODIFY
    assert record.services == ["ec2", "s3api"]
    assert [(c.id, c.command, c.status) for c in record.commands] == [
        ("c1", "aws ec2 stop-instances --instance-ids i-1", CommandStatus.PENDING),
        ("c2", "aws s3api list-buckets", CommandStatus.PENDING),
    ]
    assert (record.aws_region, record.aws_profile, record.aws_account) == ("eu-west-1", "ops", "123456789012")


def test_a_plan_revision_bumps_the_plan_version_and_keeps_old_approvals_apart() -> None:
    record = new_record("First draft", "aws s3api list-buckets")
    old_approval = ApprovalDecision(user="bob", decision=Decision.APPROVE, plan_hash=record.plan_hash, plan_version=1)
    record = record.with_changes({"approvals": [old_approval]})

    revised = record.with_changes(
        record.plan_revision(validated_plan("Second draft", "aws s3api list-objects --bucket b"))
    )

    assert revised.plan_version == 2
    assert revised.summary == "Second draft"
    assert revised.approvals == [old_approval]
    assert revised.approvals_for_current_plan() == []


def test_timestamps_without_a_zone_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone info"):
        new_record(now=datetime(2024, 1, 1))


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        (RecordStatus.PENDING_APPROVAL, RecordStatus.APPROVED, True),
        (RecordStatus.APPROVED, RecordStatus.RUNNING, True),
        (RecordStatus.RUNNING, RecordStatus.INTERRUPTED, True),
        (RecordStatus.RUNNING, RecordStatus.RUNNING, True),
        (RecordStatus.PENDING_APPROVAL, RecordStatus.RUNNING, False),
        (RecordStatus.INTERRUPTED, RecordStatus.RUNNING, False),
        (RecordStatus.SUCCEEDED, RecordStatus.RUNNING, False),
        (RecordStatus.REJECTED, RecordStatus.APPROVED, False),
    ],
)
def test_the_lifecycle_allows_only_forward_moves(current: RecordStatus, new: RecordStatus, allowed: bool) -> None:
    assert can_transition(current, new) is allowed


# -- output capping -------------------------------------------------------------------------------------------


def test_output_within_the_cap_is_kept_whole() -> None:
    capped = cap_output("line one\nline two\n", 1024)

    assert (capped.text, capped.output_truncated, capped.output_bytes) == ("line one\nline two\n", False, 18)
    assert capped.output_sha256 == hashlib.sha256(b"line one\nline two\n").hexdigest()


def test_long_output_keeps_head_and_tail_and_says_how_much_is_gone() -> None:
    output = "START" + "x" * 10_000 + "END"

    capped = cap_output(output, 2048)

    assert capped.output_truncated
    assert len(capped.text.encode()) <= 2048
    assert capped.text.startswith("START") and capped.text.endswith("END")
    marker = re.search(r"\n\[\.\.\. (\d+) bytes of output not kept in the history \.\.\.\]\n", capped.text)
    assert marker is not None
    kept = len(capped.text.encode()) - len(marker[0].encode())
    assert int(marker[1]) + kept == capped.output_bytes == len(output)


@given(st.text(min_size=0, max_size=6000), st.integers(min_value=1024, max_value=4096))
def test_capped_output_never_exceeds_the_cap_nor_splits_a_character(text: str, cap: int) -> None:
    capped = cap_output(text, cap)

    assert len(capped.text.encode("utf-8", errors="surrogatepass")) <= cap
    assert "\ufffd" not in capped.text or "\ufffd" in text
    assert capped.output_bytes == len(text.encode("utf-8", errors="surrogatepass"))


def test_a_cap_below_the_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        cap_output("x", 10)


# -- folding results into a record ----------------------------------------------------------------------------


def _result(state: RunState, outcome: CommandOutcome, **extra: object) -> PlanResult:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    return PlanResult(
        plan_hash="h",
        state=state,
        started_at=now,
        finished_at=now + timedelta(seconds=3),
        duration_seconds=3.0,
        commands=[outcome],
        **extra,
    )


def test_a_failed_and_rolled_back_command_keeps_its_error_and_rollback_steps() -> None:
    record = new_record("Stop", "aws ec2 stop-instances --instance-ids i-1")
    outcome = CommandOutcome(
        id="c1",
        display="aws ec2 stop-instances --instance-ids i-1",
        state=RunState.ROLLED_BACK,
        duration_seconds=1.5,
        result=CommandResult(
            ok=False, executor="cli", output="partial\n", error_code="Throttling", error_message="Rate exceeded"
        ),
        rollback=[
            RollbackOutcome(
                command_id="c1",
                step=0,
                display="aws ec2 start-instances --instance-ids i-1",
                state=RunState.SUCCEEDED,
                result=CommandResult(ok=True, executor="cli", output="started\n", duration_seconds=0.4),
            )
        ],
    )
    result = _result(RunState.ROLLED_BACK, outcome, rolled_back=["c1"])

    updated = apply_plan_result(record, result)

    command = updated.commands[0]
    assert (command.status, command.executor, command.error_code) == (CommandStatus.ROLLED_BACK, "cli", "Throttling")
    assert command.output == "partial\n" and not command.output_truncated
    assert [(r.command, r.status, r.output) for r in command.rollback] == [
        ("aws ec2 start-instances --instance-ids i-1", CommandStatus.SUCCEEDED, "started\n")
    ]
    assert updated.rollback is not None and updated.rollback.rolled_back == ["c1"]
    assert updated.duration_seconds == 3.0
    assert record_status_for(result.state) is RecordStatus.ROLLED_BACK
    assert updated.status == record.status  # the status moves only through a transition


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (RunState.SUCCEEDED, RecordStatus.SUCCEEDED),
        (RunState.FAILED, RecordStatus.FAILED),
        (RunState.CANCELLED, RecordStatus.CANCELLED),
        (RunState.RUNNING, RecordStatus.RUNNING),
    ],
)
def test_run_states_map_to_record_statuses(state: RunState, status: RecordStatus) -> None:
    assert record_status_for(state) is status


# -- filters and times ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_relative_times_count_back_from_now(text: str, delta: timedelta) -> None:
    now = datetime(2024, 6, 1, tzinfo=UTC)

    assert parse_time_bound(text, now=now) == now - delta


def test_an_iso_date_without_a_zone_is_utc() -> None:
    assert parse_time_bound("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["7x", "yesterday", "-3d", ""])
def test_a_bad_time_is_refused_with_the_accepted_forms(bad: str) -> None:
    with pytest.raises(ValueError, match="30m, 24h, 7d"):
        parse_time_bound(bad)


def test_a_filter_window_must_be_in_order() -> None:
    with pytest.raises(ValidationError, match="after"):
        RecordFilter(since=datetime(2024, 2, 1, tzinfo=UTC), until=datetime(2024, 1, 1, tzinfo=UTC))


def test_a_filter_refuses_an_unknown_status() -> None:
    with pytest.raises(ValidationError):
        RecordFilter(status="finished")


# -- lexical terms --------------------------------------------------------------------------------------------


def test_a_compound_query_word_is_looked_up_whole() -> None:
    encoder = LexicalEncoder()

    terminate_doc = set(encoder.document("aws ec2 terminate-instances").indices)
    describe_doc = set(encoder.document("aws ec2 describe-instances").indices)
    query = set(encoder.query("terminate-instances").indices)

    assert query <= terminate_doc
    assert not query & describe_doc
    assert set(encoder.query("instances").indices) <= terminate_doc & describe_doc


def test_an_sdk_operation_name_matches_the_cli_spelling() -> None:
    encoder = LexicalEncoder()

    assert set(encoder.query("terminate-instances").indices) <= set(
        encoder.document('ec2:TerminateInstances {"InstanceIds": ["i-1"]}').indices
    )


def test_query_terms_keep_plain_words_and_join_compounds() -> None:
    assert query_terms("stop i-0abc123 now") == "stop i0abc123 now"
