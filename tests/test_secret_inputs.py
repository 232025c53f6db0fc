"""Secret inputs are withheld from the stored plan and kept in this process's memory only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import secret_inputs
from engine.errors import PlanValidationError
from engine.plan import plan_from_data
from engine.policy import Policy
from engine.redact import redact_text
from engine.validate import validate_plan

PASSWORD = "Sup3r-Secret-Pw!x"
SECRET_STRING = '{"user":"app","password":"Db-Pass-77q"}'
PLAN = {
    "summary": "give alice a console password",
    "commands": [
        {
            "id": "login",
            "cli": f"aws iam create-login-profile --user-name alice --password '{PASSWORD}'",
            "rollback": "aws iam delete-login-profile --user-name alice",
        },
        {
            "id": "db",
            "sdk": {
                "service": "secretsmanager",
                "operation": "PutSecretValue",
                "params": {"SecretId": "db", "SecretString": SECRET_STRING},
            },
        },
        {"id": "who", "cli": "aws sts get-caller-identity"},
    ],
}


def stored_text(validated: object) -> str:
    return validated.stored.model_dump_json()  # type: ignore[attr-defined]


def test_the_stored_plan_withholds_every_sensitive_input_and_the_run_gets_the_real_ones() -> None:
    validated = validate_plan(plan_from_data(PLAN), Policy())
    text = stored_text(validated)
    assert PASSWORD not in text and "Db-Pass-77q" not in text
    assert text.count("[[withheld-secret:") == 2
    assert "get-caller-identity" in text and "delete-login-profile --user-name alice" in text
    # What the executors get, in memory: the values as written.
    login = validated.command("login").command
    assert login.params == {"UserName": "alice", "Password": PASSWORD}
    assert validated.command("db").command.params == {"SecretId": "db", "SecretString": SECRET_STRING}
    # Approvals bind to the stored plan.
    assert validated.hash == validated.stored.hash != validated.plan.hash


def test_a_stored_plan_validates_again_to_the_same_hash_while_the_values_are_kept() -> None:
    first = validate_plan(plan_from_data(PLAN), Policy())
    stored = plan_from_data(json.loads(stored_text(first)))
    again = validate_plan(stored, Policy())
    assert again.hash == first.hash
    assert again.command("login").command.params == {"UserName": "alice", "Password": PASSWORD}


def test_after_a_restart_a_plan_whose_values_are_gone_is_refused_not_run_with_markers() -> None:
    first = validate_plan(plan_from_data(PLAN), Policy())
    stored = plan_from_data(json.loads(stored_text(first)))
    secret_inputs.forget_all()
    with pytest.raises(PlanValidationError, match="withheld from storage and are no longer kept"):
        validate_plan(stored, Policy())


def test_a_withheld_value_is_redacted_from_any_text_once_seen() -> None:
    validate_plan(plan_from_data(PLAN), Policy())
    assert PASSWORD not in redact_text(f"the operator typed {PASSWORD} in the thread")


def test_plans_without_secret_inputs_are_stored_as_written() -> None:
    plain = plan_from_data({"summary": "s", "commands": [{"id": "a", "cli": "aws s3api list-buckets"}]})
    validated = validate_plan(plain, Policy())
    assert validated.stored_plan is None and validated.stored == plain and validated.hash == plain.hash


def test_a_password_in_a_plan_reaches_aws_and_nowhere_else(aws: str, tmp_path: Path) -> None:
    import boto3

    boto3.client("iam").create_user(UserName="alice")
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "summary: console access for alice\n"
        "commands:\n"
        f"  - id: login\n    cli: aws iam create-login-profile --user-name alice --password '{PASSWORD}'\n"
        "  - id: db\n    sdk: {service: secretsmanager, operation: CreateSecret,\n"
        f"          params: {{Name: db, SecretString: '{SECRET_STRING}'}}}}\n"
    )
    data = tmp_path / "data"
    env = dict(os.environ, CLOUDOPS_DATA_DIR=str(data))
    run = cloudops("run", "--yes", str(plan), env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    # AWS got the real values.
    assert boto3.client("iam").get_login_profile(UserName="alice")["LoginProfile"]["UserName"] == "alice"
    value = boto3.client("secretsmanager").get_secret_value(SecretId="db")["SecretString"]
    assert value == SECRET_STRING
    history = cloudops("history", "--json", env=env)
    export = cloudops("audit", "export", env=env)
    assert history.returncode == 0 and export.returncode == 0, history.stderr + export.stderr
    files = [path for path in data.rglob("*") if path.is_file()]
    assert files
    for secret in (PASSWORD, "Db-Pass-77q"):
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"{secret} at rest in {path}"
        assert secret not in history.stdout + history.stderr + export.stdout + export.stderr
        assert secret not in run.stdout + run.stderr


def cloudops(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=120,
    )
