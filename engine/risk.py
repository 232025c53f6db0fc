"""The three risk levels, ordered so that the highest of several can be taken with ``max``."""

from __future__ import annotations

from enum import StrEnum


class Risk(StrEnum):
    READ_ONLY = "read_only"
    MODIFY = "modify"
    DESTRUCTIVE = "destructive"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def label(self) -> str:
        return _LABEL[self]

    def __lt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Risk):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Risk):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Risk):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Risk):
            return NotImplemented
        return self.rank >= other.rank


_RANK = {Risk.READ_ONLY: 0, Risk.MODIFY: 1, Risk.DESTRUCTIVE: 2}
_LABEL = {Risk.READ_ONLY: "read-only", Risk.MODIFY: "modify", Risk.DESTRUCTIVE: "destructive"}


def highest(risks: list[Risk] | tuple[Risk, ...], default: Risk = Risk.READ_ONLY) -> Risk:
    return max(risks, default=default)
