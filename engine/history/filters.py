"""Which records a listing, a search or an export is about."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from engine.history.records import ConversationId, RecordStatus
from engine.risk import Risk


def _as_list(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


class RecordFilter(BaseModel):
    """Conditions that all have to hold. A list field matches a record having any one of its values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str | None = None
    status: list[RecordStatus] = []
    risk: list[Risk] = []
    service: list[str] = []
    channel: list[str] = []
    conversation_id: ConversationId | None = None
    since: datetime | None = None
    until: datetime | None = None

    @field_validator("status", "risk", "service", "channel", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _ordered_window(self) -> RecordFilter:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError("`since` is after `until`")
        return self


_RELATIVE = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time_bound(text: str, *, now: datetime | None = None) -> datetime:
    """``7d``, ``24h``, ``30m``, ``90s``, ``2w`` (that long before now) or an ISO date/time (UTC if no zone)."""
    value = text.strip()
    if match := _RELATIVE.fullmatch(value):
        amount, unit = int(match[1]), match[2]
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use a duration such as 30m, 24h, 7d, 2w or an ISO date like 2024-05-01"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
