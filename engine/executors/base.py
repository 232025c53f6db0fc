"""The executor seam: every way of running a command (CLI, SDK, test doubles) fits ``Executor``."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from engine.commands import ResolvedCommand
from engine.results import CommandResult
from engine.sinks import OutputSink


class ExecutionContext(BaseModel):
    """Where and how to run: set by configuration and the operator, never by the plan."""

    model_config = ConfigDict(frozen=True)

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    dry_run: bool = False
    default_timeout_seconds: float = 300.0

    def timeout_for(self, command: ResolvedCommand) -> float:
        return command.timeout_seconds or self.default_timeout_seconds


@runtime_checkable
class Executor(Protocol):
    name: str

    async def run(self, command: ResolvedCommand, context: ExecutionContext, sink: OutputSink) -> CommandResult:
        """Run one attempt of ``command``. Streams output lines to ``sink`` as they arrive.

        Must not raise for AWS or process errors (they become a failed result); cancellation of the
        calling task must stop the work (kill the process) and propagate ``CancelledError``.
        """
        ...
