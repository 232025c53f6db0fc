"""Terminal rendering: a plan with its risk, and a sink that prints execution live."""

from __future__ import annotations

import sys
from typing import TextIO

from engine.commands import ValidatedPlan
from engine.results import PlanResult, RunState
from engine.risk import Risk
from engine.sinks import CommandStateChanged, Event, OutputLine, PlanStateChanged, RetryScheduled

_STATE_MARK = {
    RunState.RUNNING: "▶",
    RunState.SUCCEEDED: "✔",
    RunState.FAILED: "✖",
    RunState.SKIPPED: "-",
    RunState.CANCELLED: "■",
    RunState.ROLLED_BACK: "↺",
}
_RISK_COLOUR = {Risk.READ_ONLY: "32", Risk.MODIFY: "33", Risk.DESTRUCTIVE: "31"}
RETURNS_SECRETS_NOTE = "returns secrets: sensitive output withheld"


def _paint(text: str, colour: str, enabled: bool) -> str:
    return f"\033[{colour}m{text}\033[0m" if enabled else text


def risk_badge(risk: Risk, colour: bool = False) -> str:
    return _paint(f"[{risk.label.upper()}]", _RISK_COLOUR[risk], colour)


def render_plan(validated: ValidatedPlan, colour: bool = False) -> str:
    plan = validated.plan
    lines = [
        f"{risk_badge(validated.risk, colour)} {plan.summary}",
        f"  mode {plan.mode.value}, on failure {plan.on_failure.value}, {len(validated.commands)} command(s), "
        f"plan {validated.hash[:12]}",
    ]
    if validated.risk is not validated.computed_risk:
        lines.append(f"  risk raised by the plan from {validated.computed_risk.label} to {validated.risk.label}")
    for command in validated.commands:
        after = f" (after {', '.join(command.depends_on)})" if command.depends_on else ""
        # ``display`` withholds every sensitive input value; the raw text is the executor's alone.
        lines.append(f"  {risk_badge(command.risk, colour)} {command.id}{after}: {command.command.display}")
        if command.command.returns_secrets:
            lines.append(f"      {RETURNS_SECRETS_NOTE}")
        if command.description:
            lines.append(f"      {command.description}")
        for step in command.rollback:
            lines.append(f"      rollback: {step.display}")
    return "\n".join(lines)


def render_result(result: PlanResult) -> str:
    lines = [f"Plan {result.state.value} in {result.duration_seconds:.1f}s" + (" (dry run)" if result.dry_run else "")]
    for outcome in result.commands:
        detail = ""
        if outcome.result is not None and outcome.result.error_code:
            detail = f": {outcome.result.error_code} {outcome.result.error_message or ''}".rstrip()
        elif outcome.skipped_reason:
            detail = f": {outcome.skipped_reason}"
        lines.append(f"  {_STATE_MARK.get(outcome.state, ' ')} {outcome.id} {outcome.state.value}{detail}")
    if result.rolled_back:
        lines.append(f"  rolled back: {', '.join(result.rolled_back)}")
    if result.not_rolled_back:
        lines.append(f"  NOT rolled back: {', '.join(result.not_rolled_back)}")
    return "\n".join(lines)


class TerminalSink:
    """Prints output lines as they arrive, prefixed by the command id so parallel runs stay readable."""

    def __init__(self, out: TextIO | None = None, colour: bool | None = None):
        self._out = out or sys.stdout
        self._colour = self._out.isatty() if colour is None else colour

    async def emit(self, event: Event) -> None:
        match event:
            case OutputLine(command_id=cid, stream=stream, line=line):
                prefix = _paint(f"{cid} |", "90" if stream == "stdout" else "31", self._colour)
                self._write(f"{prefix} {line}")
            case CommandStateChanged(command_id=cid, state=state, display=display, reason=reason):
                if state is RunState.RUNNING:
                    self._write(f"{_STATE_MARK[state]} {cid}: {display}")
                else:
                    suffix = f": {reason}" if reason else ""
                    self._write(f"{_STATE_MARK.get(state, ' ')} {cid} {state.value}{suffix}")
            case RetryScheduled(command_id=cid, attempt=attempt, delay_seconds=delay, error_code=code):
                self._write(f"↻ {cid}: {code or 'error'}, attempt {attempt + 1} in {delay:.1f}s")
            case PlanStateChanged():
                pass

    def _write(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()
