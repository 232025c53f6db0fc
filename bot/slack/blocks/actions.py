"""Action ids, modal callback ids and the value that binds a click to one version of one plan.

A button's value (and a modal's private_metadata) is ``<record id>:<plan version>:<first 12 of the plan
hash>``. The click handler compares all three with the record before counting anything, so a click on a
card that was since edited, or a forged value, is refused instead of approving a different plan.
"""

from __future__ import annotations

import re
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

APPROVE = "plan_approve"
REJECT = "plan_reject"
EDIT = "plan_edit"
DRY_RUN = "plan_dry_run"
PLAN_ACTION_IDS = (APPROVE, REJECT, EDIT, DRY_RUN)

ACTIONS_BLOCK_ID = "plan_actions"

EDIT_CALLBACK_ID = "plan_edit"
REJECT_CALLBACK_ID = "plan_reject"

# Where a view_submission carries the inputs: state.values[block_id][action_id].value
EDIT_PLAN_BLOCK_ID = "plan_yaml"
EDIT_PLAN_ACTION_ID = "plan_yaml_input"
EDIT_NOTE_BLOCK_ID = "plan_edit_note"
EDIT_NOTE_ACTION_ID = "plan_edit_note_input"
REJECT_REASON_BLOCK_ID = "plan_reject_reason"
REJECT_REASON_ACTION_ID = "plan_reject_reason_input"

SHORT_HASH_LENGTH = 12
_MAX_VERSION = 999_999_999

_VALUE = re.compile(
    r"^(?P<record>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r":(?P<version>[1-9][0-9]{0,8})"
    r":(?P<hash>[0-9a-f]{12})$"
)
_FORM = "<record id>:<plan version>:<12 hex digits of the plan hash>"


class ActionValueError(ValueError):
    """A button value or private_metadata that does not name a plan version."""


class ActionRef(BaseModel):
    """The plan a click or a modal submission is about: which record, which version, which text."""

    model_config = ConfigDict(frozen=True)

    record_id: UUID
    plan_version: int = Field(ge=1, le=_MAX_VERSION)
    plan_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{12}$")]

    @property
    def value(self) -> str:
        return f"{self.record_id}:{self.plan_version}:{self.plan_hash}"

    def matches(self, record_id: UUID, plan_version: int, plan_hash: str) -> bool:
        """True when this ref names exactly that plan; ``plan_hash`` may be the full hash or its short form."""
        return (
            self.record_id == record_id
            and self.plan_version == plan_version
            and plan_hash[:SHORT_HASH_LENGTH] == self.plan_hash
        )


def parse_action_value(value: object) -> ActionRef:
    """The ``ActionRef`` a button value or private_metadata holds; ``ActionValueError`` when it holds none."""
    if not isinstance(value, str):
        raise ActionValueError(f"plan action value must be text in the form {_FORM}, not {type(value).__name__}")
    match = _VALUE.fullmatch(value)
    if match is None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ActionValueError(f"bad plan action value {shown!r}: expected {_FORM}")
    return ActionRef(record_id=UUID(match["record"]), plan_version=int(match["version"]), plan_hash=match["hash"])
