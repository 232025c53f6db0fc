"""A command after validation: what an executor is allowed to run, with its service, operation and risk."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.risk import Risk


class ResolvedCommand(BaseModel):
    """One validated command.

    ``cli_args`` is the argv after ``aws`` (for CLI-form commands); ``params`` is the API request
    (for SDK-form commands, and for CLI-form commands that map to exactly one API operation, built with
    the aws CLI's own argument handling so both executors send the same request).
    """

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="Plan command id; rollback steps are `<id>.rollback.<n>`.")
    form: Literal["cli", "sdk"]
    service: str = Field(description="botocore service name, e.g. `s3`, `ec2`.")
    cli_service: str = Field(description="The aws CLI's name for the service command, e.g. `s3api`, `s3`.")
    operation: str | None = Field(description="botocore operation name; None for the CLI's high-level commands.")
    cli_operation: str = Field(description="The aws CLI's operation word, e.g. `create-bucket`, `ls`.")
    cli_args: list[str] | None = None
    params: dict[str, Any] | None = None
    high_level: bool = Field(default=False, description="An aws CLI high-level command such as `s3 cp`.")
    risk: Risk
    display: str
    timeout_seconds: float | None = None
    supports_dry_run: bool = Field(default=False, description="The operation's input has a DryRun member.")

    @property
    def qualified_operation(self) -> str:
        """``service:Operation`` as policies name it (``s3:ls`` style for high-level commands)."""
        return f"{self.service}:{self.operation or self.cli_operation}"

    @property
    def sdk_runnable(self) -> bool:
        return self.operation is not None and self.params is not None
