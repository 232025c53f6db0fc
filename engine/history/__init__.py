"""Execution history: records, the store (Qdrant Edge embedded or a Qdrant server), search and audit.

The names below are loaded on first use: the store backends pull in qdrant-client, Qdrant Edge and aiohttp,
which commands that never open a store (``cloudops validate``, ``schema``, ``--help``) should not pay for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.history.audit import AuditProblem, AuditReport, ProblemKind, export_records, verify_chain
    from engine.history.edge import EdgeHistoryStore
    from engine.history.errors import ConversationIdError, InvalidTransitionError, RecordNotFoundError
    from engine.history.factory import open_history_store
    from engine.history.filters import RecordFilter, parse_time_bound
    from engine.history.outcomes import apply_plan_result, record_status_for
    from engine.history.output import DEFAULT_OUTPUT_CAP_BYTES, CappedOutput, cap_output
    from engine.history.records import (
        ApprovalDecision,
        CommandRecord,
        CommandStatus,
        ConversationRef,
        Decision,
        ExecutionRecord,
        RecordStatus,
        RollbackRecord,
        RollbackSummary,
        can_transition,
        cli_conversation_id,
        parse_conversation_id,
        slack_conversation_id,
    )
    from engine.history.server import ServerHistoryStore
    from engine.history.settings import HistorySettings
    from engine.history.store import HistoryStore, SearchHit, TransitionResult

_EXPORTS = {
    "engine.history.audit": ("AuditProblem", "AuditReport", "ProblemKind", "export_records", "verify_chain"),
    "engine.history.edge": ("EdgeHistoryStore",),
    "engine.history.errors": ("ConversationIdError", "InvalidTransitionError", "RecordNotFoundError"),
    "engine.history.factory": ("open_history_store",),
    "engine.history.filters": ("RecordFilter", "parse_time_bound"),
    "engine.history.outcomes": ("apply_plan_result", "record_status_for"),
    "engine.history.output": ("DEFAULT_OUTPUT_CAP_BYTES", "CappedOutput", "cap_output"),
    "engine.history.records": (
        "ApprovalDecision",
        "CommandRecord",
        "CommandStatus",
        "ConversationRef",
        "Decision",
        "ExecutionRecord",
        "RecordStatus",
        "RollbackRecord",
        "RollbackSummary",
        "can_transition",
        "cli_conversation_id",
        "parse_conversation_id",
        "slack_conversation_id",
    ),
    "engine.history.server": ("ServerHistoryStore",),
    "engine.history.settings": ("HistorySettings",),
    "engine.history.store": ("HistoryStore", "SearchHit", "TransitionResult"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "DEFAULT_OUTPUT_CAP_BYTES",
    "ApprovalDecision",
    "AuditProblem",
    "AuditReport",
    "CappedOutput",
    "CommandRecord",
    "CommandStatus",
    "ConversationIdError",
    "ConversationRef",
    "Decision",
    "EdgeHistoryStore",
    "ExecutionRecord",
    "HistorySettings",
    "HistoryStore",
    "InvalidTransitionError",
    "ProblemKind",
    "RecordFilter",
    "RecordNotFoundError",
    "RecordStatus",
    "RollbackRecord",
    "RollbackSummary",
    "SearchHit",
    "ServerHistoryStore",
    "TransitionResult",
    "apply_plan_result",
    "can_transition",
    "cap_output",
    "cli_conversation_id",
    "export_records",
    "open_history_store",
    "parse_conversation_id",
    "parse_time_bound",
    "record_status_for",
    "slack_conversation_id",
    "verify_chain",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        # Also how ``from engine.history import layout`` falls through to importing the submodule.
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
