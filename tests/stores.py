"""History stores for engine tests: the fixtures, and a store wrapper that stages a concurrent change."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.history import EdgeHistoryStore, ExecutionRecord
from engine.history.qdrant_store import QdrantHistoryStore
from tests.history.conftest import Backend


class ChangeAfterRead:
    """The real store, except that the next read returns only after ``meanwhile`` ran: the moment between a
    caller's read and its write, where another caller's change lands."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.meanwhile: Callable[[], Awaitable[Any]] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get(self, record_id: Any) -> ExecutionRecord | None:
        record = await self._inner.get(record_id)
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            await meanwhile()
        return record


@pytest.fixture
def store_dir(tmp_path: Path) -> Iterator[Path]:
    """Where the stores live: in memory when the machine has /dev/shm, as the history tests do (every write
    ends with an fsync, which on a busy shared disk would dominate these tests), else in tmp_path."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        with tempfile.TemporaryDirectory(dir=shm, prefix="cloudops-test-") as directory:
            yield Path(directory)
    else:
        yield tmp_path


@pytest.fixture
async def store(store_dir: Path) -> AsyncIterator[EdgeHistoryStore]:
    edge = await EdgeHistoryStore(store_dir / "data").open()
    yield edge
    await edge.close()


@pytest.fixture(params=["edge", "server"])
async def any_store(request: pytest.FixtureRequest, store_dir: Path) -> AsyncIterator[QdrantHistoryStore]:
    """Qdrant Edge, then qdrant-client local mode: the races must hold on both backends."""
    backend = Backend(request.param, store_dir)
    yield await backend.open()
    await backend.close_all()
