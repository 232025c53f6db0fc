"""The policy file: which operations may run, how risky they count, and (for Slack) who approves what.

The engine reads the execution part (allow/deny, risk overrides, secret reads, limits); the Slack front end
reads the channel and approval part. One file, one model, so the two can never disagree.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from engine.errors import PolicyError
from engine.risk import Risk

OperationGlob = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9*?\[\]_.-]+:[A-Za-z0-9*?\[\]_.-]+$")
]
SlackId = Annotated[str, StringConstraints(pattern=r"^[UWS][A-Z0-9]{1,20}$")]


class ChannelPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str | None = None
    environment: str | None = None
    aws_profile: str | None = None


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allow: list[OperationGlob] = Field(default_factory=lambda: ["*:*"], description="service:Operation globs.")
    deny: list[OperationGlob] = Field(default_factory=list, description="Wins over allow.")
    risk_overrides: dict[OperationGlob, Risk] = Field(
        default_factory=dict, description="Raise an operation's risk, e.g. `ec2:StopInstances: destructive`."
    )
    secret_reads: Risk = Field(
        default=Risk.MODIFY,
        description="The level of an operation whose output botocore's model marks sensitive (it returns "
        "secrets): `modify` by default, so it needs approval; never lowers what the operation's verb says.",
    )
    max_commands: int = Field(default=50, ge=1, le=1000)
    local_file_dir: Path | None = Field(
        default=None, description="The one directory whose files plans may read or write; none by default."
    )

    channels: dict[str, ChannelPolicy] = Field(default_factory=dict)
    approvers: dict[Risk, list[SlackId]] = Field(default_factory=dict)
    min_approvals: dict[Risk, Annotated[int, Field(ge=0, le=20)]] = Field(
        default_factory=lambda: {Risk.READ_ONLY: 0, Risk.MODIFY: 1, Risk.DESTRUCTIVE: 2}
    )
    self_approval: dict[Risk, bool] = Field(
        default_factory=lambda: {Risk.READ_ONLY: True, Risk.MODIFY: True, Risk.DESTRUCTIVE: False}
    )
    auto_run_read_only: bool = True
    approval_ttl_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)

    @field_validator("local_file_dir")
    @classmethod
    def _absolute_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError("local_file_dir must be an absolute path")
        return value

    def denial_reason(self, service: str, operation: str, cli_names: tuple[str, str] | None = None) -> str | None:
        """Why ``service:operation`` may not run under this policy, or None when it may."""
        names = _names(service, operation, cli_names)
        for pattern in self.deny:
            if any(_match(pattern, name) for name in names):
                return f"denied by policy rule `{pattern}`"
        if not any(_match(pattern, name) for pattern in self.allow for name in names):
            return "not in the policy's allow list"
        return None

    def raised_risk(self, service: str, operation: str, cli_names: tuple[str, str] | None = None) -> Risk | None:
        names = _names(service, operation, cli_names)
        levels = [risk for pattern, risk in self.risk_overrides.items() if any(_match(pattern, n) for n in names)]
        return max(levels) if levels else None

    def required_approvals(self, risk: Risk) -> int:
        if risk is Risk.READ_ONLY:
            if self.auto_run_read_only:
                return 0
            # Turning auto-run off must mean someone approves, whatever min_approvals says for read-only.
            return max(1, self.min_approvals.get(risk, 1))
        return max(1, self.min_approvals.get(risk, 1))


def _names(service: str, operation: str, cli_names: tuple[str, str] | None) -> list[str]:
    names = [f"{service}:{operation}"]
    if cli_names is not None:
        names.append(f"{cli_names[0]}:{cli_names[1]}")
    return names


def _match(pattern: str, name: str) -> bool:
    return fnmatchcase(name.lower(), pattern.lower())


def load_policy(path: str | Path | None) -> Policy:
    """The policy at ``path``; the permissive default when ``path`` is None."""
    if path is None:
        return Policy()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"policy file {path} must be a mapping")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise PolicyError(f"policy file {path} is invalid: {details}") from None
