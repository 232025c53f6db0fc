"""Where execution output goes. Sinks get events that are already redacted and know nothing of AWS."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from engine.results import CommandResult, PlanResult, RunState


class OutputLine(BaseModel):
    command_id: str
    stream: Literal["stdout", "stderr"]
    line: str


class CommandStateChanged(BaseModel):
    command_id: str
    state: RunState
    display: str = ""
    attempt: int = 1
    result: CommandResult | None = None
    reason: str | None = None


class RetryScheduled(BaseModel):
    command_id: str
    attempt: int
    delay_seconds: float
    error_code: str | None = None


class PlanStateChanged(BaseModel):
    state: RunState
    result: PlanResult | None = None


Event = OutputLine | CommandStateChanged | RetryScheduled | PlanStateChanged


@runtime_checkable
class OutputSink(Protocol):
    async def emit(self, event: Event) -> None: ...


class NullSink:
    async def emit(self, event: Event) -> None:
        return None


class ListSink:
    """Keeps every event; for tests and for callers that render at the end."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def emit(self, event: Event) -> None:
        self.events.append(event)

    def lines(self, command_id: str | None = None) -> list[str]:
        return [
            e.line
            for e in self.events
            if isinstance(e, OutputLine) and (command_id is None or e.command_id == command_id)
        ]


class FanOutSink:
    """Sends each event to several sinks; one slow sink does not reorder another's events."""

    def __init__(self, sinks: Iterable[OutputSink]):
        self._sinks = list(sinks)

    async def emit(self, event: Event) -> None:
        # Imported here: this module is also loaded to render plans (`cloudops validate`), with no event loop.
        import asyncio

        await asyncio.gather(*(sink.emit(event) for sink in self._sinks))
