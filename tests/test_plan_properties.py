"""Properties of plan validation over random and hostile input: it never crashes and never lets shell through."""

from __future__ import annotations

import shlex
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine import awscli_model
from engine.commands import ValidatedPlan
from engine.errors import PlanError, PlanValidationError
from engine.plan import CommandSpec, plan_from_data
from engine.policy import Policy
from engine.risk import Risk
from engine.validate import ALLOWED_GLOBAL_OPTIONS, SHELL_CHARACTERS, resolve_command, validate_plan, validate_text

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
POLICY = Policy()

VALID_COMMANDS = [
    "aws s3api create-bucket --bucket team-ops",
    "aws s3api put-bucket-tagging --bucket b --tagging 'TagSet=[{Key=team,Value=ops}]'",
    "aws ec2 describe-instances --filters Name=tag:env,Values=staging",
    "aws ec2 run-instances --image-id ami-1 --count 2",
    "aws s3 ls s3://b --recursive",
    "aws s3 cp s3://a/k s3://b/k",
    "aws iam list-users",
    "aws sts get-caller-identity",
]
WORDS = [
    "aws",
    "s3",
    "s3api",
    "ec2",
    "iam",
    "configure",
    "ls",
    "cp",
    "list-buckets",
    "create-bucket",
    "describe-instances",
    "run-instances",
    "--bucket",
    "--count",
    "--query",
    "--region",
    "--profile",
    "--endpoint-url",
    "--prof",
    "--cli-input-json",
    "--generate-cli-skeleton",
    "help",
    "wait",
    "--",
    "-",
    "s3://b/k",
    "/etc/passwd",
    "file:///etc/passwd",
    "https://evil.example",
    "{}",
    "[]",
    '\'{"Bucket": "b"}\'',
    "Name=x,Values=y",
    "2:3",
    "-1",
]
SHELL_FRAGMENTS = [";", "|", "||", "&", "&&", "`id`", "$(id)", "${HOME}", "$HOME", "<", ">", ">>", "2>&1", "<<<"]


def outcome(text: str) -> ValidatedPlan | None:
    """Validate; the only acceptable failures are the two plan errors."""
    try:
        return validate_text(text, POLICY)
    except (PlanError, PlanValidationError):
        return None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@SETTINGS
@given(st.text(max_size=400))
def test_random_text_never_crashes_validation(text: str) -> None:
    outcome(text)


@SETTINGS
@given(json_values)
def test_random_data_never_crashes_validation(data: Any) -> None:
    outcome(yaml.safe_dump(data))


command_line = st.lists(st.sampled_from(WORDS) | st.text(max_size=12), min_size=0, max_size=8).map(
    lambda words: " ".join(words)
)
command = st.one_of(
    st.sampled_from(VALID_COMMANDS).map(lambda text: {"cli": text}),
    command_line.map(lambda text: {"cli": text}),
    st.fixed_dictionaries(
        {
            "sdk": st.fixed_dictionaries(
                {
                    "service": st.sampled_from(["s3", "ec2", "iam", "s3api", "nope"]) | st.text(min_size=1, max_size=8),
                    "operation": st.sampled_from(["ListBuckets", "RunInstances", "list-users"])
                    | st.text(min_size=1, max_size=12),
                    "params": st.dictionaries(st.text(max_size=12), json_values, max_size=3),
                }
            )
        }
    ),
)
plan_dicts = st.fixed_dictionaries(
    {
        "summary": st.text(min_size=1, max_size=20),
        "mode": st.sampled_from(["sequential", "parallel", "dependency_graph"]),
        "commands": st.lists(
            st.tuples(
                command, st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=3), st.lists(command, max_size=2)
            ),
            min_size=1,
            max_size=4,
        ),
    }
)


def build_plan(data: dict[str, Any]) -> dict[str, Any]:
    commands = []
    for n, (spec, depends_on, rollback) in enumerate(data["commands"]):
        commands.append({"id": "abcd"[n], **spec, "depends_on": depends_on, "rollback": rollback})
    return {**data, "commands": commands}


@SETTINGS
@given(plan_dicts)
def test_random_plans_validate_or_fail_with_plan_errors_only(data: dict[str, Any]) -> None:
    try:
        plan = plan_from_data(build_plan(data))
    except PlanError:
        return
    try:
        validated = validate_plan(plan, POLICY)
    except PlanValidationError as exc:
        event("refused")
        assert exc.problems
        assert all(p.startswith(("command `", "plan: ")) for p in exc.problems), exc.problems
        return
    event("passed")
    # What passes is consistent: the plan risk covers every command and every stated risk.
    assert validated.risk >= validated.computed_risk
    assert all(validated.risk >= c.command.risk for c in validated.commands)
    for planned in validated.commands:
        for n, step in enumerate(planned.rollback):
            assert step.id == f"{planned.id}.rollback.{n}"


def unquoted_shell_characters(text: str) -> list[str]:
    """The shell characters a POSIX shell would act on outside quotes, found by the standard library's lexer.

    shlex with ``punctuation_chars`` returns every unquoted run of those characters as a token of its own,
    independently of the validator's scanner.
    """
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    tokens = list(lexer)
    found = [token for token in tokens if token and set(token) <= set(";&|<>")]
    # `$` and backticks are not punctuation to shlex: look for them in what shlex leaves unquoted.
    found += [c for c in "$`" if c in _unquoted_text(text)]
    return found


def _unquoted_text(text: str) -> str:
    kept, quote, escaped = [], "", False
    for char in text:
        if escaped:
            escaped = False
        elif quote == "'":
            quote = "" if char == "'" else quote
        elif char == "\\":
            escaped = True
        elif char in "'\"":
            quote = "" if quote == char else (quote or char)
            if quote == '"':
                continue
        elif quote != "'":
            kept.append(char)
    return "".join(kept)


@SETTINGS
@given(
    base=st.sampled_from(VALID_COMMANDS),
    fragment=st.sampled_from(SHELL_FRAGMENTS),
    cut=st.integers(min_value=0, max_value=200),
    quote=st.sampled_from(["", '"']),
    where=st.sampled_from(["plan", "rollback"]),
)
def test_no_command_a_shell_would_act_on_ever_passes(
    base: str, fragment: str, cut: int, quote: str, where: str
) -> None:
    if quote and not set(fragment) & set("$`"):
        # Inside double quotes a shell acts on `$` and backticks only; the rest is a literal value there.
        fragment = fragment + "$(id)"
    position = min(cut, len(base))
    text = f"{base[:position]}{quote}{fragment}{quote}{base[position:]}"
    command = {"id": "a", "cli": text} if where == "plan" else {"id": "a", "cli": base, "rollback": text}
    plan = plan_from_data({"summary": "s", "commands": [command]})
    # The fragment may land inside one of the base command's single-quoted values, where it is a literal;
    # everywhere else a shell would act on it, and then the command must be refused for it.
    acted_on = unquoted_shell_characters(text)
    try:
        validate_plan(plan, POLICY)
    except PlanValidationError as exc:
        if acted_on:
            assert any("shell syntax is not allowed" in problem for problem in exc.problems), exc.problems
    else:
        assert not acted_on, f"shell syntax passed: {text!r}"


@SETTINGS
@given(base=st.sampled_from(VALID_COMMANDS), char=st.sampled_from([*SHELL_CHARACTERS, "\n", "\r", "\x00"]))
def test_a_single_shell_or_control_character_passes_only_where_a_shell_would_not_act_on_it(
    base: str, char: str
) -> None:
    for position in range(len(base) + 1):
        text = base[:position] + char + base[position:]
        try:
            resolved = resolve_command(CommandSpec(cli=text), command_id="a", policy=POLICY)
        except PlanValidationError:
            continue
        assert char not in "\r\x00", f"passed: {text!r}"
        assert not unquoted_shell_characters(text), f"passed with shell syntax a shell would act on: {text!r}"
        assert "\n" not in _unquoted_text(text), f"passed with a line break outside quotes: {text!r}"
        assert resolved.cli_args == shlex.split(text)[1:]


GLOBAL_OPTIONS = sorted(awscli_model.global_option_names())


@SETTINGS
@given(
    option=st.sampled_from(GLOBAL_OPTIONS),
    length=st.integers(min_value=3, max_value=30),
    value=st.sampled_from(["", " x", "=x", " json", " 5"]),
    base=st.sampled_from(["aws s3api list-buckets", "aws ec2 describe-instances", "aws s3 ls s3://b"]),
)
def test_only_allowed_global_options_pass_in_full_or_abbreviated(
    option: str, length: int, value: str, base: str
) -> None:
    written = option[:length]
    text = f"{base} {written}{value}"
    try:
        resolved = resolve_command(CommandSpec(cli=text), command_id="a", policy=POLICY)
    except PlanValidationError:
        return
    assert written in ALLOWED_GLOBAL_OPTIONS, f"passed: {text!r}"
    assert resolved.cli_args == shlex.split(text)[1:]


@SETTINGS
@given(st.sampled_from(VALID_COMMANDS), st.sampled_from(list(Risk)))
def test_a_stated_risk_only_ever_raises_the_plan_risk(text: str, stated: Risk) -> None:
    plan = plan_from_data({"summary": "s", "risk": stated.value, "commands": [{"id": "a", "cli": text}]})
    validated = validate_plan(plan, POLICY)
    assert validated.risk == max(stated, validated.computed_risk)
    assert validated.computed_risk == validated.commands[0].command.risk
