"""Secret inputs are never shown, and reads that return secrets say so: the command's display, the plan card,
the terminal and `cloudops validate --json`, from plans resolved by the real validator."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.cli_plans import validation_report
from bot.slack.blocks import PlanCard, plan_message
from bot.slack.blocks.plan_message import RETURNS_SECRETS_NOTE, destructive_confirm_text
from bot.terminal import RETURNS_SECRETS_NOTE as TERMINAL_NOTE
from bot.terminal import TerminalSink, render_plan
from engine.commands import ValidatedPlan
from engine.history.records import ExecutionRecord, RecordStatus, slack_conversation_id
from engine.plan import plan_from_data
from engine.policy import Policy
from engine.results import RunState
from engine.risk import Risk
from engine.sensitive import REDACTED
from engine.sinks import CommandStateChanged
from engine.validate import validate_plan

PASSWORD = "Sup3r-Secret-Pw!"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

CLI_LOGIN = f"aws iam create-login-profile --user-name u --password '{PASSWORD}'"
SDK_LOGIN = {"service": "iam", "operation": "CreateLoginProfile", "params": {"UserName": "u", "Password": PASSWORD}}


def validated(commands: list[dict[str, Any]], policy: Policy | None = None, **plan: Any) -> ValidatedPlan:
    return validate_plan(
        plan_from_data({"summary": "console access for u", "commands": commands, **plan}), policy or Policy()
    )


def display_of(command: dict[str, Any]) -> str:
    return validated([{"id": "c", **command}]).command("c").command.display


def record_of(plan: ValidatedPlan) -> ExecutionRecord:
    return ExecutionRecord.new_from_plan(
        plan,
        conversation_id=slack_conversation_id("T0123ABCD", "C0456EFGH", "1712345678.123456"),
        requested_by="U0REQUEST",
        status=RecordStatus.PENDING_APPROVAL,
        profile="ops",
        region="eu-west-1",
        account="123456789012",
        now=NOW,
    )


def card_of(plan: ValidatedPlan) -> PlanCard:
    return PlanCard.from_record(
        record_of(plan), approvals_required=1, expires_at=NOW + timedelta(hours=1), environment=None
    )


def rendered_card(plan: ValidatedPlan) -> str:
    message = plan_message(card_of(plan))
    return json.dumps({"text": message.text, "blocks": message.block_dicts()}, ensure_ascii=False)


# -- the display ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ({"cli": CLI_LOGIN}, f"aws iam create-login-profile --user-name u --password '{REDACTED}'"),
        (
            {"cli": f"aws iam create-login-profile --user-name u --password={PASSWORD} --password-reset-required"},
            f"aws iam create-login-profile --user-name u '--password={REDACTED}' --password-reset-required",
        ),
        (
            {"cli": f"""aws iam create-login-profile --cli-input-json '{{"UserName":"u","Password":"{PASSWORD}"}}'"""},
            f"""aws iam create-login-profile --cli-input-json '{{"UserName":"u","Password":"{REDACTED}"}}'""",
        ),
        ({"sdk": SDK_LOGIN}, f'iam:CreateLoginProfile {{"Password": "{REDACTED}", "UserName": "u"}}'),
        (
            {"cli": 'aws secretsmanager put-secret-value --secret-id db --secret-string \'{"pw":"x-Db-Pass-77q"}\''},
            f"aws secretsmanager put-secret-value --secret-id db --secret-string '{REDACTED}'",
        ),
    ],
    ids=["cli", "cli-equals", "cli-input-json", "sdk", "secret-string"],
)
def test_the_display_withholds_every_sensitive_input_value(command: dict[str, Any], shown: str) -> None:
    assert display_of(command) == shown


def test_a_value_the_text_holds_in_another_form_withholds_every_option_value() -> None:
    # JSON's `\/` is `/` once read: the value as sent is not in the text, so nothing after the operation is shown.
    text = (
        r"""aws iam create-login-profile --cli-input-json '{"UserName":"u","Password":"Pass\/word1"}' """
        "--no-password-reset-required"
    )
    assert display_of({"cli": text}) == (
        f"aws iam create-login-profile --cli-input-json '{REDACTED}' --no-password-reset-required"
    )


def test_a_short_value_is_withheld_as_a_word_without_garbling_the_rest() -> None:
    assert display_of({"cli": "aws iam create-login-profile --user-name abc-user --password abc"}) == (
        f"aws iam create-login-profile --user-name abc-user --password '{REDACTED}'"
    )


def test_a_copy_of_a_secret_in_an_ordinary_field_is_withheld_too() -> None:
    params = {"Name": "db", "SecretString": "x-Db-Pass-77q", "Description": "was x-Db-Pass-77q"}
    shown = display_of({"sdk": {"service": "secretsmanager", "operation": "CreateSecret", "params": params}})
    assert "Db-Pass" not in shown and shown.count(REDACTED) == 2


@pytest.mark.parametrize(
    "command",
    [
        {"cli": "aws ec2 describe-instances --instance-ids i-0abc"},
        {"cli": "aws s3 ls s3://bucket/prefix/"},
        {"sdk": {"service": "ec2", "operation": "DescribeInstances", "params": {"InstanceIds": ["i-0abc"]}}},
        {"cli": "aws iam create-user --user-name 'u with space'"},
    ],
)
def test_a_command_without_secret_inputs_is_shown_exactly_as_written(command: dict[str, Any]) -> None:
    assert (
        display_of(command)
        == plan_from_data({"summary": "s", "commands": [{"id": "c", **command}]}).commands[0].display
    )


def test_rollback_steps_withhold_their_secret_inputs_too() -> None:
    plan = validated(
        [{"id": "del", "cli": "aws iam delete-login-profile --user-name u", "rollback": {"sdk": SDK_LOGIN}}]
    )
    step = plan.command("del").rollback[0]
    assert PASSWORD not in step.display and REDACTED in step.display
    assert step.params == SDK_LOGIN["params"]  # the executor still gets the value


# -- where commands are shown ---------------------------------------------------------------------------------

BOTH_FORMS = [
    {"id": "cli", "cli": CLI_LOGIN, "rollback": "aws iam delete-login-profile --user-name u"},
    {"id": "sdk", "sdk": SDK_LOGIN, "rollback": {"sdk": SDK_LOGIN}},
]


def test_the_password_appears_nowhere_on_the_plan_card() -> None:
    plan = validated(BOTH_FORMS, risk="destructive")
    text = rendered_card(plan)
    assert PASSWORD not in text
    assert text.count(REDACTED) >= 3  # both commands and the SDK rollback step
    assert PASSWORD not in destructive_confirm_text(card_of(plan))


def test_the_password_appears_nowhere_in_the_record_the_card_is_built_from() -> None:
    plan = validated(BOTH_FORMS)
    assert all(PASSWORD not in step.display for c in plan.commands for step in [c.command, *c.rollback])
    assert PASSWORD not in record_of(plan).model_dump_json()


def test_the_password_appears_nowhere_in_the_terminal() -> None:
    plan = validated(BOTH_FORMS)
    assert PASSWORD not in render_plan(plan)
    assert PASSWORD not in json.dumps(validation_report(plan))
    out = io.StringIO()
    sink = TerminalSink(out, colour=False)
    for command in plan.commands:
        event = CommandStateChanged(command_id=command.id, state=RunState.RUNNING, display=command.command.display)
        asyncio.run(sink.emit(event))
    assert PASSWORD not in out.getvalue() and REDACTED in out.getvalue()


# -- reads that return secrets ------------------------------------------------------------------------------

READS = [
    {"id": "secret", "cli": "aws secretsmanager get-secret-value --secret-id db"},
    {"id": "param", "sdk": {"service": "ssm", "operation": "GetParameter", "params": {"Name": "/db/pw"}}},
    {"id": "who", "cli": "aws sts get-caller-identity"},
]


def test_a_read_that_returns_secrets_is_marked_from_the_model_in_either_form() -> None:
    plan = validated(READS)
    assert [c.command.returns_secrets for c in plan.commands] == [True, True, False]


def test_by_default_a_read_that_returns_secrets_needs_approval_like_a_change() -> None:
    policy = Policy()
    plan = validated(READS, policy)
    assert [c.risk for c in plan.commands] == [Risk.MODIFY, Risk.MODIFY, Risk.READ_ONLY]
    assert policy.required_approvals(plan.risk) == 1


@pytest.mark.parametrize("level", list(Risk))
def test_the_policy_decides_the_level_of_reads_that_return_secrets(level: Risk) -> None:
    plan = validated(READS, Policy(secret_reads=level))
    assert [c.risk for c in plan.commands] == [level, level, Risk.READ_ONLY]


def test_risk_overrides_still_raise_a_secret_read_the_policy_lets_through() -> None:
    policy = Policy(secret_reads=Risk.READ_ONLY, risk_overrides={"ssm:GetParameter": Risk.DESTRUCTIVE})
    assert [c.risk for c in validated(READS, policy).commands] == [Risk.READ_ONLY, Risk.DESTRUCTIVE, Risk.READ_ONLY]


def test_the_card_says_which_commands_return_secrets() -> None:
    card = card_of(validated(READS))
    assert [view.returns_secrets for view in card.commands] == [True, True, False]
    sections = [b["text"]["text"] for b in plan_message(card).block_dicts() if b["type"] == "section" and "text" in b]
    # Commands are packed several to a section, one entry each, separated by a blank line.
    entries = [entry for text in sections for entry in text.split("\n\n") if entry.startswith("*")]
    marked = {entry.split("`")[1]: RETURNS_SECRETS_NOTE in entry for entry in entries}
    assert marked == {"secret": True, "param": True, "who": False}


def test_the_terminal_and_the_json_report_say_which_commands_return_secrets() -> None:
    plan = validated(READS)
    lines = render_plan(plan).splitlines()
    notes = [lines[i - 1] for i, line in enumerate(lines) if line.strip() == TERMINAL_NOTE]
    assert [note.split()[1] for note in notes] == ["secret:", "param:"]
    report = validation_report(plan)
    assert [c["returns_secrets"] for c in report["commands"]] == [True, True, False]
