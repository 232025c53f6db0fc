"""Realistic execution records for the history benchmark, from a fixed seed.

The shape follows what the bot writes in use: a few thousand conversations (Slack threads and terminal
sessions) of very different lengths, a few dozen people of whom some ask far more than others, plans of one
to four ``aws`` commands drawn from the operations teams actually run (inspect, scale, stop, clean up,
rotate keys, change policies), the statuses those plans end in, approvals for risky ones and capped command
output for the ones that ran. Prompts are written from varied phrasings, environments, teams and resource
names, so that a text search has to rank rather than merely match.

Everything about record ``i`` comes from a random generator seeded with ``(seed, i)``: any record, or any
subset of them, can be produced again without producing the others. Only the layout (which conversation
each record belongs to and when it was made) is planned up front, in creation order.

Loading
-------
``HistoryStore.create`` ends every record with a flush of both shards (an fsync each): right for an audit
record that must exist before its command runs, and tens of milliseconds a record on an ordinary disk, far
too slow for a hundred thousand. ``bulk_load`` writes the same points instead, in batches: each record goes
through the steps ``create`` takes (version 1, ``updated_at``, the chain position, a ``write_token``, the
content hash, the lexical vector, ``record_payload``) using the store's own functions, and its audit entry
is ``AuditEntry.next`` on the running chain. The CPU-heavy part (building and hashing records) runs in worker
processes; the chain, which is sequential by nature, and the writes stay in the loading process. The
benchmark checks the result against ``create`` on a sample and runs ``verify_chain`` over it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import os
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.pool import AsyncResult, Pool
from typing import Any

import qdrant_edge as qe
from qdrant_client import models

from engine.history.chain import GENESIS_HASH, AuditEntry, content_hash
from engine.history.edge import EdgeHistoryStore, _edge_point
from engine.history.layout import LEXICAL, PointToWrite
from engine.history.lexical import LexicalEncoder, SparseVector
from engine.history.qdrant_store import _point
from engine.history.records import ExecutionRecord, RecordStatus, utc_now
from engine.history.server import ServerHistoryStore, _point_struct
from engine.plan import Plan
from engine.risk import Risk, highest

# A fixed end of the timeline keeps the records the same from run to run.
TIMELINE_END = datetime(2025, 6, 1, tzinfo=UTC)
TIMELINE_DAYS = 365
# Every conversation stays within one page of the store's ordered scroll (256), so that `by_conversation`
# and the raw query it is compared with make the same single request.
MAX_CONVERSATION_RECORDS = 200

FIRST_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yasmin",
    "amara", "bjorn", "chen", "dmitri", "esther", "farah", "gustavo", "hana", "idris", "jun",
    "kofi", "lena", "mateo", "noor", "oskar", "priya", "quentin", "rosa", "sanjay", "tamsin",
    "ugo", "vera", "wen", "ximena", "yusuf", "zofia", "anders", "bea", "cyrus", "dalia",
)  # fmt: skip
ENVIRONMENTS = (("prod", 30), ("staging", 30), ("dev", 20), ("qa", 10), ("sandbox", 6), ("perf", 4))
TEAMS = (
    "payments", "checkout", "search", "auth", "data", "ml", "platform", "billing", "growth", "mobile",
    "catalog", "ledger", "notifications", "reporting", "identity",
)  # fmt: skip
REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-2")
ACCOUNTS = ("123456789012", "210987654321", "345678901234", "456789012345")
SLACK_TEAM = "T04ACME77"

STATUS_WEIGHTS = (
    (RecordStatus.SUCCEEDED, 58),
    (RecordStatus.FAILED, 9),
    (RecordStatus.REJECTED, 7),
    (RecordStatus.CANCELLED, 6),
    (RecordStatus.EXPIRED, 5),
    (RecordStatus.PENDING_APPROVAL, 4),
    (RecordStatus.ROLLED_BACK, 3),
    (RecordStatus.INTERRUPTED, 1.5),
    (RecordStatus.APPROVED, 1),
    (RecordStatus.RUNNING, 0.5),
)
_RAN = frozenset(
    {
        RecordStatus.SUCCEEDED,
        RecordStatus.FAILED,
        RecordStatus.ROLLED_BACK,
        RecordStatus.INTERRUPTED,
        RecordStatus.RUNNING,
    }
)
_APPROVED_BEFORE = _RAN | {RecordStatus.APPROVED}

# What people ask for, as (theme, phrasings). The placeholders are filled per record.
PROMPTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "cleanup",
        (
            "terminate the {env} instances left over from the {team} load test",
            "please kill the old {env} {team} boxes, they have been idle since {weekday}",
            "can you clean up the {env} ec2 instances tagged {team}? nobody uses them anymore",
            "shut down and terminate the stale {team} workers in {env}",
            "remove the orphaned {env} volumes and snapshots from the {team} migration",
        ),
    ),
    (
        "inspect",
        (
            "show me all running instances in {env} for {team}",
            "which {team} instances in {env} are still on the old AMI?",
            "list the {env} buckets owned by {team} and their sizes",
            "what does the {team} {env} autoscaling group look like right now",
            "why is {team} slow in {env}? show the cloudwatch alarms and recent errors",
            "describe the {env} rds instances for {team}, I need the engine versions",
        ),
    ),
    (
        "scale",
        (
            "scale the {team} {env} workers to {count} instances for the {event}",
            "bump the {env} {team} autoscaling group to {count}, traffic spike expected",
            "scale {team} back down in {env} after the {event}",
            "set desired capacity of the {env} {team} service to {count}",
        ),
    ),
    (
        "stop",
        (
            "stop the {env} {team} instances over the weekend to save cost",
            "stop all {team} dev boxes in {env} until {weekday}",
            "reboot the {env} {team} database, it is stuck on replication",
            "restart the {team} ecs service in {env}, the tasks are unhealthy",
        ),
    ),
    (
        "access",
        (
            "rotate the access keys of the {team} deploy user in {env}",
            "the {team} ci key leaked in a log, disable it in {env} now",
            "attach the read-only policy to the {team} on-call role in {env}",
            "give {team} read access to the {env} reporting bucket",
        ),
    ),
    (
        "storage",
        (
            "turn on versioning for the {env} {team} bucket",
            "delete the {env} {team} export bucket, the data moved to the lake",
            "snapshot the {team} {env} database before the {event}",
            "purge the {env} {team} dead letter queue after the incident",
            "put a lifecycle policy on the {team} {env} log bucket, keep 30 days",
        ),
    ),
    (
        "functions",
        (
            "update the {team} {env} lambda memory to {memory} MB",
            "invoke the {team} {env} reindex function once",
            "list the lambda functions of {team} in {env} with their runtimes",
        ),
    ),
)
EVENTS = ("black friday sale", "marketing launch", "quarterly close", "load test", "data migration", "game day")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")

# Per theme: "<cli service> <operation> <risk> <argument template>".
_BOTOCORE = {"s3api": "s3"}
_OPERATION_LINES: dict[str, tuple[str, ...]] = {
    "cleanup": (
        "ec2 describe-instances read_only --filters Name=tag:team,Values={team} Name=tag:env,Values={env}",
        "ec2 terminate-instances destructive --instance-ids {instances}",
        "ec2 delete-volume destructive --volume-id {volume}",
        "ec2 delete-snapshot destructive --snapshot-id {snapshot}",
        "ec2 describe-volumes read_only --filters Name=status,Values=available Name=tag:team,Values={team}",
    ),
    "inspect": (
        "ec2 describe-instances read_only --filters Name=instance-state-name,Values=running Name=tag:env,Values={env}",
        "s3api list-buckets read_only --query Buckets[].Name",
        "cloudwatch describe-alarms read_only --alarm-name-prefix {team}-{env} --state-value ALARM",
        "logs filter-log-events read_only --log-group-name /aws/ecs/{team}-{env} --filter-pattern ERROR",
        "rds describe-db-instances read_only --db-instance-identifier {db}",
        "autoscaling describe-auto-scaling-groups read_only --auto-scaling-group-names {asg}",
    ),
    "scale": (
        "autoscaling describe-auto-scaling-groups read_only --auto-scaling-group-names {asg}",
        "autoscaling set-desired-capacity modify --auto-scaling-group-name {asg} --desired-capacity {count}",
        "autoscaling update-auto-scaling-group modify --auto-scaling-group-name {asg} --max-size {max_count}",
        "ecs update-service modify --cluster {env} --service {team}-api --desired-count {count}",
    ),
    "stop": (
        "ec2 stop-instances modify --instance-ids {instances}",
        "ec2 start-instances modify --instance-ids {instances}",
        "rds reboot-db-instance modify --db-instance-identifier {db}",
        "ecs update-service modify --cluster {env} --service {team}-api --force-new-deployment",
        "ec2 describe-instance-status read_only --instance-ids {instances}",
    ),
    "access": (
        "iam list-access-keys read_only --user-name {team}-deploy-{env}",
        "iam create-access-key modify --user-name {team}-deploy-{env}",
        "iam update-access-key modify --user-name {team}-deploy-{env} --access-key-id {key} --status Inactive",
        "iam delete-access-key destructive --user-name {team}-deploy-{env} --access-key-id {key}",
        "iam attach-role-policy modify --role-name {team}-oncall --policy-arn arn:aws:iam::aws:policy/ReadOnlyAccess",
    ),
    "storage": (
        "s3api put-bucket-versioning modify --bucket {bucket} --versioning-configuration Status=Enabled",
        "s3api delete-bucket destructive --bucket {bucket}",
        "rds create-db-snapshot modify --db-instance-identifier {db} --db-snapshot-identifier {team}-{env}-{stamp}",
        "sqs purge-queue destructive --queue-url https://sqs.{region}.amazonaws.com/{account}/{team}-{env}-dlq",
        "s3api put-bucket-lifecycle-configuration modify --bucket {bucket} --lifecycle-configuration file://lifecycle-30d.json",
        "s3api get-bucket-policy read_only --bucket {bucket}",
    ),
    "functions": (
        "lambda update-function-configuration modify --function-name {team}-{env}-reindex --memory-size {memory}",
        "lambda invoke modify --function-name {team}-{env}-reindex out.json",
        "lambda list-functions read_only --query Functions[].[FunctionName,Runtime]",
        "lambda get-function-configuration read_only --function-name {team}-{env}-reindex",
    ),
}


def _operations(lines: tuple[str, ...]) -> tuple[tuple[str, str, str, Risk, str], ...]:
    """(cli service, operation, botocore service, risk, argument template); only ``s3api`` is named apart."""
    parsed = (line.split(" ", 3) for line in lines)
    return tuple((cli, operation, _BOTOCORE.get(cli, cli), Risk(risk), args) for cli, operation, risk, args in parsed)


OPERATIONS = {theme: _operations(lines) for theme, lines in _OPERATION_LINES.items()}

SUMMARIES = {
    "cleanup": "Clean up {env} {team} resources",
    "inspect": "Inspect {team} in {env}",
    "scale": "Scale {team} in {env}",
    "stop": "Stop or restart {team} in {env}",
    "access": "Change access for {team} in {env}",
    "storage": "Storage change for {team} in {env}",
    "functions": "Lambda work for {team} in {env}",
}

ERRORS = (
    ("UnauthorizedOperation", "You are not authorized to perform this operation."),
    ("InvalidInstanceID.NotFound", "The instance ID does not exist"),
    ("Throttling", "Rate exceeded"),
    ("AccessDenied", "User is not authorized to perform the action on the resource"),
    ("DependencyViolation", "The resource has a dependent object"),
    ("ResourceInUseException", "The resource is currently in use"),
)


# What people type when they look for something done before: an action, a thing, where or whose.
SEARCH_ACTIONS = (
    "terminate", "stop", "reboot", "restart", "delete", "scale", "rotate", "snapshot", "purge", "list", "describe",
    "invoke", "attach", "disable", "clean up", "kill", "shut down", "versioning", "lifecycle",
    "terminate-instances", "delete-bucket", "update-service", "set-desired-capacity", "create-access-key",
)  # fmt: skip
SEARCH_THINGS = (
    "instances", "bucket", "buckets", "access keys", "database", "db", "lambda", "function", "queue",
    "alarms", "volumes", "snapshots", "autoscaling group", "workers", "service", "policy", "boxes", "AMI",
    "dead letter queue", "log bucket", "deploy user", "memory", "capacity",
)  # fmt: skip


def search_text(rng: random.Random) -> str:
    """A search as someone would type it: "terminate instances staging", "rotate keys payments prod"."""
    words = [rng.choice(SEARCH_ACTIONS), rng.choice(SEARCH_THINGS)]
    where = rng.random()
    if where < 0.4:
        words.append(rng.choices([e for e, _ in ENVIRONMENTS], [w for _, w in ENVIRONMENTS])[0])
    elif where < 0.7:
        words.append(rng.choice(TEAMS))
    elif where < 0.9:
        words += [rng.choice(TEAMS), rng.choice([e for e, _ in ENVIRONMENTS])]
    return " ".join(words)


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    owner: str
    channel: str | None
    start: datetime
    size: int


@dataclass(frozen=True, slots=True)
class Slot:
    """Where record ``index`` sits: its conversation and its creation time."""

    conversation: int
    timestamp: datetime


class Dataset:
    """``records`` execution records in ``conversations`` conversations by ``users`` people, in creation order."""

    def __init__(self, records: int, *, conversations: int = 0, users: int = 50, seed: int = 20250601) -> None:
        self.seed = seed
        self.size = records
        rng = random.Random(seed)
        self.users = list(FIRST_NAMES[:users]) if users <= len(FIRST_NAMES) else [f"user{i:03d}" for i in range(users)]
        # A few people ask for most of the work, as in any team.
        self._user_weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(self.users))]
        count = conversations or max(1, records // 50)
        self.channels = [f"C0{_base32(rng, 8)}" for _ in range(30)]
        sizes = _conversation_sizes(rng, records, count)
        self.conversations = [self._conversation(rng, size) for size in sizes]
        self.slots = self._layout(rng)

    def _conversation(self, rng: random.Random, size: int) -> Conversation:
        start = TIMELINE_END - timedelta(seconds=rng.uniform(3 * 86400, TIMELINE_DAYS * 86400))
        owner = rng.choices(self.users, self._user_weights)[0]
        if rng.random() < 0.8:
            channel = rng.choice(self.channels)
            thread_ts = f"{start.timestamp():.6f}"
            return Conversation(f"slack:{SLACK_TEAM}:{channel}:{thread_ts}", owner, channel, start, size)
        session = uuid.UUID(int=rng.getrandbits(128), version=4)
        return Conversation(f"cli:{session}", owner, None, start, size)

    def _layout(self, rng: random.Random) -> list[Slot]:
        """Record times within each conversation (minutes to days apart), then all records by time."""
        slots: list[Slot] = []
        for number, conversation in enumerate(self.conversations):
            moment = conversation.start
            for _ in range(conversation.size):
                slots.append(Slot(number, moment))
                moment += timedelta(seconds=rng.expovariate(1 / 1800) + 5)
        slots.sort(key=lambda slot: slot.timestamp)
        return slots

    def record(self, index: int) -> ExecutionRecord:
        """Record ``index`` as a caller would hand it to ``HistoryStore.create`` (no store fields set)."""
        slot = self.slots[index]
        conversation = self.conversations[slot.conversation]
        rng = random.Random(f"{self.seed}:{index}")
        # Mostly the person who started the thread; sometimes a colleague asks in it.
        user = conversation.owner if rng.random() < 0.85 else rng.choices(self.users, self._user_weights)[0]
        return build_record(rng, slot.timestamp, conversation, user, self.users)

    def records(self, indexes: Sequence[int] | range | None = None) -> Iterator[ExecutionRecord]:
        for index in indexes if indexes is not None else range(self.size):
            yield self.record(index)

    def subset(self, size: int) -> list[int]:
        """``size`` record indexes spread evenly over the timeline (every conversation keeps its share)."""
        size = min(size, self.size)
        return [i * self.size // size for i in range(size)]

    def conversation_ids(self, indexes: Sequence[int] | None = None) -> list[str]:
        numbers = (
            {self.slots[i].conversation for i in indexes} if indexes is not None else range(len(self.conversations))
        )
        return [self.conversations[n].id for n in sorted(numbers)]


def build_record(
    rng: random.Random, created: datetime, conversation: Conversation, user: str, users: Sequence[str]
) -> ExecutionRecord:
    theme, phrasings = rng.choice(PROMPTS)
    words = {
        "env": rng.choices([e for e, _ in ENVIRONMENTS], [w for _, w in ENVIRONMENTS])[0],
        "team": rng.choice(TEAMS),
        "weekday": rng.choice(WEEKDAYS),
        "event": rng.choice(EVENTS),
        "count": rng.choice((2, 3, 4, 6, 8, 10, 12, 16, 24)),
        "memory": rng.choice((256, 512, 1024, 2048, 3008)),
        "region": rng.choice(REGIONS),
        "account": rng.choice(ACCOUNTS),
    }
    words["max_count"] = words["count"] * 2
    words["asg"] = f"{words['team']}-{words['env']}-asg"
    words["db"] = f"{words['team']}-{words['env']}-db"
    words["stamp"] = created.strftime("%Y%m%d-%H%M")
    words["bucket"] = f"acme-{words['team']}-{words['env']}-{rng.choice(('exports', 'logs', 'reports', 'assets'))}"
    words["instances"] = " ".join(f"i-0{rng.getrandbits(64):016x}" for _ in range(rng.randint(1, 4)))
    words["volume"] = f"vol-0{rng.getrandbits(64):016x}"
    words["snapshot"] = f"snap-0{rng.getrandbits(64):016x}"
    words["key"] = f"AKIA{_base32(rng, 16)}"
    prompt = rng.choice(phrasings).format(**words)

    operations = OPERATIONS[theme]
    chosen = [operations[0], *rng.sample(operations[1:], k=min(len(operations) - 1, rng.randint(0, 3)))]
    if theme == "inspect":
        chosen = rng.sample(operations, k=rng.randint(1, 3))
    commands = []
    for number, (cli_service, operation, service, risk, template) in enumerate(chosen, start=1):
        cli = f"aws {cli_service} {operation} {template.format(**words)} --region {words['region']}"
        commands.append({"id": f"c{number}", "cli": cli, "service": service, "operation": operation, "risk": risk})
    plan = Plan.model_validate(
        {
            "summary": SUMMARIES[theme].format(**words),
            "commands": [{"id": c["id"], "cli": c["cli"]} for c in commands],
        }
    )
    risk = highest([c["risk"] for c in commands])
    status = rng.choices([s for s, _ in STATUS_WEIGHTS], [w for _, w in STATUS_WEIGHTS])[0]
    if risk == Risk.READ_ONLY and status in (RecordStatus.REJECTED, RecordStatus.ROLLED_BACK):
        status = RecordStatus.SUCCEEDED

    data: dict[str, Any] = {
        "id": uuid.UUID(int=rng.getrandbits(128), version=4),
        "conversation_id": conversation.id,
        "timestamp": created,
        "updated_at": created,
        "user_prompt": prompt,
        "summary": plan.summary,
        "execution_plan": plan.model_dump(mode="json", exclude_none=True),
        "plan_hash": plan.hash,
        "risk": risk,
        "services": [c["service"] for c in commands],
        "requested_by": user,
        "status": status,
        "aws_profile": f"{words['team']}-{words['env']}",
        "aws_region": words["region"],
        "aws_account": words["account"],
        "dry_run": rng.random() < 0.04,
        "channel": conversation.channel,
    }
    if conversation.channel is not None:
        data["link"] = (
            f"https://acme.slack.com/archives/{conversation.channel}/p{int(created.timestamp() * 1e6)}"
            f"?thread_ts={conversation.id.rsplit(':', 1)[1]}"
        )
    approvers = [u for u in users if u != user]
    moment = created + timedelta(seconds=rng.uniform(20, 900))
    approvals = []
    if risk != Risk.READ_ONLY and status in _APPROVED_BEFORE | {RecordStatus.REJECTED}:
        needed = 2 if risk == Risk.DESTRUCTIVE and words["env"] == "prod" else 1
        for approver in rng.sample(approvers, k=needed):
            decision = "reject" if status == RecordStatus.REJECTED else "approve"
            approvals.append(
                {
                    "user": approver,
                    "decision": decision,
                    "at": moment,
                    "plan_hash": plan.hash,
                    "plan_version": 1,
                    "comment": rng.choice((None, None, "lgtm", "checked the tags first", "not during business hours")),
                }
            )
            moment += timedelta(seconds=rng.uniform(10, 600))
    data["approvals"] = approvals
    data["commands"] = _command_records(rng, commands, status, moment, words)
    if status in _RAN:
        finished = max((c.get("completed_at") or moment) for c in data["commands"])
        data["started_at"] = moment
        data["finished_at"] = None if status == RecordStatus.RUNNING else finished
        data["duration_seconds"] = None if status == RecordStatus.RUNNING else (finished - moment).total_seconds()
    if status == RecordStatus.ROLLED_BACK:
        ids = [c["id"] for c in data["commands"]]
        data["rollback"] = {"rolled_back": ids[:-1], "not_rolled_back": ids[-1:]}
    if status == RecordStatus.CANCELLED:
        data["cancelled_by"] = rng.choice((user, rng.choice(approvers)))
    if status == RecordStatus.INTERRUPTED:
        data["notes"] = [
            "interrupted: the process running this plan stopped before it finished "
            f"(found at start-up by ops-bot-1:{rng.randint(1000, 60000)}); not run again"
        ]
    elif rng.random() < 0.05:
        data["notes"] = [rng.choice((f"ticket OPS-{rng.randint(1000, 9999)}", "follow-up in the weekly review"))]
    return ExecutionRecord.model_validate(data)


def _command_records(
    rng: random.Random, commands: list[dict[str, Any]], status: RecordStatus, start: datetime, words: dict[str, Any]
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    moment = start
    failed_at = rng.randrange(len(commands)) if status in (RecordStatus.FAILED, RecordStatus.ROLLED_BACK) else -1
    stopped_at = rng.randrange(len(commands)) if status in (RecordStatus.INTERRUPTED, RecordStatus.RUNNING) else -1
    for position, command in enumerate(commands):
        record: dict[str, Any] = {
            "id": command["id"],
            "command": command["cli"],
            "service": command["service"],
            "operation": "".join(part.title() for part in command["operation"].split("-")),
            "risk": command["risk"],
            "executor": "cli" if rng.random() < 0.3 else "sdk",
        }
        if status not in _RAN:
            record["status"] = "cancelled" if status == RecordStatus.CANCELLED else "pending"
            records.append(record)
            continue
        if (stopped_at >= 0 and position > stopped_at) or (failed_at >= 0 and position > failed_at):
            record["status"] = "skipped"
            record["skipped_reason"] = "an earlier command failed" if failed_at >= 0 else "not started"
            records.append(record)
            continue
        if position == stopped_at:
            record.update(status="running" if status == RecordStatus.RUNNING else "interrupted", started_at=moment)
            records.append(record)
            continue
        duration = rng.lognormvariate(0.0, 1.0)
        done = moment + timedelta(seconds=duration)
        attempt = {"number": 1, "started_at": moment, "finished_at": done, "ok": position != failed_at}
        record.update(started_at=moment, completed_at=done, duration_seconds=duration, attempts=[attempt])
        if position == failed_at:
            code, message = rng.choice(ERRORS)
            attempt.update(error_code=code, error_message=message)
            record.update(status="failed", exit_code=254, error_code=code, error_message=f"{message} ({code})")
            output = f"An error occurred ({code}) when calling the {record['operation']} operation: {message}"
        else:
            record.update(status="rolled_back" if status == RecordStatus.ROLLED_BACK else "succeeded", exit_code=0)
            output = _output(rng, command["operation"], words)
        data = output.encode()
        record.update(output=output, output_bytes=len(data), output_sha256=hashlib.sha256(data).hexdigest())
        records.append(record)
        moment = done
    return records


def _output(rng: random.Random, operation: str, words: dict[str, Any]) -> str:
    """What the command printed: a JSON document of a size typical for the operation."""
    if not operation.startswith(("describe", "list", "filter", "get")):
        return json.dumps(
            {"ResponseMetadata": {"RequestId": str(uuid.UUID(int=rng.getrandbits(128))), "HTTPStatusCode": 200}}
        )
    items = []
    for _ in range(min(40, int(rng.lognormvariate(0.8, 1.0)) + 1)):
        items.append(
            {
                "Id": f"i-0{rng.getrandbits(64):016x}",
                "State": rng.choice(("running", "stopped", "available", "in-use")),
                "Tags": [{"Key": "team", "Value": words["team"]}, {"Key": "env", "Value": words["env"]}],
                "LaunchTime": (TIMELINE_END - timedelta(days=rng.randint(1, 700))).isoformat(),
                "Type": rng.choice(("t3.medium", "m6i.large", "r6g.xlarge", "c7g.2xlarge")),
                "Zone": f"{words['region']}{rng.choice('abc')}",
            }
        )
    return json.dumps({"Items": items}, indent=2)


def _conversation_sizes(rng: random.Random, records: int, count: int) -> list[int]:
    """``count`` sizes adding up to ``records``: most threads are short, a few run long (up to a page)."""
    count = min(count, records)
    weights = [rng.lognormvariate(0.0, 1.0) for _ in range(count)]
    total = sum(weights)
    sizes = [max(1, min(MAX_CONVERSATION_RECORDS, int(records * w / total))) for w in weights]
    if count * MAX_CONVERSATION_RECORDS < records:
        raise ValueError(f"{records} records do not fit in {count} conversations of at most {MAX_CONVERSATION_RECORDS}")
    # Hand out (or take back) the rounding remainder one record at a time, respecting the bounds.
    order = list(range(count))
    rng.shuffle(order)
    position = 0
    while (gap := records - sum(sizes)) != 0:
        n = order[position % count]
        position += 1
        if gap > 0 and sizes[n] < MAX_CONVERSATION_RECORDS:
            sizes[n] += 1
        elif gap < 0 and sizes[n] > 1:
            sizes[n] -= 1
    return sizes


def _base32(rng: random.Random, length: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "".join(rng.choice(alphabet) for _ in range(length))


# -- loading ----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Prepared:
    """A record as ``create`` would store it at chain position ``record.audit_seq``, and its point."""

    record: ExecutionRecord
    point: PointToWrite


def prepare(record: ExecutionRecord, seq: int, encoder: LexicalEncoder) -> Prepared:
    """What ``QdrantHistoryStore.create`` computes before its write, step for step (no embeddings endpoint:
    the default configuration, where ``_vectors_for`` gives the lexical vector alone)."""
    new = ExecutionRecord.model_validate(
        {
            **record.model_dump(),
            "version": 1,
            "updated_at": utc_now(),
            "audit_seq": seq,
            "created_seq": seq,
            "write_token": uuid.uuid4().hex,
        }
    )
    new = new.model_copy(update={"content_hash": content_hash(new)})
    vectors: dict[str, SparseVector | list[float]] = {}
    lexical = encoder.document(new.indexed_text())
    if lexical:
        vectors[LEXICAL] = lexical
    return Prepared(new, _point(new, vectors))


def entry_point(prepared: Prepared, prev_hash: str) -> tuple[PointToWrite, str]:
    """The create entry ``_append_entry`` writes for ``prepared`` after ``prev_hash``, and its hash."""
    record = prepared.record
    entry = AuditEntry.next(seq=record.audit_seq, prev_hash=prev_hash, record=record, op="create", at=record.updated_at)
    return PointToWrite(entry.point_id, entry.model_dump(mode="json")), entry.entry_hash


Writer = Callable[[list[PointToWrite], list[PointToWrite]], Awaitable[None]]


def edge_writer(store: EdgeHistoryStore) -> Writer:
    """Batched inserts on the store's shard thread, as ``_write_record`` (insert-only) and ``_insert_entry``."""

    async def write(records: list[PointToWrite], entries: list[PointToWrite]) -> None:
        record_op = qe.UpdateOperation.upsert_points(
            [_edge_point(p) for p in records], update_mode=qe.UpdateMode.InsertOnly
        )
        entry_op = qe.UpdateOperation.upsert_points(
            [qe.Point(p.id, {}, p.payload) for p in entries], update_mode=qe.UpdateMode.InsertOnly
        )
        await store.run_in_shard_thread(lambda shard, audit: (shard.update(record_op), audit.update(entry_op)))

    return write


def server_writer(store: ServerHistoryStore) -> Writer:
    """Batched upserts through qdrant-client, with the points ``_write_record`` and ``_insert_entry`` send."""

    async def write(records: list[PointToWrite], entries: list[PointToWrite]) -> None:
        await store.client.upsert(
            store.records_collection,
            [_point_struct(p) for p in records],
            wait=True,
            update_mode=models.UpdateMode.INSERT_ONLY,
        )
        await store.client.upsert(
            store.audit_collection,
            [models.PointStruct(id=p.id, vector={}, payload=p.payload) for p in entries],
            wait=True,
            update_mode=models.UpdateMode.INSERT_ONLY,
        )

    return write


@dataclass(slots=True)
class LoadStats:
    records: int = 0
    seconds: float = 0.0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    # Wall time the loading process spent waiting for the workers, building entries, and writing.
    waiting: float = 0.0
    chaining: float = 0.0
    writing: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


# Set in each worker process by ``_init_worker``: the dataset (inherited through fork) and an encoder.
_worker_state: dict[str, Any] = {}


def _init_worker(dataset: Dataset) -> None:
    _worker_state["dataset"] = dataset
    _worker_state["encoder"] = LexicalEncoder()


def _prepare_chunk(task: tuple[list[int], int]) -> list[Prepared]:
    indexes, first_seq = task
    dataset: Dataset = _worker_state["dataset"]
    encoder: LexicalEncoder = _worker_state["encoder"]
    return [prepare(dataset.record(index), first_seq + n, encoder) for n, index in enumerate(indexes)]


def worker_pool(dataset: Dataset, processes: int | None = None) -> Pool:
    """Worker processes that build records; fork shares the dataset's layout instead of pickling it."""
    context = multiprocessing.get_context("fork")
    return context.Pool(processes or os.cpu_count() or 1, initializer=_init_worker, initargs=(dataset,))


async def bulk_load(
    pool: Pool,
    indexes: Sequence[int],
    writers: Sequence[Writer],
    *,
    head_seq: int = 0,
    head_hash: str = GENESIS_HASH,
    batch: int = 250,
    ahead: int = 4,
    progress: Callable[[int], None] | None = None,
) -> LoadStats:
    """Write records ``indexes`` of the pool's dataset, continuing the chain at ``head_seq``/``head_hash``,
    into every store behind ``writers`` (the same points in each).

    At most ``ahead`` batches are built ahead of the writes: finished batches wait in this process's memory,
    and an unbounded queue would make the loader's peak memory a measure of the workers' head start.
    """
    stats = LoadStats(head_seq=head_seq, head_hash=head_hash)
    tasks = [(list(indexes[i : i + batch]), head_seq + 1 + i) for i in range(0, len(indexes), batch)]
    started = time.perf_counter()
    queued: deque[AsyncResult[list[Prepared]]] = deque(
        pool.apply_async(_prepare_chunk, (task,)) for task in tasks[:ahead]
    )
    submitted = len(queued)
    pending: asyncio.Future[Any] | None = None
    while queued:
        mark = time.perf_counter()
        # Blocks this thread (not the shard thread): the previous batch is written while the next is built.
        chunk = queued.popleft().get()
        stats.waiting += time.perf_counter() - mark
        if submitted < len(tasks):
            queued.append(pool.apply_async(_prepare_chunk, (tasks[submitted],)))
            submitted += 1
        mark = time.perf_counter()
        points: list[PointToWrite] = []
        entries: list[PointToWrite] = []
        for prepared in chunk:
            entry, stats.head_hash = entry_point(prepared, stats.head_hash)
            points.append(prepared.point)
            entries.append(entry)
        stats.head_seq = chunk[-1].record.audit_seq
        stats.chaining += time.perf_counter() - mark
        mark = time.perf_counter()
        if pending is not None:
            await pending
        pending = asyncio.ensure_future(asyncio.gather(*(write(points, entries) for write in writers)))
        # Let the writes start (reach the shard thread) before this thread blocks on the workers again.
        await asyncio.sleep(0)
        stats.writing += time.perf_counter() - mark
        stats.records += len(chunk)
        if progress is not None:
            progress(stats.records)
    if pending is not None:
        mark = time.perf_counter()
        await pending
        stats.writing += time.perf_counter() - mark
    stats.seconds = time.perf_counter() - started
    return stats
