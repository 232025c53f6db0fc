"""Where the history lives and how it is searched, from the environment and ``.env``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, StringConstraints, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.history.output import DEFAULT_OUTPUT_CAP_BYTES, MIN_OUTPUT_CAP_BYTES


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/cloudops``, or ``~/.local/share/cloudops`` when XDG_DATA_HOME is unset."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "cloudops"


class HistorySettings(BaseSettings):
    """``QDRANT_URL`` set selects a Qdrant server; otherwise Qdrant Edge in ``CLOUDOPS_DATA_DIR``."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default_factory=default_data_dir, validation_alias=AliasChoices("CLOUDOPS_DATA_DIR"))
    qdrant_url: str | None = Field(default=None, validation_alias=AliasChoices("QDRANT_URL"))
    qdrant_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("QDRANT_API_KEY"))
    collection_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")] = Field(
        default="cloudops", validation_alias=AliasChoices("CLOUDOPS_COLLECTION")
    )
    output_cap_bytes: int = Field(
        default=DEFAULT_OUTPUT_CAP_BYTES,
        ge=MIN_OUTPUT_CAP_BYTES,
        le=16 * 1024 * 1024,
        validation_alias=AliasChoices("CLOUDOPS_OUTPUT_CAP_BYTES"),
    )
    embeddings_url: str | None = Field(default=None, validation_alias=AliasChoices("CLOUDOPS_EMBEDDINGS_URL"))
    embeddings_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("CLOUDOPS_EMBEDDINGS_API_KEY")
    )
    embeddings_model: str | None = Field(default=None, validation_alias=AliasChoices("CLOUDOPS_EMBEDDINGS_MODEL"))

    @field_validator("qdrant_url", "embeddings_url", "embeddings_model", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("qdrant_url", "embeddings_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def backend(self) -> str:
        return "server" if self.qdrant_url else "edge"
