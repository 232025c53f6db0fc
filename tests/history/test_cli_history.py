"""``cloudops history`` and ``cloudops audit`` through the real command-line entry point."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import qdrant_edge as qe

import bot.cli
from bot import cli_history
from engine.history.edge import EdgeHistoryStore
from engine.history.records import ExecutionRecord, RecordStatus
from tests.history.builders import new_record

NOW = datetime.now(UTC)


def _parser() -> argparse.ArgumentParser:
    parser = bot.cli._Parser(prog="cloudops")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=bot.cli._Parser)
    cli_history.register(subparsers)
    return parser


@pytest.fixture
def data_dir(store_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("QDRANT_URL", "CLOUDOPS_COLLECTION", "CLOUDOPS_EMBEDDINGS_URL", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLOUDOPS_DATA_DIR", str(store_root / "data"))
    monkeypatch.setattr(bot.cli, "build_parser", _parser)
    return store_root / "data"


def cloudops(*argv: str) -> int:
    return bot.cli.main(list(argv))


def _populate(data_dir: Path) -> list[ExecutionRecord]:
    async def run() -> list[ExecutionRecord]:
        store = await EdgeHistoryStore(data_dir).open()
        try:
            made = [
                await store.create(
                    new_record("List the buckets", "aws s3api list-buckets", user="alice", now=NOW - timedelta(days=3))
                ),
                await store.create(
                    new_record(
                        "Terminate the old fleet",
                        "aws ec2 terminate-instances --instance-ids i-1",
                        user="bob",
                        status=RecordStatus.APPROVED,
                        now=NOW - timedelta(hours=2),
                    )
                ),
                await store.create(
                    new_record(
                        "Describe instances",
                        "aws ec2 describe-instances",
                        user="alice",
                        now=NOW - timedelta(minutes=5),
                    )
                ),
            ]
        finally:
            await store.close()
        return made

    return asyncio.run(run())


def test_history_prints_a_table_newest_first(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = _populate(data_dir)

    assert cloudops("history") == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["CREATED", "(UTC)", "ID", "STATUS", "RISK", "USER", "SUMMARY"]
    assert [line.split()[2] for line in lines[1:]] == [str(r.id)[:8] for r in reversed(made)]
    assert "destructive" in lines[2] and "Terminate the old fleet" in lines[2]


def test_history_json_applies_filters(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = _populate(data_dir)

    assert cloudops("history", "--user", "alice", "--since", "24h", "--json") == 0

    listed = json.loads(capsys.readouterr().out)
    assert [item["id"] for item in listed] == [str(made[2].id)]


def test_history_filters_by_status_and_risk(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = _populate(data_dir)

    assert cloudops("history", "--status", "approved,rejected", "--risk", "destructive", "--json") == 0

    assert [item["id"] for item in json.loads(capsys.readouterr().out)] == [str(made[1].id)]


def test_history_search_finds_the_command(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = _populate(data_dir)

    assert cloudops("history", "--search", "terminate-instances", "--json") == 0

    listed = json.loads(capsys.readouterr().out)
    assert [item["id"] for item in listed] == [str(made[1].id)]
    assert listed[0]["search_score"] > 0


def test_history_of_an_empty_store_says_so(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cloudops("history") == 0

    assert capsys.readouterr().out == "no matching records\n"


def test_audit_verify_passes_an_untouched_store(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _populate(data_dir)

    assert cloudops("audit", "verify") == 0

    assert capsys.readouterr().out.startswith("audit chain OK: 3 entries, 3 records; head entry 3 ")


def test_audit_verify_names_a_tampered_record_and_exits_1(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = _populate(data_dir)
    shard = qe.EdgeShard.load(str(data_dir / "history" / "cloudops_records"))
    shard.update(qe.UpdateOperation.set_payload([str(made[0].id)], {"user_prompt": "nothing happened"}))
    shard.flush()
    shard.close()

    assert cloudops("audit", "verify") == 1

    out = capsys.readouterr().out
    assert f"changed: record {made[0].id}" in out
    assert out.splitlines()[-1].startswith("audit chain BROKEN: 1 problem")


def test_audit_export_writes_csv_to_a_file(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = _populate(data_dir)
    target = tmp_path / "audit.csv"

    assert cloudops("audit", "export", "--format", "csv", "--output", str(target), "--service", "ec2") == 0

    rows = list(csv.DictReader(target.open(encoding="utf-8", newline="")))
    assert [row["id"] for row in rows] == [str(made[1].id), str(made[2].id)]
    assert capsys.readouterr().err == f"exported 2 records to {target}\n"


def test_audit_export_writes_jsonl_to_standard_output(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = _populate(data_dir)

    assert cloudops("audit", "export") == 0

    lines = capsys.readouterr().out.splitlines()
    assert [ExecutionRecord.model_validate_json(line) for line in lines] == made


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["history", "--since", "7x"], "argument --since: '7x' is not a time"),
        (["history", "--limit", "-1"], "argument --limit: must be between 1 and 1000, not -1"),
        (["history", "--limit", "ten"], "argument --limit: 'ten' is not a whole number"),
        (["history", "--status", "finished"], "argument --status: unknown status 'finished'"),
        (["history", "--risk", "scary"], "argument --risk: unknown risk 'scary'"),
        (["history", "--conversation", "slack:nope"], "argument --conversation: bad conversation id"),
        (["history", "--since", "1d", "--until", "7d"], "`since` is after `until`"),
        (["audit", "export", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (["audit"], "the following arguments are required: audit_command"),
    ],
)
def test_bad_arguments_give_one_line_exit_2_and_touch_nothing(
    data_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cloudops(*argv)

    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("cloudops: error: ")
    assert message in err
    assert not data_dir.exists()


def test_a_store_held_by_another_process_is_a_clear_error(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def hold_and_ask() -> int:
        holder = await EdgeHistoryStore(data_dir).open()
        try:
            return await asyncio.to_thread(cloudops, "history")
        finally:
            await holder.close()

    assert asyncio.run(hold_and_ask()) == 1

    err = capsys.readouterr().err
    assert err.startswith("cloudops: history store ") and "in use by another process" in err
