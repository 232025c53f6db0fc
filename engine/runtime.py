"""Wiring: settings in, a ready orchestrator and execution context out."""

from __future__ import annotations

from engine.commands import ResolvedCommand
from engine.config import EngineSettings
from engine.executors.base import ExecutionContext
from engine.executors.cli import CliExecutor
from engine.executors.sdk import SdkExecutor
from engine.executors.select import ExecutorSelector
from engine.orchestrator import Orchestrator
from engine.results import CommandResult
from engine.retry import run_with_retries
from engine.sinks import OutputSink


def build_selector(settings: EngineSettings) -> ExecutorSelector:
    return ExecutorSelector(settings.executor, CliExecutor(settings.aws_cli_path), SdkExecutor())


def build_orchestrator(settings: EngineSettings, selector: ExecutorSelector | None = None) -> Orchestrator:
    selector = selector or build_selector(settings)

    async def run_command(command: ResolvedCommand, context: ExecutionContext, sink: OutputSink) -> CommandResult:
        executor = selector.for_command(command)
        return await run_with_retries(executor, command, context, sink, settings.retry)

    return Orchestrator(run_command, max_parallel=settings.max_parallel)


def execution_context(
    settings: EngineSettings, *, profile: str | None = None, region: str | None = None, dry_run: bool = False
) -> ExecutionContext:
    """The operator (or channel policy) may pick profile and region; the plan never can."""
    return ExecutionContext(
        profile=profile or settings.aws_profile,
        region=region or settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        dry_run=dry_run,
        default_timeout_seconds=settings.command_timeout_seconds,
    )


__all__ = ["build_orchestrator", "build_selector", "execution_context"]
