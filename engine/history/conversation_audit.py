"""The audit chain check for one conversation: ``verify_chain`` over the whole store, narrowed to the records
of that conversation.

The chain links every write of every record, so a record cannot be checked on its own: an entry removed or
forged anywhere breaks the links after it. The whole chain is verified and its problems are split into
those naming one of the conversation's records and the rest (counted, so that a reader of a thread's audit
still learns that the chain has problems elsewhere). A record removed behind the store's back cannot be
tied to a conversation any more (audit entries name records, not conversations); it shows among the rest.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel

from engine.history.audit import AuditProblem, verify_chain
from engine.history.records import ExecutionRecord
from engine.history.store import HistoryStore


class ConversationAudit(BaseModel):
    conversation_id: str
    record_ids: list[str]
    problems: list[AuditProblem]
    other_problems: int
    entries: int
    head_hash: str

    @property
    def ok(self) -> bool:
        """No problem with this conversation's records (problems elsewhere are counted in ``other_problems``)."""
        return not self.problems

    def problems_of(self, record_id: object) -> list[AuditProblem]:
        key = str(record_id)
        return [p for p in self.problems if p.record_id == key]


async def verify_conversation(
    store: HistoryStore, conversation_id: str, records: Iterable[ExecutionRecord] | None = None
) -> ConversationAudit:
    """Check the chain for ``conversation_id``'s records (read from the store unless given)."""
    found = list(records) if records is not None else await store.by_conversation(conversation_id)
    ids = [str(record.id) for record in found]
    wanted = set(ids)
    report = await verify_chain(store)
    mine = [p for p in report.problems if p.record_id in wanted]
    return ConversationAudit(
        conversation_id=conversation_id,
        record_ids=ids,
        problems=mine,
        other_problems=len(report.problems) - len(mine),
        entries=report.entries,
        head_hash=report.head_hash,
    )
