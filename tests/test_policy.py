"""The policy file: loading, clear errors, and the approval rules derived from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import PolicyError
from engine.policy import Policy, load_policy
from engine.risk import Risk

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "policy.example.yaml"


def test_the_example_policy_loads() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.required_approvals(Risk.DESTRUCTIVE) == 2
    assert policy.denial_reason("iam", "CreateUser") == "denied by policy rule `iam:*`"
    assert policy.raised_risk("ec2", "StopInstances") is Risk.DESTRUCTIVE


def test_reads_that_return_secrets_count_as_modify_unless_the_policy_says_otherwise(tmp_path: Path) -> None:
    assert Policy().secret_reads is Risk.MODIFY
    assert load_policy(EXAMPLE).secret_reads is Risk.MODIFY
    path = tmp_path / "policy.yaml"
    path.write_text("secret_reads: read_only\n")
    assert load_policy(path).secret_reads is Risk.READ_ONLY


def test_read_only_plans_run_without_approval_only_while_auto_run_is_on() -> None:
    assert Policy(auto_run_read_only=True).required_approvals(Risk.READ_ONLY) == 0
    assert Policy(auto_run_read_only=False).required_approvals(Risk.READ_ONLY) == 1
    assert Policy(auto_run_read_only=False, min_approvals={Risk.READ_ONLY: 2}).required_approvals(Risk.READ_ONLY) == 2


def test_changing_plans_always_need_at_least_one_approval() -> None:
    policy = Policy(min_approvals={Risk.MODIFY: 0, Risk.DESTRUCTIVE: 0})
    assert policy.required_approvals(Risk.MODIFY) == 1
    assert policy.required_approvals(Risk.DESTRUCTIVE) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("allow: [iam]", "allow.0"),
        ("approvers: {modify: [alice]}", "approvers"),
        ("max_commands: 0", "max_commands"),
        ("local_file_dir: relative/dir", "absolute"),
        ("surprise: true", "surprise"),
        ("secret_reads: never", "secret_reads"),
        ("- a list", "must be a mapping"),
        ("allow: [", "not valid YAML"),
    ],
)
def test_bad_policy_files_get_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=message):
        load_policy(path)


def test_a_missing_policy_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "nope.yaml")
