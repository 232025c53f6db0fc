"""Errors the engine raises at its boundaries. Each carries a message fit to show a user as is."""

from __future__ import annotations


class CloudOpsError(Exception):
    """Base of every error the engine raises on purpose."""


class PlanError(CloudOpsError):
    """The plan text could not be read as a plan (syntax, shape, unknown fields)."""


class RefusedPlanSyntax(PlanError):
    """The text parses, but uses syntax no plan may (aliases, duplicate keys, NaN, deep nesting)."""


class PlanValidationError(CloudOpsError):
    """The plan was read but must not run; ``problems`` lists every reason, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class PolicyError(CloudOpsError):
    """The policy file is missing, unreadable or malformed."""


class ConfigError(CloudOpsError):
    """A setting is missing or wrong."""


class StoreError(CloudOpsError):
    """The history store could not read or write; callers fail closed on it."""
