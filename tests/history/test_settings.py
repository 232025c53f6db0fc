"""Settings choose the backend and its location; the factory opens the right store or fails closed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.errors import StoreError
from engine.history.edge import EdgeHistoryStore
from engine.history.factory import open_history_store
from engine.history.settings import HistorySettings

_VARIABLES = (
    "CLOUDOPS_DATA_DIR",
    "QDRANT_URL",
    "QDRANT_API_KEY",
    "CLOUDOPS_COLLECTION",
    "CLOUDOPS_OUTPUT_CAP_BYTES",
    "CLOUDOPS_EMBEDDINGS_URL",
    "CLOUDOPS_EMBEDDINGS_API_KEY",
    "CLOUDOPS_EMBEDDINGS_MODEL",
    "XDG_DATA_HOME",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_the_data_dir_follows_xdg_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))

    assert HistorySettings().data_dir == tmp_path / "xdg" / "cloudops"


def test_the_data_dir_defaults_under_the_home_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))

    settings = HistorySettings()

    assert settings.data_dir == tmp_path / ".local" / "share" / "cloudops"
    assert settings.backend == "edge"
    assert settings.output_cap_bytes == 65536


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLOUDOPS_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("QDRANT_URL", "https://qdrant.internal:6333")
    monkeypatch.setenv("QDRANT_API_KEY", "secret-key")
    monkeypatch.setenv("CLOUDOPS_COLLECTION", "team_a")
    monkeypatch.setenv("CLOUDOPS_OUTPUT_CAP_BYTES", "4096")

    settings = HistorySettings()

    assert settings.data_dir == tmp_path / "d"
    assert settings.backend == "server"
    assert settings.qdrant_api_key is not None and settings.qdrant_api_key.get_secret_value() == "secret-key"
    assert "secret-key" not in repr(settings)
    assert (settings.collection_prefix, settings.output_cap_bytes) == ("team_a", 4096)


def test_a_blank_qdrant_url_means_the_embedded_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QDRANT_URL", "  ")

    assert HistorySettings().backend == "edge"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLOUDOPS_OUTPUT_CAP_BYTES", "100"),
        ("CLOUDOPS_COLLECTION", "bad name!"),
        ("QDRANT_URL", "qdrant.internal:6333"),
    ],
)
def test_bad_settings_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError):
        HistorySettings()


async def test_without_a_server_url_the_factory_opens_edge_in_the_data_dir(tmp_path: Path) -> None:
    store = await open_history_store(HistorySettings(data_dir=tmp_path / "data", collection_prefix="t"))
    try:
        assert isinstance(store, EdgeHistoryStore)
        assert (tmp_path / "data" / "history" / "t_records").is_dir()
        assert (tmp_path / "data" / "history" / "t_audit").is_dir()
    finally:
        await store.close()


async def test_an_unreachable_server_fails_closed_at_open(tmp_path: Path) -> None:
    settings = HistorySettings(data_dir=tmp_path, qdrant_url="http://127.0.0.1:9")

    with pytest.raises(StoreError, match=r"127\.0\.0\.1:9"):
        await open_history_store(settings)
    assert not (tmp_path / "history").exists()
