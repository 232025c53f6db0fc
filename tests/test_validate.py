"""Plan validation: valid plans resolve to the request the aws CLI would send; every rule refuses with a reason."""

from __future__ import annotations

import os
import re
import socket
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine import awscli_model
from engine.commands import ResolvedCommand, ValidatedPlan
from engine.errors import PlanError, PlanValidationError
from engine.plan import CommandSpec, SdkCall
from engine.policy import Policy
from engine.risk import Risk
from engine.validate import resolve_command, validate_text

OPEN = Policy()


def plan_text(*commands: dict[str, Any], **fields: Any) -> str:
    return yaml.safe_dump({"summary": "test plan", **fields, "commands": list(commands)}, sort_keys=False)


def cli(text: str, policy: Policy = OPEN) -> ResolvedCommand:
    return resolve_command(CommandSpec(cli=text), command_id="c", policy=policy)


def sdk(service: str, operation: str, params: dict[str, Any] | None = None, policy: Policy = OPEN) -> ResolvedCommand:
    spec = CommandSpec(sdk=SdkCall(service=service, operation=operation, params=params or {}))
    return resolve_command(spec, command_id="c", policy=policy)


def problems_of(text: str, policy: Policy = OPEN) -> list[str]:
    with pytest.raises(PlanValidationError) as caught:
        cli(text, policy)
    assert caught.value.problems, "a refusal must say why"
    return caught.value.problems


def refused_for(text: str, fragment: str, policy: Policy = OPEN) -> None:
    problems = problems_of(text, policy)
    assert any(fragment in problem for problem in problems), problems
    assert all(problem.startswith("command `c`: ") for problem in problems), problems


def plan_problems(text: str, policy: Policy = OPEN) -> list[str]:
    with pytest.raises(PlanValidationError) as caught:
        validate_text(text, policy)
    return caught.value.problems


# ---------------------------------------------------------------------------------------------------------
# Valid plans.

SPEC_EXAMPLE = plan_text(
    {
        "id": "create",
        "description": "Create the bucket",
        "cli": "aws s3api create-bucket --bucket team-ops-artifacts",
        "rollback": "aws s3api delete-bucket --bucket team-ops-artifacts",
    },
    {
        "id": "tag",
        "depends_on": ["create"],
        "cli": "aws s3api put-bucket-tagging --bucket team-ops-artifacts --tagging 'TagSet=[{Key=team,Value=ops}]'",
        "timeout_seconds": 30,
    },
    {"id": "list", "sdk": {"service": "s3", "operation": "ListBuckets"}},
    mode="dependency_graph",
)


def test_spec_example_resolves_every_command_to_the_request_it_sends() -> None:
    validated = validate_text(SPEC_EXAMPLE, OPEN)

    assert isinstance(validated, ValidatedPlan)
    assert [c.id for c in validated.commands] == ["create", "tag", "list"]
    create, tag, listing = (c.command for c in validated.commands)
    assert (create.form, create.service, create.cli_service, create.operation, create.cli_operation) == (
        "cli",
        "s3",
        "s3api",
        "CreateBucket",
        "create-bucket",
    )
    assert create.cli_args == ["s3api", "create-bucket", "--bucket", "team-ops-artifacts"]
    assert create.params == {"Bucket": "team-ops-artifacts"}
    assert create.display == "aws s3api create-bucket --bucket team-ops-artifacts"
    assert tag.params == {"Bucket": "team-ops-artifacts", "Tagging": {"TagSet": [{"Key": "team", "Value": "ops"}]}}
    assert tag.timeout_seconds == 30
    assert validated.command("tag").depends_on == ["create"]
    assert (listing.form, listing.operation, listing.cli_service, listing.cli_operation) == (
        "sdk",
        "ListBuckets",
        "s3api",
        "list-buckets",
    )
    assert listing.display == "s3:ListBuckets {}"
    assert listing.risk is Risk.READ_ONLY
    assert create.risk is Risk.MODIFY
    assert validated.services == ["s3"]


def test_rollback_steps_are_resolved_with_their_own_id_and_risk_but_do_not_raise_the_plan_risk() -> None:
    validated = validate_text(SPEC_EXAMPLE, OPEN)

    (step,) = validated.command("create").rollback
    assert step.id == "create.rollback.0"
    assert step.operation == "DeleteBucket"
    assert step.params == {"Bucket": "team-ops-artifacts"}
    assert step.risk is Risk.DESTRUCTIVE
    assert validated.computed_risk is Risk.MODIFY
    assert validated.risk is Risk.MODIFY


def test_rollback_list_ids_count_from_zero() -> None:
    rule = "--group-id sg-1 --protocol tcp --port 22 --cidr 10.0.0.0/8"
    text = plan_text(
        {
            "id": "open",
            "cli": f"aws ec2 authorize-security-group-ingress {rule}",
            "rollback": [
                f"aws ec2 revoke-security-group-ingress {rule}",
                {"sdk": {"service": "ec2", "operation": "DescribeSecurityGroups", "params": {"GroupIds": ["sg-1"]}}},
            ],
        }
    )
    rollback = validate_text(text, OPEN).command("open").rollback
    assert [step.id for step in rollback] == ["open.rollback.0", "open.rollback.1"]
    assert [step.form for step in rollback] == ["cli", "sdk"]
    assert rollback[0].operation == "RevokeSecurityGroupIngress"


def test_a_stated_risk_raises_the_plan_risk() -> None:
    validated = validate_text(plan_text({"id": "a", "cli": "aws s3api list-buckets"}, risk="destructive"), OPEN)
    assert validated.computed_risk is Risk.READ_ONLY
    assert validated.risk is Risk.DESTRUCTIVE


def test_a_stated_lower_risk_never_lowers_the_plan_risk() -> None:
    text = plan_text({"id": "a", "cli": "aws ec2 terminate-instances --instance-ids i-1"}, risk="read_only")
    validated = validate_text(text, OPEN)
    assert validated.computed_risk is Risk.DESTRUCTIVE
    assert validated.risk is Risk.DESTRUCTIVE


def test_validate_text_reports_unreadable_plans_as_plan_errors() -> None:
    with pytest.raises(PlanError):
        validate_text("summary: [unclosed", OPEN)


def test_every_problem_of_a_plan_is_listed_with_its_command_id() -> None:
    text = plan_text(
        {"id": "a", "cli": "aws s3api list-buckets --profile prod"},
        {"id": "b", "cli": "bash -c 'aws s3 ls'"},
        {"id": "c", "sdk": {"service": "ec2", "operation": "DescribeInstances", "params": {"Bogus": 1}}},
        {"id": "d", "cli": "aws iam create-user --user-name mallory"},
        {"id": "e", "cli": "aws s3api list-buckets", "rollback": "aws s3api list-buckets --region eu-west-1"},
    )
    problems = plan_problems(text, Policy(deny=["iam:*"]))

    assert problems == [
        "command `a`: option --profile is not allowed: credentials, endpoints and TLS come from configuration",
        "command `b`: the program must be `aws`, not `bash`",
        'command `c`: params are invalid: Unknown parameter in input: "Bogus", must be one of: InstanceIds, '
        "IncludeManagedResources, DryRun, Filters, NextToken, MaxResults",
        "command `d`: iam:CreateUser is denied by policy rule `iam:*`",
        "command `e.rollback.0`: option --region is not allowed: the region comes from configuration",
    ]


# ---------------------------------------------------------------------------------------------------------
# The request the aws CLI would send, customizations included.


def test_run_instances_count_range_becomes_min_and_max_count() -> None:
    command = cli("aws ec2 run-instances --image-id ami-12345678 --instance-type t3.micro --count 2:5")
    assert command.params == {"ImageId": "ami-12345678", "InstanceType": "t3.micro", "MinCount": 2, "MaxCount": 5}


def test_run_instances_single_count_sets_both_bounds() -> None:
    assert cli("aws ec2 run-instances --image-id ami-1 --count 3").params == {
        "ImageId": "ami-1",
        "MinCount": 3,
        "MaxCount": 3,
    }


def test_run_instances_without_count_gets_the_cli_default_of_one() -> None:
    # The CLI adds these when the client builds the request, not while parsing.
    assert cli("aws ec2 run-instances --image-id ami-1").params == {"ImageId": "ami-1", "MinCount": 1, "MaxCount": 1}


def test_params_are_taken_before_botocore_encodes_them() -> None:
    # botocore base64-encodes UserData itself when sending; an executor must get the text as written.
    command = cli("aws ec2 run-instances --image-id ami-1 --user-data hello")
    assert command.params is not None
    assert command.params["UserData"] == "hello"


def test_security_group_shortcut_options_become_ip_permissions() -> None:
    command = cli(
        "aws ec2 authorize-security-group-ingress --group-id sg-0abc --protocol tcp --port 8000-8080 --cidr 10.1.0.0/16"
    )
    assert command.operation == "AuthorizeSecurityGroupIngress"
    assert command.params == {
        "GroupId": "sg-0abc",
        "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.1.0.0/16"}]}
        ],
    }


def test_negative_port_for_icmp_is_a_value_not_an_option() -> None:
    command = cli("aws ec2 authorize-security-group-ingress --group-id sg-1 --protocol icmp --port -1 --cidr 0.0.0.0/0")
    assert command.params is not None
    assert command.params["IpPermissions"][0] == {
        "IpProtocol": "icmp",
        "FromPort": -1,
        "ToPort": -1,
        "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
    }


def test_the_cli_refuses_mixing_shortcuts_with_ip_permissions() -> None:
    refused_for(
        "aws ec2 authorize-security-group-ingress --group-id sg-1 --protocol tcp --port 22 "
        "--ip-permissions IpProtocol=tcp,FromPort=22,ToPort=22",
        "The --protocol option is not compatible with the --ip-permissions option",
    )


def test_top_level_boolean_customization_builds_the_value_structure() -> None:
    command = cli("aws ec2 modify-instance-attribute --instance-id i-1 --no-disable-api-termination")
    assert command.params == {"InstanceId": "i-1", "DisableApiTermination": {"Value": False}}


def test_shorthand_and_json_filters_give_the_same_request() -> None:
    shorthand = cli("aws ec2 describe-instances --filters Name=tag:env,Values=staging")
    as_json = cli("""aws ec2 describe-instances --filters '[{"Name": "tag:env", "Values": ["staging"]}]'""")
    assert shorthand.params == as_json.params == {"Filters": [{"Name": "tag:env", "Values": ["staging"]}]}
    assert type(as_json.params["Filters"][0]) is dict


def test_query_is_kept_in_the_argv_and_not_sent_to_aws() -> None:
    command = cli(
        "aws ec2 describe-instances --filters Name=tag:env,Values=staging "
        "--query 'Reservations[*].Instances[*].InstanceId'"
    )
    assert command.params == {"Filters": [{"Name": "tag:env", "Values": ["staging"]}]}
    assert command.cli_args is not None
    assert command.cli_args[-2:] == ["--query", "Reservations[*].Instances[*].InstanceId"]


def test_cli_input_json_fills_what_the_command_line_leaves_out() -> None:
    command = cli("""aws s3api create-bucket --bucket mine --cli-input-json '{"Bucket": "theirs", "ACL": "private"}'""")
    assert command.params == {"Bucket": "mine", "ACL": "private"}


def test_pagination_options_go_to_the_paginator_config() -> None:
    command = cli("aws s3api list-objects-v2 --bucket logs --max-items 25 --page-size 5")
    assert command.params == {"Bucket": "logs", "PaginationConfig": {"MaxItems": 25, "PageSize": 5}}


def test_no_paginate_with_pagination_options_is_refused_by_the_cli() -> None:
    refused_for(
        "aws ec2 describe-instances --no-paginate --max-items 5",
        "Cannot specify --no-paginate along with pagination arguments",
    )


def test_allowed_global_options_do_not_change_the_request() -> None:
    command = cli("aws --color off s3api list-buckets --no-paginate --query 'Buckets[].Name'")
    assert command.params == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aws ec2 run-instances --image-id ami-1", True),
        ("aws ec2 describe-instances", True),
        ("aws s3api create-bucket --bucket b", False),
        ("aws s3 cp s3://a/k s3://b/k", True),
        ("aws s3 sync s3://a s3://b", True),
        ("aws s3 rm s3://a/k", True),
        ("aws s3 ls s3://a", False),
        ("aws s3 mb s3://a", False),
    ],
)
def test_supports_dry_run_follows_the_operation(text: str, expected: bool) -> None:
    assert cli(text).supports_dry_run is expected


def test_sdk_dry_run_support_comes_from_the_input_shape() -> None:
    assert sdk("ec2", "StopInstances", {"InstanceIds": ["i-1"]}).supports_dry_run is True
    assert sdk("s3", "ListBuckets").supports_dry_run is False


def test_a_cli_customization_that_takes_the_call_over_leaves_params_unset() -> None:
    # A plugin answering `calling-command` replaces the API call; there is then no single request.
    tables = awscli_model._cli_tables()
    emitter = tables.session.get_component("event_emitter")

    def take_over(**kwargs: Any) -> int:
        return 0

    emitter.register("calling-command.ec2.describe-regions", take_over)
    try:
        command = cli("aws ec2 describe-regions")
    finally:
        emitter.unregister("calling-command.ec2.describe-regions", take_over)
    assert command.operation == "DescribeRegions"
    assert command.params is None
    assert cli("aws ec2 describe-regions").params == {}


# ---------------------------------------------------------------------------------------------------------
# High-level s3 commands.


@pytest.mark.parametrize(
    ("text", "cli_operation", "risk"),
    [
        ("aws s3 ls", "ls", Risk.READ_ONLY),
        ("aws s3 ls s3://logs/2024/ --recursive --page-size 100 --human-readable --summarize", "ls", Risk.READ_ONLY),
        ("aws s3 cp s3://a/k s3://b/k --dryrun", "cp", Risk.MODIFY),
        ("aws s3 mv s3://a/k s3://b/k", "mv", Risk.DESTRUCTIVE),
        ("aws s3 rm s3://a/prefix/ --recursive --exclude '*' --include '*.tmp'", "rm", Risk.DESTRUCTIVE),
        ("aws s3 sync s3://a s3://b", "sync", Risk.MODIFY),
        ("aws s3 sync s3://a s3://b --delete", "sync", Risk.DESTRUCTIVE),
        ("aws s3 mb s3://new-bucket", "mb", Risk.MODIFY),
        ("aws s3 rb s3://old-bucket --force", "rb", Risk.DESTRUCTIVE),
        ("aws s3 cp s3://a/report.csv -", "cp", Risk.MODIFY),
    ],
)
def test_high_level_s3_commands_resolve_without_params(text: str, cli_operation: str, risk: Risk) -> None:
    command = cli(text)
    assert (command.service, command.cli_service, command.cli_operation) == ("s3", "s3", cli_operation)
    assert command.high_level is True
    assert command.operation is None
    assert command.params is None
    assert command.sdk_runnable is False
    assert command.risk is risk
    assert command.qualified_operation == f"s3:{cli_operation}"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("aws s3 presign s3://a/k", "`aws s3 presign` is not allowed: it creates a pre-signed URL"),
        ("aws s3 website s3://a --index-document index.html", "`aws s3 website` is not allowed"),
        ("aws s3", "`aws s3` needs a command"),
        ("aws s3 help", "`aws s3 help` is not allowed"),
        ("aws s3 cp help", "`aws s3 cp help` is not allowed"),
        ("aws s3 copy s3://a/k s3://b/k", "`aws s3` has no command `copy` (did you mean `cp`?)"),
        ("aws s3 cp s3://a/k", "the following arguments are required: paths"),
        ("aws s3 ls s3://a --bogus", "does not take --bogus"),
        ("aws s3 cp - s3://a/k", "cannot read standard input"),
        ("aws s3 cp s3://a/k ./k", "local file ./k is not allowed: the policy sets no local_file_dir"),
    ],
)
def test_high_level_s3_refusals(text: str, fragment: str) -> None:
    refused_for(text, fragment)


# ---------------------------------------------------------------------------------------------------------
# Commands, services and options the aws CLI would not run as asked.


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("python -c 'import os'", "the program must be `aws`, not `python`"),
        ("/usr/local/bin/aws s3 ls", "the program must be `aws`, not `/usr/local/bin/aws`"),
        ("AWS s3 ls", "the program must be `aws`, not `AWS`"),
        ("aws", "no service given"),
        ("aws configure set region us-east-1", "`aws configure` is not allowed: it reads and writes the local aws"),
        ("aws help", "`aws help` is not allowed: it prints documentation"),
        ("aws history list", "`aws history` is not allowed"),
        ("aws ec2 wait instance-running --instance-ids i-1", "`aws ec2 wait` is not allowed: a waiter polls"),
        ("aws ecr get-login-password", "`aws ecr get-login-password` is not allowed"),
        ("aws eks update-kubeconfig --name prod", "`aws eks update-kubeconfig` is not allowed"),
        ("aws cloudformation deploy --template-file t.yml --stack-name s", "`aws cloudformation deploy` is not"),
        ("aws cloudformation package --template-file t.yml --s3-bucket b", "`aws cloudformation package` is not"),
        ("aws emr ssh --cluster-id j-1 --key-pair-file k.pem", "`aws emr ssh` is not allowed"),
        ("aws deploy push --application-name a --s3-location s3://b/k", "`aws deploy push` is not allowed"),
        ("aws rds generate-db-auth-token --hostname h --port 5432 --username u", "bearer credential"),
        ("aws sdb list-domains", "`aws sdb` is not allowed: it is a preview service"),
        ("aws s3api list-buckets help", "`aws s3api list-buckets help` is not allowed"),
        ("aws ec2 describe-instancez", "`aws ec2` has no operation `describe-instancez` (did you mean"),
        ("aws ec3 describe-instances", "`aws ec3`: no such aws command (did you mean"),
        ("aws s3api", "`aws s3api` needs an operation"),
        ("aws s3api create-bucket", "the following arguments are required: --bucket"),
        ("aws s3api create-bucket --bucket b --colour blue", "`aws s3api create-bucket` does not take --colour"),
        ("aws s3api create-bucket --bucket b stray", "`aws s3api create-bucket` does not take stray"),
        ("aws ec2 run-instances --image-id ami-1 --count many", "count parameter should be of form min[:max]"),
        ("aws s3api put-bucket-tagging --bucket b --tagging 'TagSet=[{Key=team'", "the aws CLI refuses the arguments"),
        ("aws s3api create-bucket --bucket b --generate-cli-skeleton", "option --generate-cli-skeleton is not"),
        ("aws --version", "option --version is not allowed"),
        ("aws s3api list-buckets --query 'Buckets[?'", "--query is not a valid JMESPath expression"),
        ("aws s3api list-buckets -- --profile x", "`--` is not allowed"),
        ("aws s3api list-buckets --cli-binary-format raw-in-base64-out", "does not take --cli-binary-format"),
        ("aws cloudsearchdomain search --search-query x", "--endpoint-url is required for cloudsearchdomain"),
    ],
)
def test_commands_the_engine_will_not_run_are_refused_with_a_reason(text: str, fragment: str) -> None:
    refused_for(text, fragment)


@pytest.mark.parametrize(
    ("option", "reason"),
    [
        ("--profile prod", "credentials, endpoints and TLS come from configuration"),
        ("--endpoint-url http://127.0.0.1:9", "credentials, endpoints and TLS come from configuration"),
        ("--endpoint-url=http://127.0.0.1:9", "credentials, endpoints and TLS come from configuration"),
        ("--no-verify-ssl", "credentials, endpoints and TLS come from configuration"),
        ("--ca-bundle /tmp/ca.pem", "credentials, endpoints and TLS come from configuration"),
        ("--no-sign-request", "credentials, endpoints and TLS come from configuration"),
        ("--region eu-west-1", "the region comes from configuration"),
        ("--output text", "the engine always reads JSON output"),
        ("--debug", "debug logging prints request details; the engine controls diagnostics"),
        ("--v2-debug", "the engine controls diagnostics"),
        ("--cli-read-timeout 0", "timeouts come from the command's timeout_seconds"),
        ("--cli-connect-timeout 0", "timeouts come from the command's timeout_seconds"),
    ],
)
def test_global_options_that_configuration_owns_are_refused(option: str, reason: str) -> None:
    name = option.split()[0].split("=")[0]
    for text in (f"aws {option} s3api list-buckets", f"aws s3api list-buckets {option}"):
        refused_for(text, f"option {name} is not allowed: {reason}")


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("--prof", "--profile"),
        ("--endpoint", "--endpoint-url"),
        ("--no-verify", "--no-verify-ssl"),
        ("--reg", "--region"),
    ],
)
def test_abbreviated_options_are_refused_and_cannot_smuggle_a_forbidden_one(written: str, meant: str) -> None:
    problems = problems_of(f"aws s3api list-buckets {written} x")
    assert f"command `c`: option {written} is abbreviated: write it in full (the aws CLI would read it as {meant})" in (
        problems
    )
    assert any(f"option {meant} is not allowed" in problem for problem in problems), problems


def test_abbreviations_of_operation_options_are_refused_too() -> None:
    refused_for("aws s3api create-bucket --buck b", "option --buck is abbreviated")


def test_the_aws_cli_parsers_never_print_or_exit(capsys: pytest.CaptureFixture[str]) -> None:
    for text in ("aws --version", "aws s3api", "aws nope", "aws s3api create-bucket", "aws s3 help", "aws ec2 help"):
        with pytest.raises(PlanValidationError):
            cli(text)
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")


def test_required_options_stay_required_after_cli_input_json_relaxed_them_once() -> None:
    assert cli("""aws s3api create-bucket --cli-input-json '{"Bucket": "b"}'""").params == {"Bucket": "b"}
    refused_for("aws s3api create-bucket", "the following arguments are required: --bucket")


def test_one_commands_customizations_do_not_leak_into_the_next() -> None:
    # modify-instance-attribute registers a check for all of ec2; the next ec2 command must not see it.
    cli("aws ec2 modify-instance-attribute --instance-id i-1 --no-disable-api-termination")
    assert cli("aws ec2 describe-instances --instance-ids i-1").params == {"InstanceIds": ["i-1"]}


# ---------------------------------------------------------------------------------------------------------
# Shell syntax and text tricks.


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("aws s3 ls; rm -rf /", "`;` (command separator)"),
        ("aws s3 ls | sh", "`|` (pipe)"),
        ("aws s3 ls && reboot", "`&` (background or `&&`)"),
        ("aws s3 ls `id`", "(command substitution)"),
        ("aws s3 ls $(id)", "`$` (variable or command substitution)"),
        ("aws s3 ls s3://${BUCKET}", "`$` (variable or command substitution)"),
        ("aws s3 ls > /tmp/out", "`>` (redirection)"),
        ("aws s3 ls < /dev/null", "`<` (redirection)"),
        ("aws s3 ls 2>&1", "`>` (redirection)"),
        ("aws s3 ls\nrm -rf /", "a line break is not allowed"),
        ("aws s3 ls\r", "control or invisible character"),
        ("aws s3 ls\x00", "U+0000"),
        ("aws s3 ls\x1b[31m", "U+001B"),
        ("aws s3 ls\u200b", "U+200B (ZERO WIDTH SPACE)"),
        ("aws s3 ls\u00a0s3://a", "only plain spaces separate words"),
        ("aws s3 ls\uff1b id", "U+FF1B (FULLWIDTH SEMICOLON) is not allowed: it looks like `;`"),
        ("aws s3 ls 'unbalanced", "cannot be split into words: no closing quotation"),
        ("aws ec2 describe-instances --query Reservations[].Instances[]|[0]", "quote a --query expression"),
        ("aws s3api list-buckets --query length(Buckets)>`1`", "quote a --query expression"),
        ("aws s3api create-bucket --bucket x #comment", "begins a comment in a shell"),
        ('aws s3api create-bucket --bucket "$HOME"', "a shell expands it inside double quotes"),
        ('aws s3api create-bucket --bucket "`id`"', "a shell expands it inside double quotes"),
        ('aws ssm update-association --association-id a --document-version "\\$LATEST"', "use single quotes"),
        ("aws s3api create-bucket --bucket a\nb", "a line break is not allowed outside quotes"),
        ("aws s3api create-bucket --bucket a\\\nb", "a line break is not allowed outside quotes"),
    ],
)
def test_shell_syntax_and_invisible_characters_are_refused(text: str, fragment: str) -> None:
    refused_for(text, fragment)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("aws s3api put-object --bucket b --key 'a;b'", "a;b"),
        ('aws s3api put-object --bucket b --key "x; reboot"', "x; reboot"),
        ("aws s3api put-object --bucket b --key 'a&&b|c>d<e'", "a&&b|c>d<e"),
        ("aws s3api put-object --bucket b --key 'x`id`$(id)${HOME}'", "x`id`$(id)${HOME}"),
        ("aws s3api put-object --bucket b --key 'line one\nline two'", "line one\nline two"),
        ("aws s3api put-object --bucket b --key a#b", "a#b"),
    ],
)
def test_shell_characters_where_no_shell_would_act_on_them_pass_verbatim(text: str, value: str) -> None:
    # Inside single quotes nothing is special to a shell either; inside double quotes only `$` and backticks
    # are. What passes reaches the request exactly as written: no shell ever runs it.
    assert cli(text).params == {"Bucket": "b", "Key": value}


def test_a_lambda_version_and_a_jmespath_literal_in_single_quotes_pass() -> None:
    assert cli("aws lambda get-function --function-name f --qualifier '$LATEST'").params == {
        "FunctionName": "f",
        "Qualifier": "$LATEST",
    }
    query = "Reservations[].Instances[?State.Code==`16`] | [0]"
    assert cli(f"aws ec2 describe-instances --query '{query}'").cli_args[-1] == query


@pytest.mark.parametrize(
    "text",
    [
        "aws s3api put-bucket-tagging --bucket b --tagging 'TagSet=[{Key=team,Value=ops}]'",
        "aws ec2 describe-instances --filters Name=tag:env,Values=staging",
        "aws ec2 describe-instances --query 'Reservations[*].Instances[*].InstanceId'",
        "aws s3 rm s3://a/ --recursive --exclude '*' --include 'logs/2024-0?-*.gz'",
        """aws s3api put-bucket-tagging --bucket b --tagging '{"TagSet": [{"Key": "a b", "Value": "x=y, z"}]}'""",
        "aws s3api put-bucket-tagging --bucket b --tagging 'TagSet=[{Key=équipe,Value=opérations}]'",
    ],
)
def test_json_shorthand_globs_and_quotes_pass(text: str) -> None:
    assert cli(text).form == "cli"


# ---------------------------------------------------------------------------------------------------------
# Local files and downloads.


def test_values_the_cli_would_download_are_refused() -> None:
    refused_for(
        "aws iam put-role-policy --role-name r --policy-name p --policy-document https://example.com/policy.json",
        "--policy-document: the aws CLI would download https://example.com/policy.json when the command runs",
    )


def test_url_values_the_cli_sends_as_they_are_pass() -> None:
    command = cli(
        "aws sqs send-message --queue-url https://sqs.us-east-1.amazonaws.com/123456789012/q --message-body hi"
    )
    assert command.params == {
        "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
        "MessageBody": "hi",
    }


@pytest.mark.parametrize(
    "text",
    [
        "aws iam create-policy --policy-name p --policy-document file:///etc/passwd",
        "aws lambda update-function-code --function-name f --zip-file fileb://f.zip",
        """aws s3api create-bucket --cli-input-json file://input.json""",
        "aws s3api put-bucket-policy --bucket b --policy=file:///tmp/p.json",
    ],
)
def test_file_values_are_refused_without_a_local_file_dir(text: str) -> None:
    refused_for(text, "the policy sets no local_file_dir")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("aws s3api get-object --bucket b --key k /tmp/object", "outfile: local file /tmp/object is not allowed"),
        ("aws s3api put-object --bucket b --key k --body /etc/hosts", "--body: local file /etc/hosts is not"),
        ("aws s3 cp /etc/hosts s3://b/hosts", "source: local file /etc/hosts is not allowed"),
        ("aws s3 sync s3://b /srv/mirror", "destination: local file /srv/mirror is not allowed"),
        ("aws ec2 get-password-data --instance-id i-1 --priv-launch-key /root/key.pem", "--priv-launch-key"),
        (
            "aws iam create-virtual-mfa-device --virtual-mfa-device-name m --bootstrap-method QRCodePNG "
            "--outfile /tmp/qr.png",
            "--outfile",
        ),
        ("aws lambda invoke --function-name f /tmp/response.json", "outfile: local file /tmp/response.json"),
    ],
)
def test_local_paths_the_cli_reads_or_writes_are_refused_without_a_local_file_dir(text: str, fragment: str) -> None:
    refused_for(text, fragment)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "allowed"
    root.mkdir()
    (root / "policy.json").write_text('{"Version": "2012-10-17", "Statement": []}')
    (root / "data").mkdir()
    (root / "data" / "report.csv").write_text("a,b\n")
    (tmp_path / "secret.txt").write_text("secret")
    return root


def test_local_files_inside_the_allowed_directory_run_on_the_cli_only(files: Path) -> None:
    policy = Policy(local_file_dir=files)
    upload = cli(f"aws s3 cp {files}/data/report.csv s3://b/report.csv", policy)
    assert upload.high_level and upload.params is None

    put = cli(
        f"aws iam put-role-policy --role-name r --policy-name p --policy-document file://{files}/policy.json", policy
    )
    assert put.operation == "PutRolePolicy"
    assert put.params is None  # the CLI reads the file when the command runs

    download = cli(f"aws s3api get-object --bucket b --key k {files}/data/object.bin", policy)
    assert download.operation == "GetObject"
    assert download.params is None


def test_local_files_are_not_opened_during_validation(files: Path) -> None:
    # The file is read when the command runs; what it holds then is what counts.
    (files / "later.json").write_text("not json yet")
    command = cli(f"aws s3api create-bucket --cli-input-json file://{files}/later.json", Policy(local_file_dir=files))
    assert command.operation == "CreateBucket"
    assert command.params is None


def test_sync_from_a_local_directory_must_not_follow_symlinks(files: Path) -> None:
    policy = Policy(local_file_dir=files)
    refused_for(f"aws s3 sync {files}/data s3://b/data", "needs --no-follow-symlinks", policy)
    refused_for(f"aws s3 cp {files}/data s3://b/data --recursive", "needs --no-follow-symlinks", policy)
    assert cli(f"aws s3 sync {files}/data s3://b/data --no-follow-symlinks", policy).cli_operation == "sync"
    assert cli(f"aws s3 sync s3://b/data {files}/data", policy).cli_operation == "sync"


@pytest.mark.parametrize(
    ("relative", "fragment"),
    [
        ("../secret.txt", "is outside"),
        ("data/../../secret.txt", "is outside"),
        ("link-to-secret", "is outside"),
        ("link-to-parent/secret.txt", "is outside"),
    ],
)
def test_paths_escaping_the_allowed_directory_are_refused(files: Path, relative: str, fragment: str) -> None:
    (files / "link-to-secret").symlink_to(files.parent / "secret.txt")
    (files / "link-to-parent").symlink_to(files.parent)
    policy = Policy(local_file_dir=files)
    path = f"{files}/{relative}"
    refused_for(f"aws s3 cp {path} s3://b/x", f"local path {path} {fragment}", policy)
    refused_for(f"aws iam create-policy --policy-name p --policy-document file://{path}", fragment, policy)
    refused_for(f"aws s3api put-object --bucket b --key k --body {path}", fragment, policy)


def test_relative_and_home_paths_are_refused_even_with_a_local_file_dir(files: Path) -> None:
    policy = Policy(local_file_dir=files)
    refused_for("aws s3 cp report.csv s3://b/k", "must be absolute", policy)
    refused_for("aws iam create-policy --policy-name p --policy-document file://~/p.json", "must be absolute", policy)


def test_special_files_inside_the_allowed_directory_are_refused(files: Path) -> None:
    os.mkfifo(files / "pipe")
    refused_for(f"aws s3 cp {files}/pipe s3://b/k", "is not a regular file or directory", Policy(local_file_dir=files))


def test_file_uri_inside_a_value_is_refused_even_with_a_local_file_dir(files: Path) -> None:
    policy = Policy(local_file_dir=files)
    text = f"""aws s3api put-bucket-tagging --bucket b --tagging '{{"TagSet": [{{"Key": "k", "Value": "file://{files}/x"}}]}}'"""
    refused_for(text, "`file://` may only begin an option value", policy)
    refused_for(
        f"aws iam create-policy --policy-name p --policy-document FILE://{files}/policy.json", "may only", policy
    )


def test_sdk_params_never_name_local_files(files: Path) -> None:
    spec = CommandSpec(
        sdk=SdkCall(
            service="iam",
            operation="CreatePolicy",
            params={"PolicyName": "p", "PolicyDocument": f"file://{files}/policy.json"},
        )
    )
    with pytest.raises(PlanValidationError) as caught:
        resolve_command(spec, command_id="c", policy=Policy(local_file_dir=files))
    assert caught.value.problems == [f"command `c`: params: local files are not allowed: `file://{files}/policy.json`"]


# ---------------------------------------------------------------------------------------------------------
# Policy.


def test_allow_list_refuses_everything_it_does_not_name() -> None:
    policy = Policy(allow=["s3:*", "ec2:Describe*"])
    assert cli("aws s3api list-buckets", policy).operation == "ListBuckets"
    assert cli("aws s3 ls", policy).cli_operation == "ls"
    assert cli("aws ec2 describe-instances", policy).operation == "DescribeInstances"
    refused_for(
        "aws ec2 stop-instances --instance-ids i-1", "ec2:StopInstances is not in the policy's allow list", policy
    )


def test_deny_glob_covers_a_whole_service() -> None:
    policy = Policy(deny=["iam:*"])
    refused_for("aws iam list-users", "iam:ListUsers is denied by policy rule `iam:*`", policy)
    with pytest.raises(PlanValidationError, match="denied by policy rule `iam:\\*`"):
        sdk("iam", "ListUsers", policy=policy)
    assert cli("aws s3api list-buckets", policy).service == "s3"


def test_deny_one_operation_leaves_its_neighbours() -> None:
    policy = Policy(deny=["ec2:TerminateInstances"])
    refused_for(
        "aws ec2 terminate-instances --instance-ids i-1", "denied by policy rule `ec2:TerminateInstances`", policy
    )
    assert cli("aws ec2 stop-instances --instance-ids i-1", policy).operation == "StopInstances"


def test_deny_by_the_cli_names_works_for_both_forms() -> None:
    policy = Policy(deny=["s3api:delete-*", "s3:rm"])
    refused_for("aws s3api delete-bucket --bucket b", "denied by policy rule `s3api:delete-*`", policy)
    refused_for("aws s3 rm s3://b/k", "s3:rm is denied by policy rule `s3:rm`", policy)
    with pytest.raises(PlanValidationError, match="s3:DeleteBucket is denied"):
        sdk("s3", "DeleteBucket", {"Bucket": "b"}, policy=policy)


def test_policy_applies_to_rollback_steps() -> None:
    text = plan_text(
        {
            "id": "run",
            "cli": "aws ec2 run-instances --image-id ami-1",
            "rollback": "aws ec2 terminate-instances --instance-ids i-1",
        }
    )
    assert plan_problems(text, Policy(deny=["ec2:TerminateInstances"])) == [
        "command `run.rollback.0`: ec2:TerminateInstances is denied by policy rule `ec2:TerminateInstances`"
    ]


def test_risk_overrides_raise_a_commands_risk() -> None:
    policy = Policy(risk_overrides={"ec2:StopInstances": Risk.DESTRUCTIVE, "s3:cp": Risk.DESTRUCTIVE})
    assert cli("aws ec2 stop-instances --instance-ids i-1").risk is Risk.MODIFY
    assert cli("aws ec2 stop-instances --instance-ids i-1", policy).risk is Risk.DESTRUCTIVE
    assert sdk("ec2", "StopInstances", {"InstanceIds": ["i-1"]}, policy=policy).risk is Risk.DESTRUCTIVE
    assert cli("aws s3 cp s3://a/k s3://b/k", policy).risk is Risk.DESTRUCTIVE


def test_risk_overrides_never_lower_a_risk() -> None:
    policy = Policy(risk_overrides={"ec2:TerminateInstances": Risk.READ_ONLY})
    assert cli("aws ec2 terminate-instances --instance-ids i-1", policy).risk is Risk.DESTRUCTIVE


# ---------------------------------------------------------------------------------------------------------
# The plan as a whole.


def test_more_commands_than_the_policy_allows_is_refused() -> None:
    text = plan_text(*({"id": f"c{n}", "cli": "aws s3api list-buckets"} for n in range(4)))
    assert plan_problems(text, Policy(max_commands=3)) == ["plan: 4 commands is more than the policy's limit of 3"]
    assert len(validate_text(text, Policy(max_commands=4)).commands) == 4


def test_duplicate_ids_are_refused() -> None:
    text = plan_text({"id": "a", "cli": "aws s3 ls"}, {"id": "a", "cli": "aws s3 ls"})
    assert plan_problems(text) == ["plan: command id `a` is used 2 times"]


def test_an_id_that_names_another_commands_rollback_step_is_refused() -> None:
    text = plan_text(
        {"id": "a", "cli": "aws s3 mb s3://x", "rollback": "aws s3 rb s3://x"},
        {"id": "a.rollback.0", "cli": "aws s3 ls"},
    )
    assert plan_problems(text) == ["command `a.rollback.0`: the id is taken by rollback step 0 of `a`"]


def test_dependencies_must_name_other_known_commands() -> None:
    text = plan_text(
        {"id": "a", "cli": "aws s3 ls", "depends_on": ["a"]},
        {"id": "b", "cli": "aws s3 ls", "depends_on": ["ghost"]},
        mode="dependency_graph",
    )
    assert plan_problems(text) == ["command `a`: depends on itself", "command `b`: depends on unknown command `ghost`"]


def test_dependency_cycles_are_refused_and_named() -> None:
    text = plan_text(
        {"id": "a", "cli": "aws s3 ls", "depends_on": ["c"]},
        {"id": "b", "cli": "aws s3 ls", "depends_on": ["a"]},
        {"id": "c", "cli": "aws s3 ls", "depends_on": ["b"]},
        {"id": "d", "cli": "aws s3 ls"},
        mode="dependency_graph",
    )
    (problem,) = plan_problems(text)
    assert problem.startswith("plan: dependency cycle: ")
    assert problem.endswith(" (each depends on the next)")
    named = re.findall(r"`(\w)`", problem)
    assert set(named) == {"a", "b", "c"}
    assert named[0] == named[-1]
    depends_on = {"a": "c", "b": "a", "c": "b"}
    assert all(depends_on[first] == second for first, second in pairwise(named))


def test_a_dependency_graph_without_cycles_passes() -> None:
    text = plan_text(
        {"id": "a", "cli": "aws s3 ls"},
        {"id": "b", "cli": "aws s3 ls", "depends_on": ["a"]},
        {"id": "c", "cli": "aws s3 ls", "depends_on": ["a", "b"]},
        mode="dependency_graph",
    )
    assert validate_text(text, OPEN).command("c").depends_on == ["a", "b"]


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_depends_on_outside_dependency_graph_mode_is_refused(mode: str) -> None:
    text = plan_text({"id": "a", "cli": "aws s3 ls"}, {"id": "b", "cli": "aws s3 ls", "depends_on": ["a"]}, mode=mode)
    assert plan_problems(text) == [
        f"command `b`: depends_on is only allowed in dependency_graph mode; {mode} mode would ignore the order "
        "it asks for"
    ]


# ---------------------------------------------------------------------------------------------------------
# SDK form.


def test_sdk_call_gets_the_cli_names_for_the_policy_and_display() -> None:
    command = sdk("codedeploy", "ListApplications")
    assert (command.service, command.cli_service, command.operation, command.cli_operation) == (
        "codedeploy",
        "deploy",
        "ListApplications",
        "list-applications",
    )
    assert command.cli_args is None
    assert command.sdk_runnable


@pytest.mark.parametrize(
    ("service", "operation", "params", "fragment"),
    [
        (
            "s3api",
            "ListBuckets",
            {},
            "`s3api` is not a botocore service name (the aws CLI's `s3api` is botocore's `s3`)",
        ),
        ("ec22", "DescribeInstances", {}, "`ec22` is not a botocore service name (did you mean `ec2`"),
        (
            "ec2",
            "describe-instances",
            {},
            "`ec2` has no operation `describe-instances` (botocore names it `DescribeInstances`)",
        ),
        ("ec2", "describe_instances", {}, "(botocore names it `DescribeInstances`)"),
        ("ec2", "StopInstances", {}, 'Missing required parameter in input: "InstanceIds"'),
        ("ec2", "StopInstances", {"InstanceIds": "i-1"}, "Invalid type for parameter InstanceIds"),
        ("s3", "ListObjectsV2", {"Bucket": "b", "PaginationConfig": {"Bogus": 1}}, "PaginationConfig takes only"),
    ],
)
def test_sdk_calls_are_checked_against_botocore(
    service: str, operation: str, params: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(PlanValidationError) as caught:
        sdk(service, operation, params)
    assert any(fragment in problem for problem in caught.value.problems), caught.value.problems


def test_idempotency_tokens_may_be_left_to_botocore() -> None:
    # ClientToken is required by the API but botocore generates it, as boto3 users expect.
    command = sdk("efs", "CreateAccessPoint", {"FileSystemId": "fs-1"})
    assert command.params == {"FileSystemId": "fs-1"}


def test_sdk_pagination_config_is_accepted_for_the_paginator() -> None:
    params = {"Bucket": "b", "PaginationConfig": {"MaxItems": 10}}
    assert sdk("s3", "ListObjectsV2", params).params == params


def test_deeply_nested_sdk_params_are_refused_not_crashed() -> None:
    value: dict[str, Any] = {"S": "x"}
    for _ in range(200):
        value = {"M": {"a": value}}
    with pytest.raises(PlanValidationError, match="nested too deeply"):
        sdk("dynamodb", "PutItem", {"TableName": "t", "Item": {"k": value}})


# ---------------------------------------------------------------------------------------------------------
# Validation is local: no network, no credentials, no operator config.


def test_validation_makes_no_network_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("validation tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(awscli_model, "_TABLES", None)
    validated = validate_text(SPEC_EXAMPLE, OPEN)
    assert validated.command("tag").command.params is not None
    assert cli("aws ec2 run-instances --image-id ami-1 --count 2").params == {
        "ImageId": "ami-1",
        "MinCount": 2,
        "MaxCount": 2,
    }


def test_the_operators_aws_environment_does_not_change_validation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text("[default]\ncli_follow_urlparam = false\n[plugins]\nbad = no_such_module\n")
    monkeypatch.setenv("AWS_PROFILE", "profile-that-does-not-exist")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "not-a-region")
    monkeypatch.setattr(awscli_model, "_TABLES", None)

    assert cli("aws ec2 run-instances --image-id ami-1").params == {"ImageId": "ami-1", "MinCount": 1, "MaxCount": 1}
    # The CLI the executor runs follows URLs by default, so validation must judge by that default.
    refused_for("aws iam create-policy --policy-name p --policy-document https://example.com/p", "would download")
