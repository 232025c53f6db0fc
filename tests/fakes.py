"""Test executors: scripted per command id, or sleep only. Both fit the Executor protocol and ``RunCommand``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.commands import ResolvedCommand
from engine.executors.base import ExecutionContext
from engine.results import Attempt, CommandResult
from engine.sinks import OutputLine, OutputSink


@dataclass(frozen=True)
class Script:
    """What one command does when run.

    ``lines`` are spread evenly over ``sleep`` (a line is either a stdout text or a ``(stream, text)`` pair).
    ``hang`` waits until the calling task is cancelled; ``raises`` makes the call raise instead of reporting.
    """

    sleep: float = 0.0
    lines: Sequence[str | tuple[str, str]] = ()
    ok: bool = True
    error_code: str | None = None
    error_message: str | None = None
    output: str | None = None
    data: Any = None
    hang: bool = False
    raises: Exception | None = None


@dataclass
class Call:
    command: ResolvedCommand
    context: ExecutionContext
    started: float
    ended: float | None = None
    cancelled: bool = False


@dataclass
class ScriptedExecutor:
    """Runs each command by its script (by command id; ``default`` for the rest) and records every call."""

    scripts: Mapping[str, Script] = field(default_factory=dict)
    default: Script = field(default_factory=Script)
    name: str = "scripted"
    calls: list[Call] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    @property
    def order(self) -> list[str]:
        """Command ids in the order they started."""
        return [call.command.id for call in self.calls]

    def call(self, command_id: str) -> Call:
        matches = [c for c in self.calls if c.command.id == command_id]
        if len(matches) != 1:
            raise KeyError(f"{command_id} was called {len(matches)} times")
        return matches[0]

    def ran(self, command_id: str) -> bool:
        return any(c.command.id == command_id for c in self.calls)

    async def __call__(self, command: ResolvedCommand, context: ExecutionContext, sink: OutputSink) -> CommandResult:
        return await self.run(command, context, sink)

    async def run(self, command: ResolvedCommand, context: ExecutionContext, sink: OutputSink) -> CommandResult:
        script = self.scripts.get(command.id, self.default)
        call = Call(command=command, context=context, started=time.monotonic())
        self.calls.append(call)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        started_at = datetime.now(UTC)
        try:
            await self._play(script, command, sink)
            if script.raises is not None:
                raise script.raises
        except asyncio.CancelledError:
            call.cancelled = True
            raise
        finally:
            self.in_flight -= 1
            call.ended = time.monotonic()
        output = script.output if script.output is not None else "\n".join(_text(line) for line in script.lines)
        return CommandResult(
            ok=script.ok,
            executor=self.name,
            output=output,
            exit_code=0 if script.ok else 1,
            error_code=script.error_code if not script.ok else None,
            error_message=script.error_message if not script.ok else None,
            dry_run=context.dry_run,
            attempts=[
                Attempt(
                    number=1,
                    started_at=started_at,
                    finished_at=datetime.now(UTC),
                    ok=script.ok,
                    error_code=None if script.ok else script.error_code,
                )
            ],
            duration_seconds=call.ended - call.started,
            data=script.data,
        )

    async def _play(self, script: Script, command: ResolvedCommand, sink: OutputSink) -> None:
        gaps = len(script.lines) + 1
        for line in script.lines:
            await asyncio.sleep(script.sleep / gaps)
            stream, text = ("stdout", line) if isinstance(line, str) else line
            await sink.emit(OutputLine(command_id=command.id, stream=stream, line=text))  # type: ignore[arg-type]
        await asyncio.sleep(script.sleep / gaps)
        if script.hang:
            await asyncio.Event().wait()


def _text(line: str | tuple[str, str]) -> str:
    return line if isinstance(line, str) else line[1]


class SleepExecutor:
    """Sleeps for the command's scripted time and succeeds; nothing else, so timing measures the caller."""

    name = "sleep"

    def __init__(self, sleeps: Mapping[str, float]):
        self._sleeps = dict(sleeps)

    async def __call__(self, command: ResolvedCommand, context: ExecutionContext, sink: OutputSink) -> CommandResult:
        return await self.run(command, context, sink)

    async def run(self, command: ResolvedCommand, context: ExecutionContext, sink: OutputSink) -> CommandResult:
        seconds = self._sleeps[command.id]
        await asyncio.sleep(seconds)
        return CommandResult(ok=True, executor=self.name, duration_seconds=seconds)
