"""The Slack app's settings, from the environment and ``.env``.

Socket Mode when ``SLACK_APP_TOKEN`` is set, otherwise HTTP mode, where Slack's requests are verified with
``SLACK_SIGNING_SECRET``. Every secret is a ``SecretStr``, and ``load_bot_settings`` reports problems by
variable name only, so no token ends up in a log or an error message.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.errors import ConfigError


class ServeMode(StrEnum):
    SOCKET = "socket"
    HTTP = "http"


# The environment variable behind each field, for messages that name what the operator has to fix.
ENV_NAMES: dict[str, str] = {
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_app_token": "SLACK_APP_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_api_url": "SLACK_API_URL",
    "policy_path": "CLOUDOPS_POLICY",
    "http_host": "CLOUDOPS_HTTP_HOST",
    "http_port": "CLOUDOPS_HTTP_PORT",
}

# Where each secret lives in the app's configuration pages on api.slack.com, for "is not set" messages.
_WHERE_TO_FIND = {
    "slack_bot_token": "find it under OAuth & Permissions",
    "slack_app_token": "create one under Basic Information > App-Level Tokens with connections:write",
    "slack_signing_secret": "find it under Basic Information > App Credentials",
}


def _blank_is_unset(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class BotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    slack_bot_token: SecretStr = Field(validation_alias=AliasChoices("SLACK_BOT_TOKEN"))
    slack_app_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET"))
    slack_api_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_API_URL"),
        description="Web API base URL; only for pointing the app at an emulator or a proxy.",
    )
    policy_path: Path | None = Field(default=None, validation_alias=AliasChoices("CLOUDOPS_POLICY"))
    http_host: str = Field(default="0.0.0.0", validation_alias=AliasChoices("CLOUDOPS_HTTP_HOST"))
    http_port: int = Field(default=3000, ge=0, le=65535, validation_alias=AliasChoices("CLOUDOPS_HTTP_PORT"))

    @field_validator("slack_bot_token", "slack_app_token", "slack_signing_secret", mode="before")
    @classmethod
    def _strip_secret(cls, value: object) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        value = _blank_is_unset(value)
        return value.strip() if isinstance(value, str) else value

    @field_validator("slack_api_url", "policy_path", mode="before")
    @classmethod
    def _optional(cls, value: object) -> object:
        return _blank_is_unset(value)

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr) -> SecretStr:
        # A user token (xoxp-) would act as a person; an app token (xapp-) cannot call the Web API at all.
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        # slack_sdk joins base_url and the method name without a separator of its own.
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _http_mode_needs_signing_secret(self) -> BotSettings:
        if self.mode is ServeMode.HTTP and self.slack_signing_secret is None:
            raise ValueError(
                "SLACK_SIGNING_SECRET is required in HTTP mode (no SLACK_APP_TOKEN set); "
                f"{_WHERE_TO_FIND['slack_signing_secret']}"
            )
        return self

    @property
    def mode(self) -> ServeMode:
        return ServeMode.SOCKET if self.slack_app_token is not None else ServeMode.HTTP

    @property
    def bot_token(self) -> str:
        return self.slack_bot_token.get_secret_value()

    @property
    def app_token(self) -> str | None:
        return None if self.slack_app_token is None else self.slack_app_token.get_secret_value()

    @property
    def signing_secret(self) -> str | None:
        return None if self.slack_signing_secret is None else self.slack_signing_secret.get_secret_value()


def _problem(error: Any) -> str:
    """One error of a ValidationError as a phrase naming the variable; never quotes the value it was given."""
    where = str(error["loc"][0]) if error["loc"] else None
    # Errors are located by alias when the value came from the environment, by field name for overrides.
    field = next((f for f, env in ENV_NAMES.items() if where in (f, env)), where)
    name = ENV_NAMES.get(field, field) if field else None
    if error["type"] == "missing" and field is not None:
        hint = _WHERE_TO_FIND.get(field)
        return f"{name} is not set" + (f" ({hint})" if hint else "")
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, ValueError):
        return f"{name} {cause}" if name else str(cause)
    message = str(error["msg"])
    return f"{name} is invalid: {message[:1].lower()}{message[1:]}" if name else message


def load_bot_settings(**overrides: Any) -> BotSettings:
    """Settings from the environment and ``.env``, with ``overrides`` (by field name) on top.

    Raises ``ConfigError`` with one line naming every variable that is missing or wrong.
    """
    try:
        return BotSettings(**overrides)
    except ValidationError as exc:
        problems = list(dict.fromkeys(_problem(error) for error in exc.errors(include_input=False)))
        raise ConfigError("; ".join(problems)) from None
