"""Opening the configured history store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.history.settings import HistorySettings

if TYPE_CHECKING:
    from engine.history.edge import EdgeHistoryStore
    from engine.history.embeddings import EmbeddingsClient
    from engine.history.server import ServerHistoryStore
    from engine.history.store import HistoryStore


def embeddings_from(settings: HistorySettings) -> EmbeddingsClient | None:
    if settings.embeddings_url is None:
        return None
    # aiohttp is loaded only when embeddings are configured.
    from engine.history.embeddings import EmbeddingsClient

    key = settings.embeddings_api_key.get_secret_value() if settings.embeddings_api_key else None
    return EmbeddingsClient(settings.embeddings_url, api_key=key, model=settings.embeddings_model)


async def open_history_store(settings: HistorySettings | None = None) -> HistoryStore:
    """The server store when ``QDRANT_URL`` is set, else the embedded Edge store; opened and ready.

    Raises ``StoreError`` when the store cannot be opened (unreachable server, data directory in use).
    """
    settings = settings or HistorySettings()
    embeddings = embeddings_from(settings)
    # Each backend's client library (qdrant-client takes over a second to import) is loaded only when chosen.
    if settings.qdrant_url:
        from engine.history.server import ServerHistoryStore

        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        server = ServerHistoryStore(
            url=settings.qdrant_url, api_key=key, prefix=settings.collection_prefix, embeddings=embeddings
        )
        return await _opened(server)
    from engine.history.edge import EdgeHistoryStore

    edge = EdgeHistoryStore(settings.data_dir, prefix=settings.collection_prefix, embeddings=embeddings)
    return await _opened(edge)


async def _opened(store: EdgeHistoryStore | ServerHistoryStore) -> HistoryStore:
    try:
        return await store.open()
    except BaseException:
        await store.close()
        raise
