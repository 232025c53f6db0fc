"""Validation never reaches AWS: every example command the aws CLI ships is checked with every socket blocked.

The corpus is the installed aws CLI's own examples (``awscli/examples/**/*.rst``, about 7,000 commands),
which nobody on this team wrote. A refusal counts as right only when a documented rule says so (README,
"What validation refuses") or when the aws CLI itself would reject the command; everything else counts as
a wrongful refusal, and at most 0.5% of the corpus may be one.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from engine import awscli_model
from engine.awscli_review import API_CUSTOMIZATIONS, REFUSED_COMMANDS, REFUSED_CUSTOMIZATIONS, REFUSED_SUBCOMMANDS
from engine.errors import PlanValidationError
from engine.plan import CommandSpec
from engine.policy import Policy
from engine.validate import resolve_command
from tests.awscli_examples import example_commands

ROOT = Path(__file__).resolve().parent.parent
OPEN = Policy(allow=["*:*"])
MAX_WRONGFUL_SHARE = 0.005

# Each refusal reason, by the words of its message, and the rule that makes it right. Messages that match
# none of these are wrongful refusals.
RIGHTFUL = {
    "local files (README: local file access)": (
        "local file",
        "local path",
        "local files are not allowed",
        "cannot read standard input",
        "the aws CLI would download",
        "needs an s3:// path",
        "needs --no-follow-symlinks",
    ),
    "credentials, endpoints, region, output and other global options": (
        "is not allowed: credentials, endpoints and TLS come from configuration",
        "is not allowed: the region comes from configuration",
        "is not allowed: the engine always reads JSON output",
        "is not allowed: debug logging",
        "is not allowed: the engine controls diagnostics",
        "is not allowed: timeouts come from",
        "is not allowed: the engine sets global options",
        "is abbreviated: write it in full",
        "`--` is not allowed",
        "option --version is not allowed",
    ),
    "shell syntax where a shell would act on it": (
        "shell syntax is not allowed",
        "a line break is not allowed outside quotes",
        "inside double quotes: a shell drops it",
        "is not allowed: it is a control or invisible character",
        "is not allowed: only plain spaces separate words",
    ),
    "local-machine commands, waiters and credential printers": (
        *(
            reason
            for reason in [*REFUSED_COMMANDS.values(), *REFUSED_SUBCOMMANDS.values(), *REFUSED_CUSTOMIZATIONS.values()]
            if "not reviewed" not in reason
        ),
        "reads the distribution's configuration from AWS",
    ),
    "rejected by the aws CLI or botocore themselves": (
        "the following arguments are required",
        "does not take",
        "the request the aws CLI would send is invalid",
        "the aws CLI refuses the arguments",
        "no such aws command",
        "has no operation",
        "needs an operation",
        "the aws CLI cannot read the command",
        "is not a valid JMESPath expression",
        "the command cannot be split into words",
        "invalid choice",
        "invalid value",
        "expected one argument",
        "invalid int value",
    ),
}


def rule_of(problem: str) -> str | None:
    for rule, fragments in RIGHTFUL.items():
        if any(fragment in problem for fragment in fragments):
            return rule
    return None


class NetworkAttempt(AssertionError):
    pass


@pytest.fixture
def sockets_blocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every way out of the process refuses and is counted: connecting, sending, resolving a name."""
    attempts: list[str] = []

    def refuse(name: str) -> Any:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            attempts.append(name)
            raise NetworkAttempt(f"network attempt during validation: {name}")

        return blocked

    for name in ("connect", "connect_ex", "sendto", "sendmsg"):
        monkeypatch.setattr(socket.socket, name, refuse(f"socket.{name}"))
    for name in ("create_connection", "getaddrinfo", "gethostbyname"):
        monkeypatch.setattr(socket, name, refuse(name))
    yield attempts


@pytest.fixture(scope="module")
def corpus() -> tuple[Any, ...]:
    commands = example_commands()
    if len(commands) < 5000:
        pytest.fail(f"the installed aws CLI ships {len(commands)} example commands; expected thousands")
    return commands


def test_every_example_command_of_the_aws_cli_is_validated_offline_silently_and_rightly(
    corpus: tuple[Any, ...],
    sockets_blocked: list[str],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    accepted = 0
    by_rule: Counter[str] = Counter()
    wrongful: list[str] = []
    crashes: list[str] = []
    for example in corpus:
        try:
            resolve_command(CommandSpec(cli=example.text), command_id="x", policy=OPEN)
            accepted += 1
        except PlanValidationError as exc:
            # Rightly refused when any of its reasons is a documented rule or the aws CLI's own refusal.
            rules = [rule for rule in map(rule_of, exc.problems) if rule is not None]
            if not rules or any("could not be checked offline" in p for p in exc.problems):
                wrongful.append(f"{example.where}: {exc.problems}")
            else:
                by_rule[rules[0]] += 1
        except Exception as exc:  # anything but a refusal is a crash of validation
            crashes.append(f"{example.where}: {exc!r}")
    out, err = capfd.readouterr()
    assert sockets_blocked == [], f"{len(sockets_blocked)} network attempts during validation"
    assert crashes == []
    assert (out, err) == ("", "")
    # Nothing the aws CLI or botocore log while reading a command may name a value: only their own
    # debug lines about events and handlers are expected, and no warning or error at all.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    share = len(wrongful) / len(corpus)
    assert share <= MAX_WRONGFUL_SHARE, "\n".join(wrongful)
    # The counts the README and bench/README report come from this same run of the corpus.
    print(json.dumps({"commands": len(corpus), "accepted": accepted, "wrongful": len(wrongful), **by_rule}))


def test_a_request_the_aws_cli_tries_to_send_while_reading_is_refused_and_logged_as_a_defect(
    sockets_blocked: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    # A customization that calls AWS while building its request (as `cloudfront update-distribution
    # --default-root-object` does): stood in for by a handler that makes a call from the CLI's own session.
    tables = awscli_model._cli_tables()

    def calls_aws(**kwargs: Any) -> None:
        tables.session.create_client("secretsmanager").delete_secret(SecretId="x", ForceDeleteWithoutRecovery=True)

    tables.session.register("operation-args-parsed.secretsmanager.list-secrets", calls_aws, unique_id="test-calls")
    try:
        with pytest.raises(PlanValidationError) as caught:
            resolve_command(CommandSpec(cli="aws secretsmanager list-secrets"), command_id="x", policy=OPEN)
    finally:
        tables.session.unregister("operation-args-parsed.secretsmanager.list-secrets", unique_id="test-calls")
    assert caught.value.problems == [
        "command `x`: the command could not be checked offline: reading it made the aws CLI try to call "
        "secrets-manager.DeleteSecret (nothing was sent)"
    ]
    assert sockets_blocked == []
    assert any("defect" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    # The session is as it was: the next command reads normally.
    assert resolve_command(CommandSpec(cli="aws secretsmanager list-secrets"), command_id="x", policy=OPEN)


@pytest.mark.parametrize(
    "text",
    [
        "aws logs create-log-group --log-group-name leaked",
        "aws route53 create-hosted-zone --name leaked.example.com --caller-reference r1",
        "aws secretsmanager create-secret --name leaked --secret-string hunter2",
        "aws secretsmanager delete-secret --secret-id kept --force-delete-without-recovery",
        "aws secretsmanager get-secret-value --secret-id kept",
        "aws apigateway delete-rest-api --rest-api-id abc123",
        "aws autoscaling update-auto-scaling-group --auto-scaling-group-name g --min-size 0",
        "aws stepfunctions list-state-machines",
        "aws elbv2 describe-load-balancers",
    ],
)
def test_commands_of_services_with_renamed_events_are_read_without_a_request(
    text: str, sockets_blocked: list[str], capfd: pytest.CaptureFixture[str]
) -> None:
    resolved = resolve_command(CommandSpec(cli=text), command_id="x", policy=OPEN)
    assert resolved.params is not None and resolved.operation is not None
    assert sockets_blocked == []
    assert capfd.readouterr() == ("", "")


def cloudops_validate(plan: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "validate", str(plan)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_cloudops_validate_changes_nothing_in_aws(aws: str, tmp_path: Path) -> None:
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name="kept", SecretString="the-kept-value-7Qx")
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "summary: everything that once reached AWS during validation\n"
        "commands:\n"
        "  - {id: a, cli: aws logs create-log-group --log-group-name leaked}\n"
        "  - {id: b, cli: aws secretsmanager create-secret --name leaked --secret-string x}\n"
        "  - {id: c, cli: aws secretsmanager delete-secret --secret-id kept --force-delete-without-recovery}\n"
        "  - {id: d, cli: aws secretsmanager get-secret-value --secret-id kept}\n"
        "  - {id: e, cli: aws route53 create-hosted-zone --name leaked.example.com --caller-reference r1}\n"
    )
    done = cloudops_validate(plan, dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "the-kept-value-7Qx" not in done.stdout + done.stderr
    assert boto3.client("logs").describe_log_groups()["logGroups"] == []
    assert [s["Name"] for s in secrets.list_secrets()["SecretList"]] == ["kept"]
    assert boto3.client("route53").list_hosted_zones()["HostedZones"] == []


def test_validation_against_an_endpoint_that_never_answers_is_as_fast_as_ever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A loopback listener that accepts connections and never answers: a request would hang on it.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{silent.getsockname()[1]}"}
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")
        plan = tmp_path / "plan.yaml"
        plan.write_text("summary: s\ncommands:\n  - {id: a, cli: aws logs create-log-group --log-group-name x}\n")
        started = time.monotonic()
        done = cloudops_validate(plan, env)
        elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert elapsed < 15, f"validation took {elapsed:.1f} s"


def test_the_reviewed_aws_cli_customizations_match_the_installed_aws_cli() -> None:
    # Fails with a clear message when a new aws CLI renames, removes or adds a customized command.
    tables = awscli_model._cli_tables()
    problems = []
    customized = set()
    for cli_service, command in tables.commands.items():
        if type(command).__name__ != "ServiceCommand":
            continue
        for name, sub in command._get_command_table().items():
            if type(sub).__name__ != "ServiceOperation":
                customized.add((cli_service, name))
    for (cli_service, name), operations in API_CUSTOMIZATIONS.items():
        if (cli_service, name) not in customized:
            problems.append(f"`aws {cli_service} {name}` is no longer a customized command of the aws CLI")
            continue
        model = awscli_model.service_model(tables.commands[cli_service]._service_name)
        problems += [f"{cli_service}: no operation {op}" for op in operations if op not in model.operation_names]
    problems += [f"`aws {s} {n}` is gone" for s, n in REFUSED_CUSTOMIZATIONS if (s, n) not in customized]
    unreviewed = sorted(
        f"aws {s} {n}"
        for s, n in customized
        if (s, n) not in API_CUSTOMIZATIONS and (s, n) not in REFUSED_CUSTOMIZATIONS and n not in REFUSED_SUBCOMMANDS
    )
    problems += [f"`{c}` is a new aws CLI customization: review it in engine/awscli_review.py" for c in unreviewed]
    assert problems == []


def test_the_aws_cli_internals_validation_relies_on_are_there() -> None:
    # engine/awscli_model.py drives the aws CLI in-process; pyproject.toml pins the range this was built on.
    from awscli.clidriver import CLIDriver, ServiceOperation
    from botocore.hooks import HierarchicalEmitter, _PrefixTrie

    missing = [
        f"{owner.__name__}.{name}"
        for owner, names in [
            (CLIDriver, ["_get_command_table", "_create_parser"]),
            (ServiceOperation, ["_create_operation_parser", "_build_call_parameters", "arg_table"]),
            (HierarchicalEmitter, ["_register_section", "_verify_accept_kwargs", "unregister"]),
            (_PrefixTrie, ["append_item", "remove_item"]),
        ]
        for name in names
        if not hasattr(owner, name)
    ]
    emitter = HierarchicalEmitter()
    missing += [f"HierarchicalEmitter().{n}" for n in ("_handlers", "_unique_id_handlers") if not hasattr(emitter, n)]
    if not hasattr(emitter._handlers, "_root"):
        missing.append("_PrefixTrie()._root")
    operation = awscli_model._cli_tables().commands["s3api"]._get_command_table()["list-buckets"]
    missing += [
        f"ServiceOperation().{n}" for n in ("_operation_caller", "_operation_model") if not hasattr(operation, n)
    ]
    assert missing == [], (
        "the installed aws CLI no longer has what engine/awscli_model.py relies on; check the awscli range in "
        f"pyproject.toml: {missing}"
    )


def test_an_idempotency_token_left_out_is_filled_by_botocore_when_sent_not_by_validation() -> None:
    for text in [
        "aws athena start-query-execution --query-string 'select 1' --work-group primary",
        "aws iotsitewise create-asset --asset-model-id a1b2c3d4-5678-90ab-cdef-11111EXAMPLE --asset-name t",
        "aws secretsmanager update-secret --secret-id s --description d",
    ]:
        resolved = resolve_command(CommandSpec(cli=text), command_id="x", policy=OPEN)
        assert resolved.params is not None
        assert not {"ClientRequestToken", "clientToken"} & set(resolved.params), resolved.params


def test_reviewed_customizations_get_the_risk_and_policy_of_every_operation_they_call() -> None:
    read = resolve_command(CommandSpec(cli="aws emr describe-cluster --cluster-id j-1"), command_id="x", policy=OPEN)
    assert (read.risk.value, read.high_level, read.params) == ("read_only", True, None)
    assert read.api_operations == list(API_CUSTOMIZATIONS[("emr", "describe-cluster")])
    end = resolve_command(CommandSpec(cli="aws emr terminate-clusters --cluster-ids j-1"), command_id="x", policy=OPEN)
    assert end.risk.value == "destructive"
    with pytest.raises(PlanValidationError, match="emr:RunJobFlow is denied"):
        resolve_command(
            CommandSpec(
                cli="aws emr create-cluster --release-label emr-7.0.0 --instance-type m5.xlarge "
                "--instance-count 1 --use-default-roles"
            ),
            command_id="x",
            policy=Policy(deny=["emr:RunJobFlow"]),
        )
    with pytest.raises(PlanValidationError, match="local files are not allowed"):
        resolve_command(
            CommandSpec(cli="aws emr create-cluster --release-label x --configurations file:///etc/passwd"),
            command_id="x",
            policy=OPEN,
        )
    with pytest.raises(PlanValidationError, match="installs the CodeDeploy agent"):
        resolve_command(CommandSpec(cli="aws deploy install --config-file c.yml"), command_id="x", policy=OPEN)


def test_rule_of_counts_an_unknown_reason_as_wrongful() -> None:
    assert rule_of("command `x`: something new went wrong") is None
    assert (
        rule_of("command `x`: `aws a b` is not allowed: " + REFUSED_CUSTOMIZATIONS[("dlm", "create-default-role")])
        is None
    )
    assert rule_of("command `x`: `aws ec2 wait` is not allowed: " + REFUSED_SUBCOMMANDS["wait"]) is not None
