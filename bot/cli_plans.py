"""`cloudops validate`, `cloudops run` and `cloudops schema`: plans from the terminal, no Slack needed."""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import CloudOpsError, PlanError, PlanValidationError
from engine.risk import Risk

# Each command imports what it needs: `schema` and `--help` need neither the aws CLI's tables nor the
# settings, and `validate` needs nothing of what `run` executes with.
if TYPE_CHECKING:
    from engine.commands import ValidatedPlan
    from engine.config import EngineSettings
    from engine.policy import Policy

EXIT_INVALID = 1
EXIT_FAILED = 1
EXIT_DECLINED = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    validate = subparsers.add_parser("validate", help="check a plan and show its risk")
    validate.add_argument("plan", help="plan file (YAML or JSON), or - for standard input")
    validate.add_argument("--json", action="store_true", help="machine-readable output")
    validate.add_argument("--policy", help="policy file (default: $CLOUDOPS_POLICY)")
    validate.set_defaults(func=cmd_validate)

    run = subparsers.add_parser("run", help="validate, confirm and execute a plan")
    run.add_argument("plan", help="plan file (YAML or JSON), or - for standard input")
    run.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    run.add_argument("--dry-run", action="store_true", help="ask AWS to check, change nothing")
    run.add_argument("--profile", help="AWS profile (default: $AWS_PROFILE)")
    run.add_argument("--region", help="AWS region (default: $AWS_REGION)")
    run.add_argument("--policy", help="policy file (default: $CLOUDOPS_POLICY)")
    run.set_defaults(func=cmd_run)

    schema = subparsers.add_parser("schema", help="print the plan format's JSON Schema")
    schema.set_defaults(func=cmd_schema)


def read_plan_text(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(f"no such plan file: {source}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"cannot read plan file {source}: {exc}") from None


def policy_for(args: argparse.Namespace, settings: EngineSettings) -> Policy:
    from engine.policy import load_policy

    return load_policy(args.policy or settings.policy_path)


def load_validated(args: argparse.Namespace, settings: EngineSettings) -> ValidatedPlan:
    from engine.plan import parse_plan
    from engine.validate import validate_plan

    return validate_plan(parse_plan(read_plan_text(args.plan)), policy_for(args, settings))


def validation_report(validated: ValidatedPlan) -> dict:
    return {
        "valid": True,
        "summary": validated.plan.summary,
        "plan_hash": validated.hash,
        "risk": validated.risk.value,
        "computed_risk": validated.computed_risk.value,
        "mode": validated.plan.mode.value,
        "on_failure": validated.plan.on_failure.value,
        "commands": [
            {
                "id": c.id,
                "risk": c.risk.value,
                "service": c.command.service,
                "operation": c.command.operation or c.command.cli_operation,
                "returns_secrets": c.command.returns_secrets,
                "depends_on": c.depends_on,
                "rollback": [{"display": r.display, "risk": r.risk.value} for r in c.rollback],
            }
            for c in validated.commands
        ],
    }


def cmd_validate(args: argparse.Namespace) -> int:
    from bot.terminal import render_plan

    settings = load_settings()
    try:
        validated = load_validated(args, settings)
    except (PlanError, PlanValidationError) as exc:
        problems = exc.problems if isinstance(exc, PlanValidationError) else str(exc).splitlines()
        if args.json:
            print(json.dumps({"valid": False, "errors": problems}, indent=2))
        else:
            print("Plan is not valid:", file=sys.stderr)
            for problem in problems:
                print(f"  - {problem}", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        print(json.dumps(validation_report(validated), indent=2))
    else:
        print(render_plan(validated, colour=sys.stdout.isatty()))
        print("Plan is valid.")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from engine.plan import plan_json_schema

    print(json.dumps(plan_json_schema(), indent=2))
    return 0


def load_settings() -> EngineSettings:
    from pydantic import ValidationError

    from engine.config import EngineSettings

    try:
        return EngineSettings()
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise CloudOpsError(f"invalid settings: {details}") from None


async def cmd_run(args: argparse.Namespace) -> int:
    from bot.terminal import TerminalSink, render_plan, render_result
    from engine.execution import ExecutionService
    from engine.history import cli_conversation_id, open_history_store
    from engine.plan import parse_plan
    from engine.runtime import execution_context
    from engine.validate import validate_plan

    settings = load_settings()
    policy = policy_for(args, settings)
    try:
        validated = validate_plan(parse_plan(read_plan_text(args.plan)), policy)
    except PlanValidationError as exc:
        print("Plan is not valid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_INVALID
    print(render_plan(validated, colour=sys.stdout.isatty()))
    if not args.yes and not confirm(validated.risk, args.dry_run):
        print("Not run.", file=sys.stderr)
        return EXIT_DECLINED
    context = execution_context(settings, profile=args.profile, region=args.region, dry_run=args.dry_run)
    conversation_id = cli_conversation_id()
    # The record is written before anything runs; if the store cannot be opened or written, nothing runs.
    async with await open_history_store() as store:
        service = ExecutionService(store, policy, settings)
        await service.recover()
        outcome = await service.run_local(
            validated,
            conversation_id=conversation_id,
            requested_by=operator_name(),
            user_prompt=f"cloudops run {args.plan}",
            context=context,
            sink=TerminalSink(),
        )
    if not outcome.started or outcome.result is None:
        print(f"Not run: {outcome.reason}", file=sys.stderr)
        return EXIT_FAILED
    print(render_result(outcome.result))
    if outcome.record is not None:
        print(f"Recorded as {outcome.record.id} in {conversation_id}")
    if not outcome.stored:
        print("warning: the result could not be written to the history store", file=sys.stderr)
    return 0 if outcome.result.ok else EXIT_FAILED


def operator_name() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (KeyError, OSError):
        return "terminal-user"


def confirm(risk: Risk, dry_run: bool) -> bool:
    if not sys.stdin.isatty():
        raise CloudOpsError("confirmation needs a terminal; pass --yes to run without asking")
    if risk is Risk.DESTRUCTIVE and not dry_run:
        answer = input(f"This plan is DESTRUCTIVE. Type `{risk.value}` to run it: ")
        return answer.strip() == risk.value
    answer = input("Run this plan? [y/N] ")
    return answer.strip().lower() in ("y", "yes")
