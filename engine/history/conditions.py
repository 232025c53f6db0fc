"""Filter conditions in a form both backends translate: Edge's and qdrant-client's filter classes differ."""

from __future__ import annotations

from dataclasses import dataclass

from engine.history.filters import RecordFilter
from engine.history.layout import CREATED_TS


@dataclass(frozen=True, slots=True)
class Match:
    key: str
    value: str | int | bool


@dataclass(frozen=True, slots=True)
class MatchAny:
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Range:
    key: str
    gte: float | None = None
    lte: float | None = None


Condition = Match | MatchAny | Range


def record_conditions(filters: RecordFilter | None) -> list[Condition]:
    """All of these must hold (a Qdrant ``must`` list)."""
    if filters is None:
        return []
    conditions: list[Condition] = []
    if filters.user is not None:
        conditions.append(Match("requested_by", filters.user))
    if filters.conversation_id is not None:
        conditions.append(Match("conversation_id", filters.conversation_id))
    for key, values in (
        ("status", [s.value for s in filters.status]),
        ("risk", [r.value for r in filters.risk]),
        ("services", filters.service),
        ("channel", filters.channel),
    ):
        if len(values) == 1:
            conditions.append(Match(key, values[0]))
        elif values:
            conditions.append(MatchAny(key, tuple(values)))
    if filters.since is not None or filters.until is not None:
        conditions.append(
            Range(
                CREATED_TS,
                gte=filters.since.timestamp() if filters.since else None,
                lte=filters.until.timestamp() if filters.until else None,
            )
        )
    return conditions
