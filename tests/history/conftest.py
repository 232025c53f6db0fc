"""Fixtures for the history tests: the same store contract on Qdrant Edge and on qdrant-client local mode.

``backend`` knows how to open a store of its kind on a fixed location (so a test can close and reopen it)
and how to reach behind the store into the raw backend, the way someone tampering with the data would.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import qdrant_edge as qe
from aiohttp import web
from qdrant_client import AsyncQdrantClient, models

from engine.history.chain import entry_point_id
from engine.history.edge import EdgeHistoryStore
from engine.history.embeddings import EmbeddingsClient
from engine.history.qdrant_store import QdrantHistoryStore
from engine.history.server import ServerHistoryStore


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # qdrant-client local mode warns once that it ignores payload indexes; that is known and expected here.
    for item in items:
        if f"{Path('tests', 'history')}" in str(item.path):
            item.add_marker(pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning"))


class Backend:
    """One backend kind at one location, with raw access for tampering."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        self.root = root
        self._clients: list[AsyncQdrantClient] = []
        self._stores: list[QdrantHistoryStore] = []

    async def open(self, embeddings: EmbeddingsClient | None = None) -> QdrantHistoryStore:
        store: QdrantHistoryStore
        if self.kind == "edge":
            store = await EdgeHistoryStore(self.root / "data", embeddings=embeddings).open()
        else:
            client = AsyncQdrantClient(path=str(self.root / "qdrant"))
            self._clients.append(client)
            store = await ServerHistoryStore(client=client, embeddings=embeddings).open()
        self._stores.append(store)
        return store

    async def close(self, store: QdrantHistoryStore) -> None:
        await store.close()
        if isinstance(store, ServerHistoryStore):
            await store.client.close()

    async def close_all(self) -> None:
        for store in self._stores:
            await store.close()
        for client in self._clients:
            await client.close()

    # -- reaching behind the store ---------------------------------------------------------------------

    async def set_record_fields(self, store: QdrantHistoryStore, record_id: Any, fields: dict[str, Any]) -> None:
        if isinstance(store, EdgeHistoryStore):
            op = qe.UpdateOperation.set_payload([str(record_id)], fields)
            await store.run_in_shard_thread(lambda records, audit: records.update(op))
        else:
            assert isinstance(store, ServerHistoryStore)
            await store.client.set_payload(store.records_collection, fields, points=[str(record_id)])

    async def delete_record_point(self, store: QdrantHistoryStore, record_id: Any) -> None:
        if isinstance(store, EdgeHistoryStore):
            op = qe.UpdateOperation.delete_points([str(record_id)])
            await store.run_in_shard_thread(lambda records, audit: records.update(op))
        else:
            assert isinstance(store, ServerHistoryStore)
            await store.client.delete(store.records_collection, points_selector=[str(record_id)])

    async def insert_record_point(self, store: QdrantHistoryStore, point_id: str, payload: dict[str, Any]) -> None:
        if isinstance(store, EdgeHistoryStore):
            op = qe.UpdateOperation.upsert_points([qe.Point(point_id, {}, payload)])
            await store.run_in_shard_thread(lambda records, audit: records.update(op))
        else:
            assert isinstance(store, ServerHistoryStore)
            await store.client.upsert(
                store.records_collection, [models.PointStruct(id=point_id, vector={}, payload=payload)]
            )

    async def read_entry(self, store: QdrantHistoryStore, seq: int) -> dict[str, Any]:
        if isinstance(store, EdgeHistoryStore):
            found = await store.run_in_shard_thread(
                lambda records, audit: audit.retrieve([entry_point_id(seq)], with_payload=True, with_vector=False)
            )
        else:
            assert isinstance(store, ServerHistoryStore)
            found = await store.client.retrieve(store.audit_collection, [entry_point_id(seq)], with_payload=True)
        return dict(found[0].payload)

    async def put_entry_point(self, store: QdrantHistoryStore, point_id: str, payload: dict[str, Any]) -> None:
        if isinstance(store, EdgeHistoryStore):
            op = qe.UpdateOperation.upsert_points([qe.Point(point_id, {}, payload)])
            await store.run_in_shard_thread(lambda records, audit: audit.update(op))
        else:
            assert isinstance(store, ServerHistoryStore)
            await store.client.upsert(
                store.audit_collection, [models.PointStruct(id=point_id, vector={}, payload=payload)]
            )

    async def delete_entry(self, store: QdrantHistoryStore, seq: int) -> None:
        if isinstance(store, EdgeHistoryStore):
            op = qe.UpdateOperation.delete_points([entry_point_id(seq)])
            await store.run_in_shard_thread(lambda records, audit: audit.update(op))
        else:
            assert isinstance(store, ServerHistoryStore)
            await store.client.delete(store.audit_collection, points_selector=[entry_point_id(seq)])

    async def break_backend(self, store: QdrantHistoryStore) -> None:
        """Close the backend under the store, as a crashed server or a lost disk would leave it."""
        if isinstance(store, EdgeHistoryStore):
            await store.run_in_shard_thread(lambda records, audit: records.close())
        else:
            assert isinstance(store, ServerHistoryStore)
            await store.client.close()


@pytest.fixture
def store_root(tmp_path: Path) -> Iterator[Path]:
    """A directory for store files, in memory when the machine has /dev/shm.

    Every write ends with an fsync; on a busy shared disk those dominate the suite's time, and nothing in
    the contract depends on the medium (the command-line tests reopen stores on the real disk).
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        with tempfile.TemporaryDirectory(dir=shm, prefix="cloudops-history-") as directory:
            yield Path(directory)
    else:
        yield tmp_path


@pytest.fixture(params=["edge", "server"])
async def backend(request: pytest.FixtureRequest, store_root: Path) -> AsyncIterator[Backend]:
    helper = Backend(request.param, store_root)
    yield helper
    await helper.close_all()


@pytest.fixture
async def store(backend: Backend) -> QdrantHistoryStore:
    return await backend.open()


# -- a fake OpenAI-compatible embeddings endpoint -------------------------------------------------------------

DIMENSIONS = 24
# Words that mean the same thing get the same direction, which is what a real model does and what lets a
# query find a record that shares none of its words.
CONCEPTS = {
    "destroy": {"terminate", "terminated", "delete", "remove", "destroy", "kill", "decommission"},
    "machine": {"server", "servers", "instance", "instances", "machine", "machines", "host", "hosts", "vm"},
    "storage": {"bucket", "buckets", "storage", "object", "objects", "s3"},
    "inspect": {"list", "show", "describe", "look", "ls", "get"},
}
_CONCEPT_OF = {word: i for i, (_, words) in enumerate(sorted(CONCEPTS.items())) for word in words}


def fake_embedding(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if word in _CONCEPT_OF:
            vector[_CONCEPT_OF[word]] += 1.0
        else:
            slot = len(CONCEPTS) + int(hashlib.sha256(word.encode()).hexdigest(), 16) % (DIMENSIONS - len(CONCEPTS))
            vector[slot] += 0.2
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class FakeEmbeddings:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = False
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append({"body": body, "authorization": request.headers.get("Authorization")})
        if self.fail:
            return web.json_response({"error": "model overloaded"}, status=503)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": fake_embedding(t)} for i, t in enumerate(inputs)]
        return web.json_response({"object": "list", "data": list(reversed(data)), "model": body.get("model")})


@pytest.fixture
async def embeddings_server() -> AsyncIterator[FakeEmbeddings]:
    fake = FakeEmbeddings()
    app = web.Application()
    app.router.add_post("/v1/embeddings", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.url = f"http://{host}:{port}/v1"
    yield fake
    await runner.cleanup()
