"""The `cloudops` command line as a user runs it: real processes, real exit codes, a moto server for AWS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pexpect
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def cloudops(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        input=stdin,
        cwd=ROOT,
        timeout=120,
    )


def test_validate_json_reports_plan_and_command_risks() -> None:
    done = cloudops("validate", str(EXAMPLES / "s3-reports-bucket.yaml"), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["risk"] == "modify"
    assert [(c["id"], c["risk"]) for c in report["commands"]] == [
        ("bucket", "modify"),
        ("tag", "modify"),
        ("list", "read_only"),
    ]


def test_validate_refuses_an_invalid_plan_with_the_reason(tmp_path: Path) -> None:
    plan = tmp_path / "bad.yaml"
    plan.write_text("summary: x\ncommands:\n  - id: a\n    cli: aws s3 ls; rm -rf /\n")
    done = cloudops("validate", str(plan))
    assert done.returncode == 1
    assert "command `a`" in done.stderr and ";" in done.stderr
    as_json = json.loads(cloudops("validate", str(plan), "--json").stdout)
    assert as_json["valid"] is False and as_json["errors"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "/no/such/plan.yaml"], "no such plan file"),
        (["run", "--bogus", "x.yaml"], "unrecognized arguments"),
        (["validate"], "the following arguments are required"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_give_one_clear_line_and_no_traceback(args: list[str], message: str) -> None:
    done = cloudops(*args)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2


def test_bad_settings_give_one_clear_line(tmp_path: Path) -> None:
    env = dict(os.environ, CLOUDOPS_MAX_PARALLEL="many")
    done = cloudops("validate", str(EXAMPLES / "inventory.yaml"), env=env)
    assert done.returncode == 1
    assert "invalid settings" in done.stderr and "Traceback" not in done.stderr


def test_schema_is_the_plan_models_json_schema() -> None:
    done = cloudops("schema")
    schema = json.loads(done.stdout)
    assert schema["title"] == "Plan"
    assert set(schema["required"]) == {"summary", "commands"}


def test_run_without_a_terminal_or_yes_refuses_and_runs_nothing(aws: str) -> None:
    done = cloudops("run", str(EXAMPLES / "s3-reports-bucket.yaml"), env=dict(os.environ), stdin="y\n")
    assert done.returncode == 1
    assert "--yes" in done.stderr
    assert boto3.client("s3").list_buckets()["Buckets"] == []


@pytest.mark.slow
def test_run_yes_executes_against_aws_and_exits_zero(aws: str, tmp_path: Path) -> None:
    env = dict(os.environ, CLOUDOPS_DATA_DIR=str(tmp_path / "data"))
    done = cloudops("run", "--yes", str(EXAMPLES / "s3-reports-bucket.yaml"), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reports-2026" in [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    assert "Plan succeeded" in done.stdout

    history = cloudops("history", "--json", env=env)
    assert history.returncode == 0, history.stderr
    [record] = json.loads(history.stdout)
    assert record["status"] == "succeeded"
    assert record["conversation_id"].startswith("cli:")
    assert record["summary"] == "Create the reports bucket and tag it"
    assert [c["status"] for c in record["commands"]] == ["succeeded"] * 3
    assert record["approvals"][0]["comment"] == "confirmed at the terminal"
    verify = cloudops("audit", "verify", env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.slow
def test_destructive_plan_runs_only_after_the_risk_word_is_typed(aws: str, tmp_path: Path) -> None:
    boto3.client("s3").create_bucket(Bucket="doomed")
    plan = tmp_path / "delete.yaml"
    plan.write_text(
        "summary: Delete the doomed bucket\ncommands:\n  - id: rb\n    cli: aws s3api delete-bucket --bucket doomed\n"
    )
    env = dict(os.environ, CLOUDOPS_DATA_DIR=str(tmp_path / "data"))

    declined = pexpect.spawn(sys.executable, ["-m", "bot.cli", "run", str(plan)], env=env, cwd=str(ROOT), timeout=60)
    declined.expect("Type `destructive` to run it")
    declined.sendline("yes")
    declined.expect(pexpect.EOF)
    declined.close()
    assert declined.exitstatus == 3
    assert "doomed" in [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]

    accepted = pexpect.spawn(sys.executable, ["-m", "bot.cli", "run", str(plan)], env=env, cwd=str(ROOT), timeout=60)
    accepted.expect("Type `destructive` to run it")
    accepted.sendline("destructive")
    accepted.expect(pexpect.EOF)
    accepted.close()
    assert accepted.exitstatus == 0
    assert "doomed" not in [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
