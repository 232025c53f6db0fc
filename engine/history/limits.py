"""How many records a store answers per call, in a module of its own so the command line can name it in its
help without importing a store."""

from __future__ import annotations

MAX_LIMIT = 1000
