"""A command after validation: what an executor is allowed to run, with its service, operation and risk."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.plan import Plan
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
    high_level: bool = Field(
        default=False, description="An aws CLI command that is not one API operation, such as `s3 cp`."
    )
    api_operations: list[str] = Field(
        default_factory=list,
        description="For an aws CLI customization such as `emr create-cluster`: the API operations it may call.",
    )
    risk: Risk
    returns_secrets: bool = Field(
        default=False,
        description="Its output can hold a member botocore's model marks sensitive: those values are withheld "
        "from the output, and its risk is at least the policy's `secret_reads`.",
    )
    display: str = Field(
        description="The command as shown to people, logs and the LLM: every sensitive input value withheld "
        "(engine.display). Only the executor reads `cli_args` and `params`."
    )
    timeout_seconds: float | None = None
    supports_dry_run: bool = Field(default=False, description="The operation's input has a DryRun member.")

    @property
    def qualified_operation(self) -> str:
        """``service:Operation`` as policies name it (``s3:ls`` style for high-level commands)."""
        return f"{self.service}:{self.operation or self.cli_operation}"

    @property
    def sdk_runnable(self) -> bool:
        return self.operation is not None and self.params is not None


class ValidatedCommand(BaseModel):
    """A plan command that passed validation, with its rollback steps resolved the same way."""

    model_config = ConfigDict(frozen=True)

    id: str
    description: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    command: ResolvedCommand
    rollback: list[ResolvedCommand] = Field(default_factory=list)

    @property
    def risk(self) -> Risk:
        return self.command.risk


class ValidatedPlan(BaseModel):
    """A plan that may run: every command resolved, the dependency graph checked, the risk computed.

    ``risk`` is the highest of the computed risk and the risk the plan states (which can only raise it).
    """

    model_config = ConfigDict(frozen=True)

    plan: Plan
    commands: list[ValidatedCommand]
    computed_risk: Risk
    risk: Risk
    stored_plan: Plan | None = Field(
        default=None,
        description="The plan as stored, shown and approved: its secret inputs withheld (engine.secret_inputs). "
        "None when it has none.",
    )

    @property
    def stored(self) -> Plan:
        """What may be kept or shown: the plan with every sensitive input value withheld."""
        return self.stored_plan or self.plan

    @property
    def hash(self) -> str:
        """The stored plan's hash, which approvals bind to."""
        return self.stored.hash

    @property
    def services(self) -> list[str]:
        return sorted(
            {c.command.service for c in self.commands} | {r.service for c in self.commands for r in c.rollback}
        )

    def command(self, command_id: str) -> ValidatedCommand:
        for command in self.commands:
            if command.id == command_id:
                return command
        raise KeyError(command_id)
