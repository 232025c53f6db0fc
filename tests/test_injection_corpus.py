"""Every command in the hostile corpus is refused, for the reason the corpus names, under any policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import PlanValidationError
from engine.plan import CommandSpec, plan_from_data
from engine.policy import Policy
from engine.validate import resolve_command, validate_plan

CORPUS = Path(__file__).parent / "data" / "hostile_commands.txt"


def load_corpus() -> list[tuple[str, str]]:
    cases = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            command, reason = json.loads(line)
            cases.append((command, reason))
    return cases


HOSTILE = load_corpus()


@pytest.fixture(scope="module")
def allowed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("allowed")
    (root / "ok.json").write_text("{}")
    return root


@pytest.fixture(params=["no-local-files", "local-file-dir"])
def policy(request: pytest.FixtureRequest, allowed_dir: Path) -> Policy:
    # The most permissive policies there are: whatever refuses these commands is the validator itself.
    if request.param == "no-local-files":
        return Policy(allow=["*:*"])
    return Policy(allow=["*:*"], local_file_dir=allowed_dir)


def test_the_corpus_holds_at_least_a_hundred_distinct_commands() -> None:
    commands = [command for command, _ in HOSTILE]
    assert len(commands) >= 100
    assert len(set(commands)) == len(commands)


@pytest.mark.parametrize(("command", "reason"), HOSTILE, ids=[f"{n:03d}" for n in range(len(HOSTILE))])
def test_hostile_command_is_refused(command: str, reason: str, policy: Policy) -> None:
    with pytest.raises(PlanValidationError) as caught:
        resolve_command(CommandSpec(cli=command), command_id="hostile", policy=policy)
    problems = caught.value.problems
    assert all(problem.startswith("command `hostile`: ") for problem in problems), problems
    assert any(reason in problem for problem in problems), problems


def test_hostile_commands_are_refused_as_rollback_steps_too() -> None:
    plan = plan_from_data(
        {
            "summary": "hostile rollbacks",
            "commands": [{"id": "safe", "cli": "aws s3api list-buckets", "rollback": [c for c, _ in HOSTILE]}],
        }
    )
    with pytest.raises(PlanValidationError) as caught:
        # Rollback steps count toward max_commands; the limit is raised so that each step is checked.
        validate_plan(plan, Policy(max_commands=len(HOSTILE) + 1))
    refused = {problem.split("`")[1] for problem in caught.value.problems}
    assert refused == {f"safe.rollback.{n}" for n in range(len(HOSTILE))}


@pytest.mark.parametrize(
    "command",
    [
        "aws s3 ls",
        "aws sts get-caller-identity",
        "aws s3api create-bucket --bucket x",
        "aws iam create-user --user-name a",
        "aws s3api list-buckets",
        "aws ec2 describe-instances --query 'Reservations[].Instances[]'",
        "aws s3 sync s3://a s3://b --delete",
        "aws s3api put-object --bucket b --key k",
        "aws sns publish --topic-arn arn:aws:sns:us-east-1:123456789012:t --message hello",
        "aws iam put-role-policy --role-name r --policy-name p --policy-document '{}'",
        "aws ec2 run-instances --image-id ami-1 --user-data hello",
        "aws s3api put-bucket-policy --bucket b --policy '{}'",
        "aws s3 cp s3://b/payload s3://b/copy",
    ],
)
def test_the_corpus_commands_without_their_hostile_part_are_valid(command: str) -> None:
    # The corpus would prove little if its commands failed for some unrelated mistake.
    assert resolve_command(CommandSpec(cli=command), command_id="plain", policy=Policy()).form == "cli"
