"""Dense embeddings from an OpenAI-compatible endpoint, fused with the lexical ranking, on both backends."""

from __future__ import annotations

import pytest

from engine.history.embeddings import EmbeddingsClient, EmbeddingsError
from engine.history.filters import RecordFilter
from engine.history.qdrant_store import QdrantHistoryStore
from tests.history.builders import new_record
from tests.history.conftest import Backend, FakeEmbeddings


async def _seed(store: QdrantHistoryStore) -> None:
    await store.create(
        new_record("Terminate the old web fleet", "aws ec2 terminate-instances --instance-ids i-1", user="carol")
    )
    await store.create(new_record("List the buckets", "aws s3api list-buckets", user="alice"))
    await store.create(new_record("Rotate the access keys", "aws iam create-access-key --user-name ci", user="bob"))


async def test_meaning_finds_a_record_that_shares_no_words_with_the_query(
    backend: Backend, embeddings_server: FakeEmbeddings
) -> None:
    store = await backend.open(EmbeddingsClient(embeddings_server.url, api_key="k-123", model="fake-embed"))
    await _seed(store)

    hits = await store.search("destroy machines")

    assert hits[0].record.summary == "Terminate the old web fleet"
    sent = embeddings_server.requests[-1]
    assert sent["body"] == {"input": ["destroy machines"], "model": "fake-embed"}
    assert sent["authorization"] == "Bearer k-123"


async def test_without_embeddings_the_same_query_finds_nothing(backend: Backend) -> None:
    store = await backend.open()
    await _seed(store)

    assert await store.search("destroy machines") == []


async def test_fusion_lifts_a_lexical_match_over_a_semantic_runner_up(
    backend: Backend, embeddings_server: FakeEmbeddings
) -> None:
    store = await backend.open(EmbeddingsClient(embeddings_server.url))
    await _seed(store)
    await store.create(new_record("Delete the old buckets", "aws s3 rb s3://old-assets --force"))

    by_meaning = await store.search("destroy machines", limit=2)
    fused = await store.search("access-key destroy machines", limit=2)

    assert [h.record.summary for h in by_meaning] == ["Terminate the old web fleet", "Delete the old buckets"]
    assert {h.record.summary for h in fused} == {"Terminate the old web fleet", "Rotate the access keys"}


async def test_fused_search_honours_filters(backend: Backend, embeddings_server: FakeEmbeddings) -> None:
    store = await backend.open(EmbeddingsClient(embeddings_server.url))
    await _seed(store)

    hits = await store.search("destroy machines", RecordFilter(user="alice"))

    assert [h.record.summary for h in hits] == ["List the buckets"]


async def test_an_unchanged_text_keeps_its_dense_vector_across_transitions(
    backend: Backend, embeddings_server: FakeEmbeddings
) -> None:
    store = await backend.open(EmbeddingsClient(embeddings_server.url))
    record = await store.create(new_record("Terminate the old web fleet", "aws ec2 terminate-instances"))
    calls = len(embeddings_server.requests)

    await store.transition(record.id, expected_status=record.status, changes={"link": "https://slack/p1"})

    assert len(embeddings_server.requests) == calls
    assert (await store.search("destroy machines"))[0].record.id == record.id


async def test_a_failing_endpoint_costs_search_quality_never_the_record(
    backend: Backend, embeddings_server: FakeEmbeddings
) -> None:
    embeddings_server.fail = True
    store = await backend.open(EmbeddingsClient(embeddings_server.url))

    record = await store.create(new_record("Terminate the old web fleet", "aws ec2 terminate-instances"))

    assert (await store.get(record.id)) is not None
    assert [h.record.id for h in await store.search("terminate")] == [record.id]
    assert len(embeddings_server.requests) == 2


async def test_the_embeddings_client_reports_an_unusable_answer(embeddings_server: FakeEmbeddings) -> None:
    embeddings_server.fail = True
    client = EmbeddingsClient(embeddings_server.url)
    try:
        with pytest.raises(EmbeddingsError, match="503"):
            await client.embed(["anything"])
    finally:
        await client.close()


async def test_the_embeddings_client_reports_an_unreachable_endpoint() -> None:
    client = EmbeddingsClient("http://127.0.0.1:9/v1", timeout_seconds=2)
    try:
        with pytest.raises(EmbeddingsError, match="unreachable"):
            await client.embed(["anything"])
    finally:
        await client.close()
