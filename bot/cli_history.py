"""``cloudops history`` and ``cloudops audit``: read the execution history, check and export the audit trail."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from engine.errors import CloudOpsError, ConfigError
from engine.history.limits import MAX_LIMIT
from engine.risk import Risk

# The records, filters and stores are imported by the functions that use them: `cloudops` imports this
# module for every command (to list these in its help), and the stores bring in the Qdrant clients.
if TYPE_CHECKING:
    from engine.history.audit import AuditReport
    from engine.history.filters import RecordFilter
    from engine.history.records import ExecutionRecord, RecordStatus
    from engine.history.store import HistoryStore


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    history = subparsers.add_parser(
        "history",
        help="list or search past executions",
        description="List the newest execution records, or search them, with optional filters.",
    )
    _add_filters(history)
    history.add_argument("--search", metavar="TEXT", help="rank records by words in prompts, summaries, commands")
    history.add_argument("--limit", type=_limit, default=20, help=f"how many records (1-{MAX_LIMIT}, default 20)")
    history.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    history.set_defaults(func=_history, parser=history)

    audit = subparsers.add_parser(
        "audit", help="verify or export the audit trail", description="Verify or export the audit trail."
    )
    actions = audit.add_subparsers(dest="audit_command", required=True, parser_class=type(audit))
    verify = actions.add_parser(
        "verify",
        help="check the hash chain against the records",
        description="Check every record against the audit hash chain. Exit 1 naming each problem found.",
    )
    verify.set_defaults(func=_verify, parser=verify)
    export = actions.add_parser(
        "export",
        help="write records as JSON Lines or CSV",
        description="Write execution records, in the order they were created, as JSON Lines or CSV.",
    )
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--output", metavar="FILE", type=Path, help="write here instead of standard output")
    _add_filters(export)
    export.set_defaults(func=_export, parser=export)


# -- arguments ------------------------------------------------------------------------------------------------


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conversation", metavar="ID", type=_conversation, help="slack:T..:C..:ts or cli:<uuid>")
    parser.add_argument("--user", metavar="U", help="who asked for the plan")
    parser.add_argument("--status", metavar="S", type=_statuses, action="append", default=[])
    parser.add_argument("--risk", metavar="R", type=_risks, action="append", default=[])
    parser.add_argument("--service", metavar="S", type=_words, action="append", default=[])
    parser.add_argument("--channel", metavar="C", type=_words, action="append", default=[])
    parser.add_argument("--since", metavar="WHEN", type=_time, help="7d, 24h, 30m or an ISO date/time")
    parser.add_argument("--until", metavar="WHEN", type=_time, help="7d, 24h, 30m or an ISO date/time")


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_LIMIT}, not {value}")
    return value


def _conversation(text: str) -> str:
    from engine.history.errors import ConversationIdError
    from engine.history.records import parse_conversation_id

    try:
        return str(parse_conversation_id(text))
    except ConversationIdError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _statuses(text: str) -> list[RecordStatus]:
    from engine.history.records import RecordStatus

    return _choices(RecordStatus, "status", text)


def _risks(text: str) -> list[Risk]:
    return _choices(Risk, "risk", text)


def _choices(enum: type[Enum], what: str, text: str) -> list[Any]:
    values = []
    for word in _words(text):
        try:
            values.append(enum(word.lower().replace("-", "_")))
        except ValueError:
            known = ", ".join(member.value for member in enum)
            raise argparse.ArgumentTypeError(f"unknown {what} {word!r} (choose from {known})") from None
    return values


def _words(text: str) -> list[str]:
    words = [w.strip() for w in text.split(",") if w.strip()]
    if not words:
        raise argparse.ArgumentTypeError("needs a value")
    return words


def _time(text: str) -> datetime:
    from engine.history.filters import parse_time_bound

    try:
        return parse_time_bound(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _filters(args: argparse.Namespace) -> RecordFilter:
    from pydantic import ValidationError

    from engine.history.filters import RecordFilter

    def flat(groups: list[list[Any]]) -> list[Any]:
        return [value for group in groups for value in group]

    try:
        return RecordFilter(
            user=args.user,
            status=flat(args.status),
            risk=flat(args.risk),
            service=flat(args.service),
            channel=flat(args.channel),
            conversation_id=args.conversation,
            since=args.since,
            until=args.until,
        )
    except ValidationError as exc:
        message = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors(include_url=False))
        args.parser.error(message)
        raise  # error() exits; this keeps type checkers content


# -- commands -------------------------------------------------------------------------------------------------


async def _open() -> HistoryStore:
    from pydantic import ValidationError

    from engine.history.factory import open_history_store
    from engine.history.settings import HistorySettings

    try:
        settings = HistorySettings()
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise ConfigError(f"history settings are invalid: {details}") from None
    return await open_history_store(settings)


async def _history(args: argparse.Namespace) -> int:
    filters = _filters(args)
    async with await _open() as store:
        if args.search:
            hits = await store.search(args.search, filters, args.limit)
            rows = [(hit.record, hit.score) for hit in hits]
        else:
            rows = [(record, None) for record in await store.latest(args.limit, filters)]
    if args.json:
        listing = []
        for record, score in rows:
            item = record.model_dump(mode="json")
            if score is not None:
                item["search_score"] = round(score, 6)
            listing.append(item)
        json.dump(listing, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif not rows:
        print("no matching records")
    else:
        _print_table([record for record, _ in rows], sys.stdout)
    return 0


async def _verify(args: argparse.Namespace) -> int:
    from engine.history.audit import verify_chain

    async with await _open() as store:
        report = await verify_chain(store)
    _print_report(report)
    return 0 if report.ok else 1


async def _export(args: argparse.Namespace) -> int:
    from engine.history.audit import export_records

    filters = _filters(args)
    async with await _open() as store:
        if args.output is None:
            await export_records(store, sys.stdout, args.format, filters)
            return 0
        try:
            with args.output.open("w", encoding="utf-8", newline="") as out:
                count = await export_records(store, out, args.format, filters)
        except OSError as exc:
            raise CloudOpsError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(f"exported {count} record{'s' if count != 1 else ''} to {args.output}", file=sys.stderr)
    return 0


# -- output ---------------------------------------------------------------------------------------------------

_COLUMNS = ("CREATED (UTC)", "ID", "STATUS", "RISK", "USER", "SUMMARY")
_SUMMARY_WIDTH = 60


def _print_table(records: list[ExecutionRecord], out: TextIO) -> None:
    rows = [
        (
            record.timestamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
            str(record.id)[:8],
            record.status.value,
            record.risk.label,
            record.requested_by,
            _shorten(record.summary, _SUMMARY_WIDTH),
        )
        for record in records
    ]
    widths = [max(len(str(row[i])) for row in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    for row in [_COLUMNS, *rows]:
        out.write("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


def _shorten(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _print_report(report: AuditReport) -> None:
    if report.ok:
        print(
            f"audit chain OK: {report.entries} entries, {report.records} records; "
            f"head entry {report.head_seq} {report.head_hash}"
        )
        return
    for problem in report.problems:
        print(str(problem))
    count = len(report.problems)
    print(
        f"audit chain BROKEN: {count} problem{'s' if count != 1 else ''} "
        f"({report.entries} entries, {report.records} records)"
    )
