"""Plans and records for history tests, built the way the validator would build them."""

from __future__ import annotations

import shlex
from datetime import datetime

from engine.commands import ResolvedCommand, ValidatedCommand, ValidatedPlan
from engine.history.records import ExecutionRecord, RecordStatus, cli_conversation_id
from engine.plan import Plan
from engine.risk import Risk, highest

_RISKY_WORDS = {"terminate": Risk.DESTRUCTIVE, "delete": Risk.DESTRUCTIVE, "stop": Risk.MODIFY, "put": Risk.MODIFY}


def _risk_of(operation: str) -> Risk:
    return next((risk for word, risk in _RISKY_WORDS.items() if operation.startswith(word)), Risk.READ_ONLY)


def validated_plan(summary: str, *commands: str) -> ValidatedPlan:
    plan = Plan.model_validate(
        {"summary": summary, "commands": [{"id": f"c{i + 1}", "cli": cli} for i, cli in enumerate(commands)]}
    )
    resolved = []
    for command in plan.commands:
        argv = shlex.split(command.cli or "")
        service, operation = argv[1], argv[2]
        resolved.append(
            ValidatedCommand(
                id=command.id,
                command=ResolvedCommand(
                    id=command.id,
                    form="cli",
                    service=service,
                    cli_service=service,
                    operation="".join(part.title() for part in operation.split("-")),
                    cli_operation=operation,
                    cli_args=argv[1:],
                    risk=_risk_of(operation),
                    display=command.cli or "",
                ),
            )
        )
    risk = highest([c.command.risk for c in resolved])
    return ValidatedPlan(plan=plan, commands=resolved, computed_risk=risk, risk=risk)


def new_record(
    summary: str = "List the buckets",
    *commands: str,
    prompt: str = "",
    user: str = "alice",
    status: RecordStatus = RecordStatus.PENDING_APPROVAL,
    conversation_id: str | None = None,
    channel: str | None = None,
    now: datetime | None = None,
) -> ExecutionRecord:
    return ExecutionRecord.new_from_plan(
        validated_plan(summary, *(commands or ("aws s3api list-buckets",))),
        conversation_id=conversation_id or cli_conversation_id(),
        requested_by=user,
        user_prompt=prompt or summary,
        status=status,
        region="eu-west-1",
        profile="ops",
        account="123456789012",
        channel=channel,
        now=now,
    )
