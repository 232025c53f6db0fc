"""Canonical JSON for hashing, with floats in a form every store gives back exactly.

Qdrant (and other JSON parsers that take the fast path) may read a 17-digit float back one unit in the last
place off. Fifteen significant digits always parse exactly, so every float that is stored or hashed is cut
to that first; a hash computed before storing then still matches the record read back.
"""

from __future__ import annotations

import json
import math
from typing import Any

SIGNIFICANT_DIGITS = 15


def stable_float(value: float) -> float:
    if not math.isfinite(value):
        return value
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def stable_floats(data: Any) -> Any:
    """``data`` (JSON-like) with every float made stable; other values are returned as they are."""
    if isinstance(data, float):
        return stable_float(data)
    if isinstance(data, dict):
        return {key: stable_floats(value) for key, value in data.items()}
    if isinstance(data, list):
        return [stable_floats(item) for item in data]
    return data


def canonical_json(data: Any) -> str:
    return json.dumps(stable_floats(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
