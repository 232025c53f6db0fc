from __future__ import annotations

import json

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.plan_text import SUMMARY_MAX_CHARS, extract_plan_text, slack_markup_to_text
from engine.plan import ExecutionMode, parse_plan


def clis(text: str | None) -> list[str | None]:
    assert text is not None
    return [command.cli for command in parse_plan(text).commands]


def test_aws_lines_become_a_sequential_plan_with_numbered_steps() -> None:
    text = extract_plan_text("aws ec2 describe-instances\naws s3 ls")
    plan = parse_plan(text or "")
    assert plan.mode is ExecutionMode.SEQUENTIAL
    assert [c.id for c in plan.commands] == ["step-1", "step-2"]
    assert [c.cli for c in plan.commands] == ["aws ec2 describe-instances", "aws s3 ls"]


def test_summary_is_the_first_line_of_other_text() -> None:
    text = extract_plan_text("Stop the staging web servers:\naws ec2 stop-instances --instance-ids i-1\nthanks!")
    assert parse_plan(text or "").summary == "Stop the staging web servers"


def test_summary_without_other_text_counts_the_commands() -> None:
    assert parse_plan(extract_plan_text("aws s3 ls") or "").summary == "Run 1 aws command"
    assert parse_plan(extract_plan_text("aws s3 ls\naws sts get-caller-identity") or "").summary == (
        "Run 2 aws commands"
    )


def test_long_summary_is_cut_to_the_limit() -> None:
    text = extract_plan_text("x" * 500 + "\naws s3 ls")
    summary = parse_plan(text or "").summary
    assert len(summary) <= SUMMARY_MAX_CHARS
    assert summary.startswith("x" * 100)


def test_quotes_in_commands_survive_the_yaml_round_trip() -> None:
    line = """aws ec2 create-tags --resources i-1 --tags 'Key=Name,Value=a: "b" #c' --query "x[?y==`z`]\""""
    assert clis(extract_plan_text(line)) == [line]


def test_fenced_yaml_plan_is_returned_as_is() -> None:
    plan = "summary: Check buckets\ncommands:\n  - id: list\n    cli: aws s3 ls\n"
    text = extract_plan_text(f"Here you go\n```yaml\n{plan}```\nand aws s3 rb s3://other")
    assert text == plan
    assert clis(text) == ["aws s3 ls"]


def test_fenced_json_plan_is_returned() -> None:
    plan = {"summary": "s", "commands": [{"id": "a", "sdk": {"service": "s3", "operation": "ListBuckets"}}]}
    text = extract_plan_text(f"```json\n{json.dumps(plan, indent=2)}\n```")
    parsed = parse_plan(text or "")
    assert parsed.commands[0].sdk is not None
    assert parsed.commands[0].sdk.operation == "ListBuckets"


def test_fenced_json_with_tabs_is_rewritten_so_yaml_reads_it() -> None:
    message = '```json\n{\n\t"summary": "s",\n\t"commands": [{"id": "a", "cli": "aws s3 ls"}]\n}\n```'
    assert clis(extract_plan_text(message)) == ["aws s3 ls"]


def test_fenced_block_without_commands_is_not_a_plan_but_its_aws_lines_are() -> None:
    text = extract_plan_text("```\nfoo: bar\n```\n```bash\naws s3 ls\n```")
    assert clis(text) == ["aws s3 ls"]


def test_unfenced_yaml_plan_with_summary_and_commands_is_a_plan() -> None:
    message = "<@U0BOT> summary: list\ncommands:\n  - id: a\n    cli: aws s3 ls\n"
    assert clis(extract_plan_text(message)) == ["aws s3 ls"]


def test_chat_mentioning_commands_is_not_a_plan() -> None:
    assert extract_plan_text("commands: none yet, what do you suggest?") is None


def test_slack_entities_are_unescaped() -> None:
    text = extract_plan_text("aws ec2 describe-instances --query 'a &amp;&amp; b' --filters &lt;x&gt;")
    assert clis(text) == ["aws ec2 describe-instances --query 'a && b' --filters <x>"]


def test_escaped_entity_text_is_unescaped_once() -> None:
    assert slack_markup_to_text("a &amp;lt; b") == "a &lt; b"


def test_bot_mention_at_the_start_is_stripped() -> None:
    text = extract_plan_text("<@U123ABC> aws s3 ls")
    assert clis(text) == ["aws s3 ls"]
    assert parse_plan(text or "").summary == "Run 1 aws command"


def test_slack_auto_links_turn_back_into_their_text() -> None:
    message = "aws s3 cp <http://report.example.com|report.example.com> s3://b/ --sse-kms-key-id <mailto:a@b.io|a@b.io>"
    assert clis(extract_plan_text(message)) == ["aws s3 cp report.example.com s3://b/ --sse-kms-key-id a@b.io"]


def test_slack_mentions_channels_and_bare_links_inside_text() -> None:
    assert slack_markup_to_text("hi <@U1> in <#C9|ops> see <https://x.io> <!here>") == (
        "hi @U1 in #ops see https://x.io @here"
    )


def test_inline_code_around_a_command_is_removed() -> None:
    assert clis(extract_plan_text("please run\n`aws sts get-caller-identity`")) == ["aws sts get-caller-identity"]


def test_backslash_continuation_joins_the_next_line() -> None:
    message = "```\naws ec2 stop-instances \\\n    --instance-ids i-1 \\\n    --dry-run\n```"
    assert clis(extract_plan_text(message)) == ["aws ec2 stop-instances --instance-ids i-1 --dry-run"]


def test_escaped_trailing_backslash_is_not_a_continuation() -> None:
    message = "aws s3 ls s3://b/dir\\\\\naws s3 ls"
    assert clis(extract_plan_text(message)) == ["aws s3 ls s3://b/dir\\\\", "aws s3 ls"]


def test_dollar_prompts_and_indentation_are_removed() -> None:
    message = "  $ aws s3 ls\n$ `aws ec2 describe-vpcs`\n    aws sts get-caller-identity"
    assert clis(extract_plan_text(message)) == ["aws s3 ls", "aws ec2 describe-vpcs", "aws sts get-caller-identity"]


def test_trailing_shell_comment_is_dropped_but_quoted_hash_is_kept() -> None:
    message = "aws s3 ls # all buckets\naws ec2 create-tags --resources i-1 --tags 'Key=a,Value=#1'"
    assert clis(extract_plan_text(message)) == [
        "aws s3 ls",
        "aws ec2 create-tags --resources i-1 --tags 'Key=a,Value=#1'",
    ]


def test_backticks_inside_a_command_are_kept() -> None:
    line = "aws ec2 describe-instances --query 'Reservations[?State==`running`]'"
    assert clis(extract_plan_text(f"```\n{line}\n```")) == [line]


def test_single_line_code_block_is_a_command() -> None:
    assert clis(extract_plan_text("```aws s3 ls```")) == ["aws s3 ls"]


def test_messages_without_a_plan_give_none() -> None:
    for message in [
        "",
        "stop the staging web servers",
        "<@U123> what is running in staging?",
        "aws console is slow today",
        "why does `aws s3 ls` fail for me?",
        "awsome, thanks",
        "```\nsome output\n```",
    ]:
        assert extract_plan_text(message) is None, message


def test_prose_line_naming_a_real_service_is_a_command() -> None:
    assert clis(extract_plan_text("aws s3api list-buckets")) == ["aws s3api list-buckets"]


def test_llm_text_is_not_unescaped_as_slack_markup() -> None:
    message = "```yaml\nsummary: 'a <b|c> &amp; d'\ncommands:\n  - id: a\n    cli: aws s3 ls\n```"
    text = extract_plan_text(message, slack_markup=False)
    assert parse_plan(text or "").summary == "a <b|c> &amp; d"


_TOKEN = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S"], exclude_characters="\\#`'\"$"),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_TOKEN, min_size=1, max_size=5), min_size=1, max_size=5))
def test_generated_commands_come_back_exactly(commands: list[list[str]]) -> None:
    lines = [" ".join(["aws", "ec2", *words]) for words in commands]
    message = "```\n" + "\n".join(lines) + "\n```"
    assert clis(extract_plan_text(message, slack_markup=False)) == lines


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(message: str) -> None:
    text = extract_plan_text(message)
    if text is not None:
        assert isinstance(yaml.safe_load(text), dict)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["aws ", "```", "`", "\\\n", "\n", "$ ", "<@U1>", "&amp;", "<http://a|b>", "#", "'", '"']),
        max_size=30,
    ).map("".join)
    | st.text(alphabet="aws `\\\n$<>|&;#'\"{}:-[]", max_size=80)
)
def test_markup_heavy_text_never_raises(message: str) -> None:
    text = extract_plan_text(message)
    if text is not None:
        assert isinstance(yaml.safe_load(text), dict)
