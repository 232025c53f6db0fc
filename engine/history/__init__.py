"""Execution history: records, the store (Qdrant Edge embedded or a Qdrant server), search and audit."""

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
