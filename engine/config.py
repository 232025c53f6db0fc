"""Engine settings from the environment and ``.env``. The plan never supplies any of these."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RetryStrategy(StrEnum):
    FIXED = "fixed"
    EXPONENTIAL = "exponential"
    LINEAR = "linear"


class RetrySettings(BaseModel):
    strategy: RetryStrategy = RetryStrategy.EXPONENTIAL
    max_attempts: int = Field(default=4, ge=1, le=20)
    base_delay_seconds: float = Field(default=1.0, ge=0, le=300)
    max_delay_seconds: float = Field(default=20.0, ge=0, le=3600)
    jitter: bool = True


class ExecutorChoice(StrEnum):
    AUTO = "auto"  # SDK where a command maps to one API operation, CLI for the CLI's own commands
    SDK = "sdk"
    CLI = "cli"


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_nested_delimiter="__", populate_by_name=True)

    aws_profile: str | None = Field(default=None, validation_alias=AliasChoices("CLOUDOPS_AWS_PROFILE", "AWS_PROFILE"))
    aws_region: str | None = Field(
        default=None, validation_alias=AliasChoices("CLOUDOPS_AWS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")
    )
    aws_endpoint_url: str | None = Field(default=None, validation_alias=AliasChoices("AWS_ENDPOINT_URL"))
    policy_path: Path | None = Field(default=None, validation_alias=AliasChoices("CLOUDOPS_POLICY"))
    executor: ExecutorChoice = Field(default=ExecutorChoice.AUTO, validation_alias=AliasChoices("CLOUDOPS_EXECUTOR"))
    retry: RetrySettings = Field(default_factory=RetrySettings, validation_alias=AliasChoices("CLOUDOPS_RETRY"))
    command_timeout_seconds: float = Field(
        default=300.0, gt=0, validation_alias=AliasChoices("CLOUDOPS_COMMAND_TIMEOUT")
    )
    max_parallel: int = Field(default=8, ge=1, le=64, validation_alias=AliasChoices("CLOUDOPS_MAX_PARALLEL"))
    aws_cli_path: str = Field(default="aws", validation_alias=AliasChoices("CLOUDOPS_AWS_CLI"))
