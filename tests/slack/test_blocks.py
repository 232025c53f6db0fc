"""Block Kit payloads for plans and approvals: valid for Slack, within its limits, bound to one plan version."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.slack.blocks import (
    ACTIONS_BLOCK_ID,
    APPROVE,
    DRY_RUN,
    EDIT,
    EDIT_CALLBACK_ID,
    EDIT_NOTE_BLOCK_ID,
    EDIT_PLAN_ACTION_ID,
    EDIT_PLAN_BLOCK_ID,
    REJECT,
    REJECT_CALLBACK_ID,
    REJECT_REASON_ACTION_ID,
    REJECT_REASON_BLOCK_ID,
    ActionRef,
    ActionValueError,
    CardError,
    DryRunSummary,
    PlanCard,
    PlanEdit,
    RenderedMessage,
    edit_modal,
    ephemeral,
    escape,
    parse_action_value,
    plan_error_message,
    plan_message,
    reject_modal,
    risk_badge,
    stale_click_notice,
)
from bot.slack.blocks.mrkdwn import slack_len
from engine.commands import ResolvedCommand, ValidatedCommand, ValidatedPlan
from engine.dry_run import DRY_RUN_NOT_RUN_REASON
from engine.history.records import (
    ApprovalDecision,
    CommandStatus,
    Decision,
    ExecutionRecord,
    RecordStatus,
    RollbackSummary,
    slack_conversation_id,
)
from engine.plan import CommandSpec, Plan
from engine.results import CommandOutcome, CommandResult, PlanResult, RunState
from engine.risk import Risk, highest
from tests.slack_emulator.blocks import block_errors, view_errors

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(hours=1)
CONVERSATION = slack_conversation_id("T0123ABCD", "C0456EFGH", "1712345678.123456")
NOT_SHOWN = re.compile(r"\*(\d+) of (\d+) commands are not shown here\*")
CUT = re.compile(r"… \(([\d,]+) more characters — full text in Edit\)")
CODE_BLOCK = re.compile(r"```\n(.*?)\n```", re.DOTALL)
COMMAND_HEAD = re.compile(r"^\*(\d+)\.\* `([^`]+)` · ", re.MULTILINE)


# -- building plans and records ------------------------------------------------------------------------------


def _risk_of(operation: str) -> Risk:
    if operation.lower().startswith(("terminate", "delete", "rb")):
        return Risk.DESTRUCTIVE
    if operation.lower().startswith(("stop", "put", "create", "tag")):
        return Risk.MODIFY
    return Risk.READ_ONLY


def _resolved(command_id: str, spec: CommandSpec) -> ResolvedCommand:
    if spec.sdk is not None:
        return ResolvedCommand(
            id=command_id,
            form="sdk",
            service=spec.sdk.service,
            cli_service=spec.sdk.service,
            operation=spec.sdk.operation,
            cli_operation=spec.sdk.operation.lower(),
            params=spec.sdk.params,
            risk=_risk_of(spec.sdk.operation),
            display=spec.display,
        )
    words = (spec.cli or "").split()
    return ResolvedCommand(
        id=command_id,
        form="cli",
        service=words[1],
        cli_service=words[1],
        operation=None,
        cli_operation=words[2],
        cli_args=words[1:],
        risk=_risk_of(words[2]),
        display=spec.display,
    )


def validated(plan_data: dict[str, Any]) -> ValidatedPlan:
    """A plan resolved the way the validator would, with risk judged from the operation's verb."""
    plan = Plan.model_validate(plan_data)
    commands = [
        ValidatedCommand(
            id=command.id,
            description=command.description,
            depends_on=command.depends_on,
            command=_resolved(command.id, command),
            rollback=[_resolved(f"{command.id}.rollback.{n}", step) for n, step in enumerate(command.rollback)],
        )
        for command in plan.commands
    ]
    risk = highest([c.risk for c in commands])
    return ValidatedPlan(plan=plan, commands=commands, computed_risk=risk, risk=max(risk, plan.risk or risk))


def plan_data(*lines: str, summary: str = "Tidy up the test account", **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "commands": [{"id": f"c{i + 1}", "cli": line} for i, line in enumerate(lines)], **extra}


def record_for(
    data: dict[str, Any], *, status: RecordStatus = RecordStatus.PENDING_APPROVAL, user: str = "U0REQUEST"
) -> ExecutionRecord:
    return ExecutionRecord.new_from_plan(
        validated(data),
        conversation_id=CONVERSATION,
        requested_by=user,
        status=status,
        profile="ops",
        region="eu-west-1",
        account="123456789012",
        now=NOW,
    )


def card_for(
    data: dict[str, Any], *, approvals_required: int = 1, environment: str | None = "staging", **changes: Any
) -> PlanCard:
    record = record_for(data)
    if changes:
        record = record.model_copy(update=changes)
    return PlanCard.from_record(
        record, approvals_required=approvals_required, expires_at=EXPIRES, environment=environment
    )


def approval(
    record: ExecutionRecord, user: str, decision: Decision = Decision.APPROVE, **extra: Any
) -> ApprovalDecision:
    return ApprovalDecision(
        user=user, decision=decision, at=NOW, plan_hash=record.plan_hash, plan_version=record.plan_version, **extra
    )


def many_commands(count: int, *, width: int = 0) -> dict[str, Any]:
    """``count`` tagging commands; with ``width``, SDK calls whose display is ``width`` characters long."""
    if not width:
        lines = [f"aws ec2 create-tags --resources i-{n:08x} --tags Key=batch,Value=n{n}" for n in range(count)]
        return plan_data(*lines, summary=f"Tag {count} instances")
    commands = []
    for n in range(count):
        params: dict[str, Any] = {"Resources": [f"i-{n:08x}"], "Tags": [{"Key": "note", "Value": ""}]}
        short = len(CommandSpec(sdk={"service": "ec2", "operation": "CreateTags", "params": params}).display)
        params["Tags"][0]["Value"] = "v" * (width - short)
        commands.append({"id": f"c{n + 1}", "sdk": {"service": "ec2", "operation": "CreateTags", "params": params}})
    return {"summary": f"Tag {count} instances with long notes", "commands": commands}


SIMPLE = plan_data(
    "aws s3api list-buckets",
    "aws ec2 stop-instances --instance-ids i-0abc",
    "aws ec2 terminate-instances --instance-ids i-0def",
)


# -- reading rendered payloads ---------------------------------------------------------------------------------


def text_objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
            yield node
        for value in node.values():
            yield from text_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from text_objects(item)


def mrkdwn_texts(blocks: list[dict[str, Any]]) -> list[str]:
    return [obj["text"] for obj in text_objects(blocks) if obj["type"] == "mrkdwn"]


def section_texts(blocks: list[dict[str, Any]]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]


def command_ids_shown(blocks: list[dict[str, Any]]) -> list[str]:
    return [m.group(2) for text in section_texts(blocks) for m in COMMAND_HEAD.finditer(text)]


def not_shown(blocks: list[dict[str, Any]]) -> tuple[int, int] | None:
    for text in section_texts(blocks):
        if match := NOT_SHOWN.search(text):
            return int(match.group(1)), int(match.group(2))
    return None


def actions_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in blocks if b["type"] == "actions"]


def buttons(message: RenderedMessage) -> dict[str, dict[str, Any]]:
    (actions,) = actions_blocks(message.block_dicts())
    return {element["action_id"]: element for element in actions["elements"]}


def unescape_code(text: str) -> str:
    return html.unescape(text.replace("\u200b", ""))


def assert_valid_message(message: RenderedMessage) -> list[dict[str, Any]]:
    blocks = message.block_dicts()
    assert message.text.strip()
    assert block_errors(blocks) == []
    for data in blocks:
        parsed = Block.parse(data)
        assert parsed is not None
        parsed.validate_json()
        assert parsed.to_dict() == data
    return blocks


def assert_valid_view(view: View) -> dict[str, Any]:
    view.validate_json()
    data = view.to_dict()
    assert view_errors(data, expected_type="modal") == []
    reparsed = View(**data)
    reparsed.validate_json()
    assert reparsed.to_dict() == data
    return data


# -- every renderer passes Slack's checks ----------------------------------------------------------------------


def _finished_card(status: RecordStatus) -> PlanCard:
    record = record_for(SIMPLE)
    update: dict[str, Any] = {"approvals": [approval(record, "U0APPROVE")], "duration_seconds": 4.2, "finished_at": NOW}
    if status is RecordStatus.REJECTED:
        update["approvals"] = [approval(record, "U0REJECT", Decision.REJECT, comment="not <!here> & now")]
    record = record.model_copy(update={**update, "status": status})
    return PlanCard.from_record(record, approvals_required=1, expires_at=EXPIRES, environment=None)


RENDERERS: dict[str, Callable[[], RenderedMessage | View]] = {
    "pending plan": lambda: plan_message(card_for(SIMPLE)),
    "succeeded plan": lambda: plan_message(_finished_card(RecordStatus.SUCCEEDED)),
    "rejected plan": lambda: plan_message(_finished_card(RecordStatus.REJECTED)),
    "200-command plan": lambda: plan_message(card_for(many_commands(200))),
    "10 kB commands": lambda: plan_message(card_for(many_commands(60, width=10_240))),
    "edit modal": lambda: edit_modal(card_for(SIMPLE), card_for(SIMPLE).plan.to_yaml()),
    "edit modal with error": lambda: edit_modal(card_for(SIMPLE), "summary: x\n", error="commands: Field required"),
    "edit modal, long plan": lambda: edit_modal(
        card_for(many_commands(200)), card_for(many_commands(200)).plan.to_yaml()
    ),
    "reject modal": lambda: reject_modal(card_for(SIMPLE)),
    "ephemeral": lambda: ephemeral("You are not an approver for destructive plans."),
    "plan error": lambda: plan_error_message(["command `c1`: the program must be `aws`, not `rm`"]),
}


@pytest.mark.parametrize("name", RENDERERS)
def test_every_renderer_output_parses_back_and_passes_slacks_checks(name: str) -> None:
    rendered = RENDERERS[name]()
    if isinstance(rendered, View):
        assert_valid_view(rendered)
    else:
        assert_valid_message(rendered)
        assert len(rendered.blocks) <= 50
        assert rendered.to_dict()["text"] == rendered.text


# -- risk badges -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("risk", "badge"),
    [
        (Risk.READ_ONLY, ":large_green_circle: read-only"),
        (Risk.MODIFY, ":large_yellow_circle: modify"),
        (Risk.DESTRUCTIVE, ":red_circle: destructive"),
    ],
)
def test_risk_badge_is_an_emoji_and_a_word_per_level(risk: Risk, badge: str) -> None:
    assert risk_badge(risk) == badge


def test_plan_and_each_command_carry_their_own_risk_badge() -> None:
    blocks = plan_message(card_for(SIMPLE)).block_dicts()
    fields = "\n".join(f["text"] for b in blocks if b["type"] == "section" for f in b.get("fields", []))
    assert ":red_circle: *destructive*" in fields.split("*Order*")[0]
    commands = "\n".join(section_texts(blocks))
    assert "*1.* `c1` · :large_green_circle: *read-only*" in commands
    assert "*2.* `c2` · :large_yellow_circle: *modify*" in commands
    assert "*3.* `c3` · :red_circle: *destructive*" in commands


def test_read_only_plan_badge_is_green_and_names_the_level() -> None:
    message = plan_message(card_for(plan_data("aws s3api list-buckets")))
    fields = [f["text"] for b in message.block_dicts() for f in b.get("fields", [])]
    assert fields[0].startswith("*Risk*\n:large_green_circle: *read-only*")
    assert message.text.startswith(":large_green_circle: read-only plan awaiting approval")


# -- what the pending card shows -------------------------------------------------------------------------------


def test_pending_card_shows_order_target_requester_approvals_expiry_version_and_hash() -> None:
    record = record_for(SIMPLE)
    record = record.model_copy(update={"approvals": [approval(record, "U0FIRST")]})
    card = PlanCard.from_record(record, approvals_required=2, expires_at=EXPIRES, environment="prod")
    blocks = assert_valid_message(plan_message(card))
    fields = {f["text"].split("\n", 1)[0]: f["text"] for b in blocks for f in b.get("fields", [])}
    assert "sequential" in fields["*Order*"] and "stop at the first failure" in fields["*Order*"]
    assert fields["*Target*"] == (
        "*Target*\nprofile `ops`\nregion `eu-west-1`\nenvironment `prod`\naccount `123456789012`"
    )
    assert fields["*Requested by*"] == "*Requested by*\n<@U0REQUEST>"
    assert fields["*Approvals*"] == "*Approvals*\n1 of 2: <@U0FIRST>"
    epoch = int(EXPIRES.timestamp())
    assert fields["*Expires*"] == (f"*Expires*\n<!date^{epoch}^{{date_short_pretty}} at {{time}}|2025-03-01 13:00 UTC>")
    (context,) = [b for b in blocks if b["type"] == "context"]
    assert context["elements"][0]["text"] == (f"Plan `{record.id}` · version 1 · hash `{record.plan_hash[:12]}`")


def test_command_shows_id_dependencies_description_and_rollback_as_code() -> None:
    data = {
        "summary": "Replace the tag",
        "mode": "dependency_graph",
        "on_failure": "rollback",
        "commands": [
            {"id": "list", "cli": "aws ec2 describe-instances"},
            {
                "id": "tag",
                "cli": "aws ec2 create-tags --resources i-1 --tags Key=a,Value=b",
                "description": "Mark the instance for the *cleanup* job",
                "depends_on": ["list"],
                "rollback": ["aws ec2 delete-tags --resources i-1 --tags Key=a"],
            },
        ],
    }
    text = "\n".join(section_texts(plan_message(card_for(data)).block_dicts()))
    assert "*2.* `tag` · :large_yellow_circle: *modify* · after `list`\n" in text
    assert "Mark the instance for the *cleanup* job\n" in text
    assert "```\naws ec2 create-tags --resources i-1 --tags Key=a,Value=b\n```" in text
    assert "*Rollback:*\n```\naws ec2 delete-tags --resources i-1 --tags Key=a\n```" in text
    assert "*Rollback:* none" in text.split("*2.*")[0]
    fields = [f["text"] for b in plan_message(card_for(data)).block_dicts() for f in b.get("fields", [])]
    assert any("dependency graph" in f and "rollback steps" in f for f in fields)


def test_users_outside_slack_are_shown_as_code_not_as_mentions() -> None:
    record = record_for(SIMPLE, user="alice")
    card = PlanCard.from_record(record, approvals_required=1, expires_at=EXPIRES, environment=None)
    fields = [f["text"] for b in plan_message(card).block_dicts() for f in b.get("fields", [])]
    assert "*Requested by*\n`alice`" in fields


# -- buttons and the value that binds them ---------------------------------------------------------------------


def test_pending_card_offers_approve_reject_edit_and_dry_run_with_their_styles() -> None:
    found = buttons(plan_message(card_for(SIMPLE)))
    assert list(found) == [APPROVE, REJECT, EDIT, DRY_RUN]
    assert found[APPROVE]["style"] == "primary"
    assert found[REJECT]["style"] == "danger"
    assert "style" not in found[EDIT] and "style" not in found[DRY_RUN]
    assert [b["text"]["text"] for b in found.values()] == ["Approve", "Reject", "Edit", "Dry run"]
    (actions,) = actions_blocks(plan_message(card_for(SIMPLE)).block_dicts())
    assert actions["block_id"] == ACTIONS_BLOCK_ID


def test_button_values_round_trip_to_the_exact_plan_version() -> None:
    record = record_for(SIMPLE).model_copy(update={"plan_version": 3})
    card = PlanCard.from_record(record, approvals_required=1, expires_at=EXPIRES, environment=None)
    for element in buttons(plan_message(card)).values():
        ref = parse_action_value(element["value"])
        assert ref == ActionRef(record_id=record.id, plan_version=3, plan_hash=record.plan_hash[:12])
        assert ref.value == element["value"]
        assert ref.matches(record.id, 3, record.plan_hash)
        assert not ref.matches(record.id, 2, record.plan_hash)
        assert not ref.matches(uuid.uuid4(), 3, record.plan_hash)
        assert not ref.matches(record.id, 3, "0" * 64)


GOOD_ID = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "approve",
        f"{GOOD_ID}:1",
        f"{GOOD_ID}:1:0123456789ab:extra",
        f"{GOOD_ID.upper()}:1:0123456789ab",
        f"{GOOD_ID.replace('-', '')}:1:0123456789ab",
        f"{GOOD_ID}:0:0123456789ab",
        f"{GOOD_ID}:01:0123456789ab",
        f"{GOOD_ID}:-1:0123456789ab",
        f"{GOOD_ID}:1:0123456789a",
        f"{GOOD_ID}:1:0123456789abc",
        f"{GOOD_ID}:1:0123456789AB",
        f"{GOOD_ID}:1:0123456789ag",
        f" {GOOD_ID}:1:0123456789ab",
        f"{GOOD_ID}:1:0123456789ab\n",
        None,
        42,
    ],
)
def test_bad_action_values_are_refused_with_the_expected_form(value: object) -> None:
    with pytest.raises(ActionValueError, match="record id>:<plan version>:<12 hex digits"):
        parse_action_value(value)


def test_a_well_formed_action_value_parses() -> None:
    ref = parse_action_value(f"{GOOD_ID}:12:0123456789ab")
    assert (str(ref.record_id), ref.plan_version, ref.plan_hash) == (GOOD_ID, 12, "0123456789ab")


def test_approving_a_destructive_plan_asks_to_confirm_naming_each_destructive_command() -> None:
    approve = buttons(plan_message(card_for(SIMPLE)))[APPROVE]
    confirm = approve["confirm"]
    assert confirm["style"] == "danger"
    assert confirm["text"]["type"] == "plain_text"
    assert "c3: aws ec2 terminate-instances --instance-ids i-0def" in confirm["text"]["text"]
    assert "stop-instances" not in confirm["text"]["text"]
    assert "list-buckets" not in confirm["text"]["text"]


def test_approving_a_plan_that_destroys_nothing_needs_no_confirmation() -> None:
    data = plan_data("aws s3api list-buckets", "aws ec2 stop-instances --instance-ids i-1")
    assert "confirm" not in buttons(plan_message(card_for(data)))[APPROVE]


def test_destructive_confirmation_fits_300_characters_and_counts_commands_it_cannot_name() -> None:
    lines = [f"aws ec2 terminate-instances --instance-ids i-{n:04d} " + "--dry-run " * 20 for n in range(12)]
    approve = buttons(plan_message(card_for(plan_data(*lines))))[APPROVE]
    text = approve["confirm"]["text"]["text"]
    assert len(text) <= 300
    named = re.findall(r"^• (c\d+):", text, re.MULTILINE)
    assert named and named == [f"c{n + 1}" for n in range(len(named))]
    (more,) = re.findall(r"… and (\d+) more$", text)
    assert len(named) + int(more) == 12
    assert text.startswith("Approving lets 12 destructive commands run:")


def test_plan_marked_destructive_without_destructive_commands_still_confirms() -> None:
    data = plan_data("aws s3api list-buckets", risk="destructive")
    confirm = buttons(plan_message(card_for(data)))[APPROVE]["confirm"]
    assert "marked destructive" in confirm["text"]["text"]


# -- finished cards --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (RecordStatus.SUCCEEDED, ":white_check_mark: succeeded"),
        (RecordStatus.FAILED, ":x: failed"),
        (RecordStatus.ROLLED_BACK, ":leftwards_arrow_with_hook: rolled back"),
        (RecordStatus.REJECTED, ":no_entry: rejected"),
        (RecordStatus.EXPIRED, ":hourglass: expired"),
        (RecordStatus.CANCELLED, ":octagonal_sign: cancelled"),
        (RecordStatus.INTERRUPTED, ":warning: interrupted"),
    ],
)
def test_finished_cards_show_the_outcome_and_no_buttons(status: RecordStatus, words: str) -> None:
    message = plan_message(_finished_card(status))
    blocks = assert_valid_message(message)
    assert actions_blocks(blocks) == []
    assert not any(b["type"] == "actions" or "accessory" in b for b in blocks)
    status_text = section_texts(blocks)[0]
    assert status_text.startswith(f"*Status:* {words}")
    assert words.split(" ", 1)[1] in message.text


def test_succeeded_card_names_approvers_and_duration() -> None:
    text = section_texts(plan_message(_finished_card(RecordStatus.SUCCEEDED)).block_dicts())[0]
    assert " in 4.2 s · <!date^" in text
    assert "Approved by <@U0APPROVE>" in text


def test_rejected_card_names_who_rejected_and_their_escaped_reason() -> None:
    text = section_texts(plan_message(_finished_card(RecordStatus.REJECTED)).block_dicts())[0]
    assert "Rejected by <@U0REJECT>" in text
    assert "Reason: not &lt;!here&gt; &amp; now" in text
    assert "Nothing ran." in text


def test_failed_card_shows_the_failure_and_what_was_and_was_not_rolled_back() -> None:
    record = record_for(SIMPLE)
    commands = [
        record.commands[0].model_copy(update={"status": CommandStatus.SUCCEEDED}),
        record.commands[1].model_copy(update={"status": CommandStatus.SUCCEEDED}),
        record.commands[2].model_copy(
            update={"status": CommandStatus.FAILED, "error_code": "UnauthorizedOperation", "error_message": "no <b>"}
        ),
    ]
    record = record.model_copy(
        update={
            "status": RecordStatus.FAILED,
            "commands": commands,
            "approvals": [approval(record, "U0APPROVE")],
            "rollback": RollbackSummary(rolled_back=["c2"], not_rolled_back=["c1"]),
            "duration_seconds": 75.0,
        }
    )
    card = PlanCard.from_record(record, approvals_required=1, expires_at=EXPIRES, environment=None)
    blocks = assert_valid_message(plan_message(card))
    status_text = section_texts(blocks)[0]
    assert "in 1 min 15 s" in status_text
    assert ":x: `c3` UnauthorizedOperation: no &lt;b&gt;" in status_text
    assert "Rolled back: `c2`" in status_text
    assert "Not rolled back (check these by hand): `c1`" in status_text
    commands_text = "\n".join(section_texts(blocks)[1:])
    assert "*3.* `c3` · :red_circle: *destructive* · :x: failed" in commands_text
    assert "*1.* `c1` · :large_green_circle: *read-only* · :white_check_mark: succeeded" in commands_text


def test_running_card_has_no_buttons_and_says_it_is_running() -> None:
    record = record_for(SIMPLE)
    record = record.model_copy(update={"status": RecordStatus.RUNNING, "approvals": [approval(record, "U0A")]})
    card = PlanCard.from_record(record, approvals_required=1, expires_at=EXPIRES, environment=None)
    blocks = assert_valid_message(plan_message(card))
    assert actions_blocks(blocks) == []
    assert section_texts(blocks)[0].startswith("*Status:* :arrows_counterclockwise: running")


# -- long plans ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "width"),
    [(1, 0), (10, 0), (50, 0), (200, 0), (1, 10_240), (10, 10_240), (50, 10_240), (200, 10_240)],
)
def test_long_plans_stay_within_limits_and_account_for_every_command(count: int, width: int) -> None:
    card = card_for(many_commands(count, width=width))
    blocks = assert_valid_message(plan_message(card))
    assert len(blocks) <= 50
    assert all(slack_len(text) <= 3000 for text in section_texts(blocks))
    shown = command_ids_shown(blocks)
    ids = [c.id for c in card.commands]
    assert shown == ids[: len(shown)], "commands are shown in plan order, none skipped"
    hidden = not_shown(blocks)
    if hidden is None:
        assert shown == ids
    else:
        missing, total = hidden
        assert total == count
        assert len(shown) + missing == count
        note = next(t for t in section_texts(blocks) if NOT_SHOWN.search(t))
        assert f"`{ids[len(shown)]}`" in note and f"`{ids[-1]}`" in note
        assert "*Edit*" in note and f"cloudops history --conversation {CONVERSATION} --json" in note
    assert actions_blocks(blocks), "the buttons survive however long the plan is"


def test_two_hundred_short_commands_are_packed_so_that_all_are_shown() -> None:
    blocks = plan_message(card_for(many_commands(200))).block_dicts()
    assert command_ids_shown(blocks) == [f"c{n + 1}" for n in range(200)]
    assert not_shown(blocks) is None


def test_over_long_command_is_cut_visibly_with_the_exact_count_of_missing_characters() -> None:
    card = card_for(many_commands(1, width=10_240))
    display = card.commands[0].display
    text = section_texts(plan_message(card).block_dicts())[0]
    (code,) = CODE_BLOCK.findall(text.split("*Rollback")[0])
    (missing,) = CUT.findall(text)
    shown = unescape_code(code)
    assert display.startswith(shown)
    assert len(shown) + int(missing.replace(",", "")) == len(display)
    assert len(shown) > 1_500, "the command keeps most of the section"


def test_many_long_rollback_steps_are_cut_or_counted_and_the_command_stays_readable() -> None:
    data = {
        "summary": "Delete with a long undo",
        "commands": [
            {
                "id": "drop",
                "cli": "aws s3 rb s3://bucket-" + "b" * 2_000,
                "description": "d" * 2_000,
                "rollback": [f"aws s3 mb s3://bucket-{n}-" + "m" * 1_500 for n in range(6)],
            }
        ],
    }
    blocks = assert_valid_message(plan_message(card_for(data)))
    text = next(t for t in section_texts(blocks) if "`drop`" in t)
    assert slack_len(text) <= 3000
    assert "*Rollback* (6 steps, in order):" in text
    shown_steps = len(CODE_BLOCK.findall(text)) - 1
    more = re.findall(r"… and (\d+) more rollback steps — full text in Edit", text)
    assert shown_steps + (int(more[0]) if more else 0) == 6
    command = unescape_code(CODE_BLOCK.findall(text)[0])
    assert command.startswith("aws s3 rb s3://bucket-bbbb") and len(command) >= 1_000


def test_wide_characters_are_counted_the_way_slack_counts_them() -> None:
    data = plan_data("aws s3 ls s3://bucket --prefix " + "\U0001f600" * 4_000)
    blocks = assert_valid_message(plan_message(card_for(data)))
    assert all(slack_len(text) <= 3000 for text in section_texts(blocks))


def test_long_summary_is_cut_in_the_header_and_shown_whole_below() -> None:
    summary = "Rotate the keys " + "and more " * 200
    summary = summary[:1_990]
    blocks = assert_valid_message(plan_message(card_for(plan_data("aws s3api list-buckets", summary=summary))))
    header = blocks[0]["text"]["text"]
    assert len(header) <= 150 and header.endswith("…")
    assert summary in section_texts(blocks)[0]


# -- markup injection ------------------------------------------------------------------------------------------


def test_summaries_descriptions_and_commands_cannot_ping_or_forge_links() -> None:
    hostile = "<!channel> <!here|here> <@U0VICTIM> <https://evil.example|your bank> & co"
    data = {
        "summary": f"Routine {hostile}",
        "commands": [
            {
                "id": "c1",
                "cli": f"aws s3 cp s3://a/b s3://a/c --metadata note='{hostile}'",
                "description": hostile,
                "rollback": [f"aws s3 rm s3://a/c --exclude '{hostile}'"],
            }
        ],
    }
    record = record_for(data)
    record = record.model_copy(
        update={
            "approvals": [approval(record, "U0OK", Decision.REJECT, comment=hostile)],
            "status": RecordStatus.REJECTED,
        }
    )
    pending = plan_message(card_for(data))
    rejected = plan_message(PlanCard.from_record(record, approvals_required=1, expires_at=EXPIRES, environment=hostile))
    for message in (pending, rejected):
        texts = [message.text, *mrkdwn_texts(message.block_dicts())]
        joined = "\n".join(texts)
        for markup in ("<!channel>", "<!here", "<@U0VICTIM>", "<https://evil"):
            assert markup not in joined
        assert "&lt;!channel&gt;" in joined and "&amp; co" in joined
        assert all(
            obj.get("verbatim") is True for obj in text_objects(message.block_dicts()) if obj["type"] == "mrkdwn"
        )
    # Plain-text objects are never parsed as markup, so the header shows the summary exactly as written.
    assert pending.block_dicts()[0]["text"] == {"type": "plain_text", "text": f"Routine {hostile}", "emoji": False}


def test_backticks_in_a_command_cannot_end_its_code_block() -> None:
    data = plan_data("aws s3 ls s3://bucket/```*bold* <!channel>```")
    text = section_texts(plan_message(card_for(data)).block_dicts())[0]
    assert text.count("```") == 2, "only the block's own fences remain"
    (code,) = CODE_BLOCK.findall(text)
    assert unescape_code(code) == "aws s3 ls s3://bucket/```*bold* <!channel>```"


# -- the card model --------------------------------------------------------------------------------------------


def test_from_record_takes_risk_from_commands_and_rollback_and_order_from_the_plan() -> None:
    data = {
        "summary": "Swap",
        "mode": "dependency_graph",
        "commands": [
            {"id": "a", "cli": "aws s3api list-buckets"},
            {"id": "b", "cli": "aws s3 rb s3://x", "depends_on": ["a"], "rollback": "aws s3 mb s3://x"},
        ],
    }
    card = card_for(data)
    assert [(c.id, c.risk, c.depends_on, c.rollback) for c in card.commands] == [
        ("a", Risk.READ_ONLY, [], []),
        ("b", Risk.DESTRUCTIVE, ["a"], ["aws s3 mb s3://x"]),
    ]
    assert card.risk is Risk.DESTRUCTIVE
    assert card.target.environment == "staging" and card.target.region == "eu-west-1"
    assert card.conversation_id == CONVERSATION


def test_from_record_counts_only_approvals_given_to_the_current_version() -> None:
    record = record_for(SIMPLE)
    old = ApprovalDecision(user="U0OLD", decision=Decision.APPROVE, at=NOW, plan_hash="f" * 64, plan_version=1)
    record = record.model_copy(
        update={"plan_version": 2, "approvals": [old, approval(record.model_copy(update={"plan_version": 2}), "U0NEW")]}
    )
    card = PlanCard.from_record(record, approvals_required=2, expires_at=EXPIRES, environment=None)
    assert [a.user for a in card.approvals] == ["U0NEW"]


def test_from_record_refuses_a_record_whose_plan_does_not_hash_to_its_plan_hash() -> None:
    record = record_for(SIMPLE).model_copy(update={"plan_hash": "0" * 64})
    with pytest.raises(CardError, match="does not hash"):
        PlanCard.from_record(record, approvals_required=1, expires_at=EXPIRES, environment=None)


def test_card_refuses_times_without_a_time_zone() -> None:
    with pytest.raises(ValueError, match="time zone"):
        PlanCard.from_record(
            record_for(SIMPLE), approvals_required=1, expires_at=datetime(2025, 1, 1), environment=None
        )


def test_card_refuses_commands_that_are_not_the_plans() -> None:
    card = card_for(SIMPLE)
    with pytest.raises(ValueError, match="plan's commands"):
        PlanCard.model_validate({**card.model_dump(), "commands": [c.model_dump() for c in card.commands[:2]]})


def test_plan_edit_names_changed_added_and_removed_commands() -> None:
    old = Plan.model_validate(
        {
            "summary": "s",
            "commands": [
                {"id": "list", "cli": "aws s3 ls"},
                {"id": "tag", "cli": "aws ec2 create-tags"},
                {"id": "gone", "cli": "aws s3 ls"},
            ],
        }
    )
    new = Plan.model_validate(
        {
            "summary": "s",
            "mode": "parallel",
            "commands": [
                {"id": "list", "cli": "aws s3 ls --human"},
                {"id": "tag", "cli": "aws ec2 create-tags --x"},
                {"id": "new", "cli": "aws s3 ls"},
            ],
        }
    )
    edit = PlanEdit.between(old, new, edited_by="U0EDITOR", version=2, note="fix <!channel> typo")
    assert (edit.changed, edit.added, edit.removed, edit.settings) == (["list", "tag"], ["new"], ["gone"], ["mode"])


def test_edited_card_says_who_edited_which_version_and_what_changed() -> None:
    base = record_for(SIMPLE)
    new_data = plan_data(
        "aws s3api list-buckets",
        "aws ec2 stop-instances --instance-ids i-0abc i-0fff",
        "aws ec2 terminate-instances --instance-ids i-0def",
    )
    revised = base.with_changes(base.plan_revision(validated(new_data)))
    edit = PlanEdit.between(
        Plan.model_validate(SIMPLE),
        Plan.model_validate(new_data),
        edited_by="U0EDITOR",
        version=2,
        note="<!here> one more",
    )
    card = PlanCard.from_record(revised, approvals_required=1, expires_at=EXPIRES, environment=None, edit=edit)
    blocks = assert_valid_message(plan_message(card))
    (context,) = [b for b in blocks if b["type"] == "context"]
    texts = [e["text"] for e in context["elements"]]
    assert f"version 2 · hash `{revised.plan_hash[:12]}`" in texts[0]
    assert texts[1] == ":pencil2: edited by <@U0EDITOR>: version 2, commands changed: `c2` — “&lt;!here&gt; one more”"
    assert parse_action_value(buttons(plan_message(card))[APPROVE]["value"]).plan_version == 2


def test_edit_note_must_describe_the_current_version() -> None:
    edit = PlanEdit(edited_by="U0EDITOR", version=3)
    with pytest.raises(ValueError, match="current plan version"):
        PlanCard.from_record(
            record_for(SIMPLE).model_copy(update={"plan_version": 2}),
            approvals_required=1,
            expires_at=EXPIRES,
            environment=None,
            edit=edit,
        )


# -- dry run ---------------------------------------------------------------------------------------------------


def test_dry_run_summary_sorts_commands_by_what_the_dry_run_found() -> None:
    def outcome(cid: str, state: RunState, **extra: Any) -> CommandOutcome:
        return CommandOutcome(id=cid, display=f"aws {cid}", state=state, **extra)

    result = PlanResult(
        plan_hash="0" * 64,
        state=RunState.FAILED,
        dry_run=True,
        started_at=NOW,
        finished_at=NOW,
        duration_seconds=1.5,
        commands=[
            outcome("c1", RunState.SUCCEEDED, result=CommandResult(ok=True, executor="sdk", dry_run=True)),
            outcome("c2", RunState.SKIPPED, skipped_reason=DRY_RUN_NOT_RUN_REASON),
            outcome(
                "c3",
                RunState.FAILED,
                result=CommandResult(
                    ok=False, executor="sdk", error_code="UnauthorizedOperation", error_message="no <@U1>"
                ),
            ),
        ],
    )
    summary = DryRunSummary.from_result(result)
    assert (summary.accepted, summary.validated_only, [p.id for p in summary.failed]) == (["c1"], ["c2"], ["c3"])
    assert not summary.ok
    card = PlanCard.from_record(
        record_for(SIMPLE), approvals_required=1, expires_at=EXPIRES, environment=None, dry_run=result
    )
    blocks = assert_valid_message(plan_message(card))
    dry = next(t for t in section_texts(blocks) if t.startswith(":test_tube:"))
    assert dry.startswith(":test_tube: *Dry run* (1.5 s): 1 accepted by AWS, 1 validated only")
    assert "• `c3` would fail: UnauthorizedOperation: no &lt;@U1&gt;" in dry
    assert actions_blocks(blocks), "a dry run leaves the plan awaiting approval"


def test_dry_run_summary_refuses_a_real_run() -> None:
    result = PlanResult(
        plan_hash="0" * 64, state=RunState.SUCCEEDED, started_at=NOW, finished_at=NOW, duration_seconds=1, commands=[]
    )
    with pytest.raises(CardError, match="dry run"):
        DryRunSummary.from_result(result)


# -- modals ----------------------------------------------------------------------------------------------------


def test_edit_modal_prefills_the_yaml_and_binds_to_the_version_being_edited() -> None:
    card = card_for(SIMPLE)
    plan_yaml = card.plan.to_yaml()
    data = assert_valid_view(edit_modal(card, plan_yaml))
    assert data["callback_id"] == EDIT_CALLBACK_ID
    assert parse_action_value(data["private_metadata"]) == card.action_ref
    assert data["submit"]["text"] and data["close"]["text"]
    inputs = {b["block_id"]: b for b in data["blocks"] if b["type"] == "input"}
    element = inputs[EDIT_PLAN_BLOCK_ID]["element"]
    assert element["action_id"] == EDIT_PLAN_ACTION_ID
    assert element["multiline"] is True
    assert element["initial_value"] == plan_yaml
    assert element["max_length"] == 3000
    assert inputs[EDIT_NOTE_BLOCK_ID]["optional"] is True


def test_edit_modal_shows_why_the_last_save_failed_above_the_text_box() -> None:
    data = assert_valid_view(
        edit_modal(card_for(SIMPLE), "summary: x\n", error="commands: Field required\nmode: <!channel> is not a mode")
    )
    error = next(b["text"]["text"] for b in data["blocks"] if b["type"] == "section")
    assert error.startswith(":warning: *The edited plan was not saved:*")
    assert "• commands: Field required\n• mode: &lt;!channel&gt; is not a mode" in error
    assert [b["type"] for b in data["blocks"]].index("section") < [b["type"] for b in data["blocks"]].index("input")


def test_edit_modal_for_a_plan_over_3000_characters_shows_it_read_only_and_explains() -> None:
    card = card_for(many_commands(120))
    plan_yaml = card.plan.to_yaml()
    assert len(plan_yaml) > 3000
    data = assert_valid_view(edit_modal(card, plan_yaml))
    assert "submit" not in data
    assert not [b for b in data["blocks"] if b["type"] == "input"]
    sections = [b["text"]["text"] for b in data["blocks"] if b["type"] == "section"]
    assert f"{len(plan_yaml):,} characters" in sections[0] and "cloudops validate" in sections[0]
    assert CONVERSATION in sections[0]
    shown = "\n".join(unescape_code(code) for text in sections[1:] for code in CODE_BLOCK.findall(text))
    assert shown == plan_yaml.rstrip("\n")


def test_edit_modal_for_a_huge_plan_says_what_does_not_fit() -> None:
    card = card_for(many_commands(300, width=800))
    data = assert_valid_view(edit_modal(card, card.plan.to_yaml()))
    assert len(data["blocks"]) <= 100
    assert "do not fit in this window" in data["blocks"][-1]["text"]["text"]


def test_reject_modal_asks_for_an_optional_reason_and_binds_to_the_version() -> None:
    card = card_for(plan_data("aws s3 rb s3://x", summary="Drop <!channel> bucket"))
    data = assert_valid_view(reject_modal(card))
    assert data["callback_id"] == REJECT_CALLBACK_ID
    assert parse_action_value(data["private_metadata"]) == card.action_ref
    (reason,) = [b for b in data["blocks"] if b["type"] == "input"]
    assert reason["block_id"] == REJECT_REASON_BLOCK_ID and reason["optional"] is True
    assert reason["element"]["action_id"] == REJECT_REASON_ACTION_ID and reason["element"]["multiline"] is True
    intro = data["blocks"][0]["text"]["text"]
    assert "Drop &lt;!channel&gt; bucket" in intro and f"`{card.short_hash}`" in intro


# -- ephemeral notes and plan errors ---------------------------------------------------------------------------


def test_ephemeral_shows_the_explanation_as_a_section_with_matching_fallback() -> None:
    message = ephemeral("You are not an approver for destructive plans.", context="Ask <@U0LEAD>.")
    blocks = assert_valid_message(message)
    assert blocks[0]["text"]["text"] == "You are not an approver for destructive plans."
    assert blocks[1]["elements"][0]["text"] == "Ask <@U0LEAD>."
    assert message.text == "You are not an approver for destructive plans."


def test_ephemeral_refuses_empty_text() -> None:
    with pytest.raises(ValueError):
        ephemeral("   ")


def test_stale_click_notice_names_the_current_and_the_clicked_version() -> None:
    ref = ActionRef(record_id=uuid.uuid4(), plan_version=2, plan_hash="0123456789ab")
    message = stale_click_notice(ref, current_version=3)
    assert_valid_message(message)
    assert "version 3 is current; your click on version 2 was not counted" in message.text


def test_plan_error_message_lists_each_problem_escaped_with_quoted_parts_as_code() -> None:
    problems = [
        "command `c1`: the program must be `aws`, not `rm`",
        "command `c2`: shell syntax is not allowed: `<` (redirection); commands never run in a shell",
        "commands.0.cli: Field required\nsummary: <!channel> is too short & wrong",
    ]
    message = plan_error_message(problems)
    blocks = assert_valid_message(message)
    text = section_texts(blocks)[0]
    assert text.startswith(":x: *This plan cannot run.* 4 problems:")
    assert "• command `c1`: the program must be `aws`, not `rm`" in text
    assert "• command `c2`: shell syntax is not allowed: `&lt;` (redirection)" in text
    assert "• summary: &lt;!channel&gt; is too short &amp; wrong" in text
    assert "<!channel>" not in message.text and message.text.startswith("This plan cannot run: 4 problems.")


def test_plan_error_message_with_many_long_problems_counts_those_not_shown() -> None:
    problems = [f"command `c{n}`: " + "the request is far too long to describe " * 20 for n in range(400)]
    blocks = assert_valid_message(plan_error_message(problems))
    assert len(blocks) <= 20
    texts = section_texts(blocks)
    bullets = sum(text.count("\n• ") + text.startswith("• ") for text in texts)
    (rest,) = re.findall(r"and \*(\d+) more problems not shown\*", texts[-1])
    assert bullets + int(rest) == 400


def test_escape_turns_slack_control_characters_into_entities() -> None:
    assert escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"
    assert escape("&lt;") == "&amp;lt;", "text that looks escaped is shown as typed"
