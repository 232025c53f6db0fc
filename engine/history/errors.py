"""Errors of the history package that are not backend failures (those are ``engine.errors.StoreError``)."""

from __future__ import annotations

from engine.errors import CloudOpsError


class ConversationIdError(CloudOpsError, ValueError):
    """A conversation id does not have the ``slack:...`` or ``cli:...`` form."""


class RecordNotFoundError(CloudOpsError, LookupError):
    """No execution record has the given id."""


class InvalidTransitionError(CloudOpsError, ValueError):
    """A status change the record lifecycle does not allow (for example ``interrupted`` back to ``running``)."""
