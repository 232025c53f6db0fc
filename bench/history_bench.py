"""The execution history on 100,000 records: our store against Qdrant Edge alone, and the embedded default
against qdrant-client's local mode, all measured in one run.

1. Generate the records (``bench.history_data``, fixed seed) and load them into ``EdgeHistoryStore`` in a
   temporary directory. ``store.create`` is timed first; when it cannot load them within the budget, the same
   points are written in batches (``bulk_load``), after checking on a sample that they equal what ``create``
   writes and that ``verify_chain`` accepts the result.
2. Three queries on the full store, closed after loading and opened again (as a bot finds it when it
   starts), each over ``--rounds`` rounds of ``--reps`` varied requests: the latest 20 records of a user in
   a status, every record of a conversation, a text search with a user filter. Each request is paired with
   the same request made to the Qdrant Edge shard directly (same filter, order, sparse query vector, limit,
   payload), the sides taking turns so that noise hits both, after one untimed call that brings the
   request's data into memory. Target: p50 ours / p50 raw <= 1.5.
   The raw side includes reading each returned point's id and payload: the binding converts a payload to
   Python objects only when it is read, and a result is of no use to any caller before that. Its query
   vector is computed before the clock starts; ours computes it inside the search. The same raw call is
   also timed on the store's shard thread, and the validation of the payloads into records apart, to show
   where the difference goes.
3. The same queries on a ``--subset`` of the records, loaded into a fresh Edge store and into qdrant-client
   local mode (``ServerHistoryStore(client=AsyncQdrantClient(path=...))``). Target: Edge >= 50x faster.
4. A fresh process opens the full store (``open_history_store``) and answers its first latest-20, against a
   fresh process that loads the same shard directories with Qdrant Edge alone and runs the same raw query
   (median of ``--restarts`` each, alternated; the OS page cache is warm in both).
5. Peak memory (VmHWM) of those processes after they also run the three queries, and of the loader.

Run from the repository root: ``python -m bench.history_bench [--records 100000] [--subset 20000]``.
Progress goes to stderr; the report (a markdown table) to stdout.

Engine imports are local to the functions that need them: the raw child process runs this module too and
must load Qdrant Edge alone, or its memory and start-up would carry ours.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import math
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import qdrant_edge as qe

if TYPE_CHECKING:
    from multiprocessing.pool import Pool

    from bench.history_data import Dataset
    from engine.history import EdgeHistoryStore, ServerHistoryStore
    from engine.history.store import HistoryStore

REPO_ROOT = Path(__file__).resolve().parents[1]

TARGET_OVERHEAD = 1.5
TARGET_LOCAL_SPEEDUP = 50.0
# "A few minutes on 2 cores" for generating and loading the full set.
LOAD_BUDGET_SECONDS = 180.0

LATEST_LIMIT = 20
SEARCH_LIMIT = 10
# The store's layout, spelled out here for the raw requests (checked against engine.history.layout at start).
REQUESTED_BY = "requested_by"
STATUS = "status"
CONVERSATION_ID = "conversation_id"
CREATED_TS = "created_ts"
LEXICAL = "lexical"
# ``by_conversation`` scrolls in pages of this many (``engine.history.qdrant_store._PAGE``); every generated
# conversation fits in one, so the raw side makes the same single request.
CONVERSATION_PAGE = 256

QUERY_KINDS = ("latest", "conversation", "search")
QUERY_TITLES = {
    "latest": "latest 20, user + status filter",
    "conversation": "all records of one conversation",
    "search": "text search, user filter, top 10",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the requests ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """One repetition's parameters, the same for every side that runs it (and for the child processes)."""

    user: str
    status: str
    conversation: str
    text: str
    sparse_indices: list[int]
    sparse_values: list[float]


def _match(key: str, value: str) -> qe.FieldCondition:
    return qe.FieldCondition(key, match=qe.MatchValue(value))


def raw_latest(shard: qe.EdgeShard, request: Request) -> list[tuple[str, Any]]:
    scroll = qe.ScrollRequest(
        limit=LATEST_LIMIT,
        filter=qe.Filter(must=[_match(REQUESTED_BY, request.user), _match(STATUS, request.status)]),
        with_payload=True,
        with_vector=False,
        order_by=qe.OrderBy(CREATED_TS, qe.Direction.Desc, None),
    )
    points, _ = shard.scroll(scroll)
    return [(str(p.id), p.payload) for p in points]


def raw_conversation(shard: qe.EdgeShard, request: Request) -> list[tuple[str, Any]]:
    scroll = qe.ScrollRequest(
        limit=CONVERSATION_PAGE,
        filter=qe.Filter(must=[_match(CONVERSATION_ID, request.conversation)]),
        with_payload=True,
        with_vector=False,
        order_by=qe.OrderBy(CREATED_TS, qe.Direction.Asc, None),
    )
    points, _ = shard.scroll(scroll)
    return [(str(p.id), p.payload) for p in points]


def raw_search(shard: qe.EdgeShard, request: Request) -> list[tuple[str, Any]]:
    query = qe.QueryRequest(
        limit=SEARCH_LIMIT,
        query=qe.Query.Nearest(qe.SparseVector(request.sparse_indices, request.sparse_values), using=LEXICAL),
        filter=qe.Filter(must=[_match(REQUESTED_BY, request.user)]),
        with_payload=True,
    )
    return [(str(p.id), p.payload) for p in shard.query(query)]


RAW_QUERIES: dict[str, Callable[[qe.EdgeShard, Request], list[tuple[str, Any]]]] = {
    "latest": raw_latest,
    "conversation": raw_conversation,
    "search": raw_search,
}


def ours_queries(store: HistoryStore) -> dict[str, Callable[[Request], Awaitable[list[str]]]]:
    """The same three requests through the store's public API; each returns the record ids, in order."""
    from engine.history import RecordFilter

    async def latest(request: Request) -> list[str]:
        found = await store.latest(LATEST_LIMIT, RecordFilter(user=request.user, status=request.status))
        return [str(r.id) for r in found]

    async def conversation(request: Request) -> list[str]:
        return [str(r.id) for r in await store.by_conversation(request.conversation)]

    async def search(request: Request) -> list[str]:
        hits = await store.search(request.text, RecordFilter(user=request.user), limit=SEARCH_LIMIT)
        return [str(h.record.id) for h in hits]

    return {"latest": latest, "conversation": conversation, "search": search}


def make_requests(dataset: Dataset, conversations: Sequence[str], count: int, seed: int) -> list[Request]:
    from bench.history_data import STATUS_WEIGHTS, search_text
    from engine.history.lexical import LexicalEncoder

    rng = random.Random(seed)
    encoder = LexicalEncoder()
    statuses = [s.value for s, _ in STATUS_WEIGHTS]
    requests = []
    for _ in range(count):
        text = search_text(rng)
        sparse = encoder.query(text)
        requests.append(
            Request(
                user=rng.choice(dataset.users),
                status=rng.choice(statuses),
                conversation=rng.choice(conversations),
                text=text,
                sparse_indices=sparse.indices,
                sparse_values=sparse.values,
            )
        )
    return requests


# -- timing ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Series:
    times: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.times)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass(slots=True)
class Pair:
    a: Series
    b: Series
    compared: int
    same: int
    same_set: int
    sizes: list[int]
    c: Series | None = None


async def paired(
    requests: Sequence[Request],
    a: Callable[[Request], Awaitable[list[str]]],
    b: Callable[[Request], Awaitable[list[str]]],
    *,
    reps_a: int,
    reps_b: int,
    warmup: int,
    warm: Callable[[Request], Awaitable[list[str]]] | None = None,
    c: Callable[[Request], Awaitable[list[str]]] | None = None,
) -> Pair:
    """Run ``a`` and ``b`` (and ``c``) on the same requests, rotating which goes first; time each call alone.

    ``a`` runs ``reps_a`` times, ``b`` the first ``reps_b`` of those, ``c`` (only timed) as often as ``a``.
    Before the timed calls, ``warm`` makes the request once untimed: the first touch of a request's points
    costs page faults (several times a warm call), and whichever side went first would pay them. Where both
    ran, the answers of ``a`` and ``b`` are compared (same ids in the same order).
    """
    sides = [(a, reps_a), (b, reps_b)] + ([(c, reps_a)] if c is not None else [])
    for request in requests[-warmup:] if warmup else []:
        for fn, _ in sides:
            await fn(request)
    times: list[list[float]] = [[] for _ in sides]
    compared = same = same_set = 0
    sizes: list[int] = []
    for i in range(max(reps_a, reps_b)):
        request = requests[i]
        if warm is not None:
            await warm(request)
        answers: dict[int, list[str]] = {}
        for step in range(len(sides)):
            side = (i + step) % len(sides)
            fn, reps = sides[side]
            if i >= reps:
                continue
            start = time.perf_counter()
            answers[side] = await fn(request)
            times[side].append(time.perf_counter() - start)
        if 0 in answers and 1 in answers:
            compared += 1
            same += answers[0] == answers[1]
            same_set += set(answers[0]) == set(answers[1])
        sizes.append(len(answers[0]))
    third = Series(times[2]) if c is not None else None
    return Pair(Series(times[0]), Series(times[1]), compared, same, same_set, sizes, third)


def raw_async(
    shard: qe.EdgeShard, fn: Callable[[qe.EdgeShard, Request], list[tuple[str, Any]]]
) -> Callable[[Request], Awaitable[list[str]]]:
    """The raw call, straight on the caller's thread (no hop to a worker: the engine alone)."""

    async def call(request: Request) -> list[str]:
        return [point_id for point_id, _ in fn(shard, request)]

    return call


def raw_on_shard_thread(
    store: EdgeHistoryStore, fn: Callable[[qe.EdgeShard, Request], list[tuple[str, Any]]]
) -> Callable[[Request], Awaitable[list[str]]]:
    """The same raw call made on the store's shard thread: what the thread hop costs, as a query pays it."""

    async def call(request: Request) -> list[str]:
        found = await store.run_in_shard_thread(lambda records, audit: fn(records, request))
        return [point_id for point_id, _ in found]

    return call


# -- measurements ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class CreateCheck:
    per_record: float
    sample: int
    differences: list[str]
    verify_records: int
    verify_problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.differences and not self.verify_problems


async def check_create_path(dataset: Dataset, pool: Pool, base: Path, sample: int) -> CreateCheck:
    """Time ``store.create`` on ``sample`` records; write the same records with ``bulk_load`` into a second
    store and compare the two as stored (payloads, vectors, audit entries); then bulk-load as many again on
    top of the chain ``create`` made, and let ``verify_chain`` judge both stores."""
    from bench.history_data import bulk_load, edge_writer
    from engine.history import EdgeHistoryStore, verify_chain

    created = await EdgeHistoryStore(base / "check-create").open()
    bulk = await EdgeHistoryStore(base / "check-bulk").open()
    try:
        start = time.perf_counter()
        for record in dataset.records(range(sample)):
            await created.create(record)
        per_record = (time.perf_counter() - start) / sample
        await bulk_load(pool, range(sample), [edge_writer(bulk)], batch=max(1, sample // 4))

        differences: list[str] = []
        # Fields that differ by nature from one write to the next: the time, the random token, and the hashes
        # that cover them.
        per_write = {"updated_at", "write_token", "content_hash"}
        per_entry = {"at", "content_hash", "prev_hash", "entry_hash"}
        for name, kind in (("records", "record"), ("audit", "entry")):
            a = await _all_points(created, name)
            b = await _all_points(bulk, name)
            skip = per_write if kind == "record" else per_entry
            key = "id" if kind == "record" else "seq"
            mine = {_key(p, key): p for p in b}
            for point in a:
                other = mine.pop(_key(point, key), None)
                if other is None:
                    differences.append(f"{kind} {_key(point, key)} missing from the bulk store")
                    continue
                left = {k: v for k, v in point.payload.items() if k not in skip}
                right = {k: v for k, v in other.payload.items() if k not in skip}
                if left != right:
                    fields = sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))
                    differences.append(f"{kind} {_key(point, key)}: {', '.join(fields)}")
                if _vectors(point) != _vectors(other):
                    differences.append(f"{kind} {_key(point, key)}: vectors")
            differences += [f"{kind} {k} only in the bulk store" for k in mine]

        head = await created._chain_head()
        await bulk_load(pool, range(sample, 2 * sample), [edge_writer(created)], head_seq=head.seq, head_hash=head.hash)
        problems: list[str] = []
        records = 0
        for store in (created, bulk):
            await store.run_in_shard_thread(lambda shard, audit: (shard.flush(), audit.flush()))
            report = await verify_chain(store)
            records += report.records
            problems += [str(p) for p in report.problems]
    finally:
        await created.close()
        await bulk.close()
    return CreateCheck(per_record, sample, differences[:5], records, problems[:5])


async def _all_points(store: EdgeHistoryStore, which: str) -> list[Any]:
    def scan(records: qe.EdgeShard, audit: qe.EdgeShard) -> list[Any]:
        shard = records if which == "records" else audit
        points, _ = shard.scroll(qe.ScrollRequest(limit=1_000_000, with_payload=True, with_vector=True))
        return points

    return await store.run_in_shard_thread(scan)


def _key(point: Any, key: str) -> str:
    return str(point.id) if key == "id" else str(point.payload.get(key))


def _vectors(point: Any) -> dict[str, tuple[list[int], list[float]]]:
    vectors = point.vector or {}
    return {name: (list(v.indices), list(v.values)) for name, v in vectors.items() if hasattr(v, "indices")}


@dataclass(slots=True)
class QueryResult:
    kind: str
    pair: Pair
    # Validating the answer's payloads into records (full store only): measured apart, after the pairs.
    validation: Series | None = None
    # p50 ours / p50 raw of each round (full store only): how much the ratio moves within one run.
    round_ratios: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.pair.a.p50 / self.pair.b.p50


def merged(pairs: Sequence[Pair]) -> Pair:
    third = [t for p in pairs if p.c is not None for t in p.c.times]
    return Pair(
        Series([t for p in pairs for t in p.a.times]),
        Series([t for p in pairs for t in p.b.times]),
        sum(p.compared for p in pairs),
        sum(p.same for p in pairs),
        sum(p.same_set for p in pairs),
        [n for p in pairs for n in p.sizes],
        Series(third) if third else None,
    )


async def measure_overhead(
    store: EdgeHistoryStore, requests: Sequence[Request], reps: int, rounds: int, warmup: int
) -> list[QueryResult]:
    """``rounds`` rounds of ``reps`` requests per query kind, the kinds taking turns within each round."""
    from engine.history.layout import record_from_payload

    shard: qe.EdgeShard = await store.run_in_shard_thread(lambda records, audit: records)
    ours = ours_queries(store)
    pairs: dict[str, list[Pair]] = {kind: [] for kind in QUERY_KINDS}
    for number in range(rounds):
        batch = requests[number * reps : (number + 1) * reps]
        for kind in QUERY_KINDS:
            log(f"  round {number + 1}/{rounds}, {kind}: {reps} requests; ours, raw, raw on the shard thread")
            raw = raw_async(shard, RAW_QUERIES[kind])
            threaded = raw_on_shard_thread(store, RAW_QUERIES[kind])

            async def warm(request: Request, raw: Any = raw, threaded: Any = threaded) -> list[str]:
                # On both threads: the pages in memory, and the data in the caches of whichever core runs each.
                await raw(request)
                return await threaded(request)

            pairs[kind].append(
                await paired(
                    [*batch, *requests[-warmup:]] if warmup else batch,
                    ours[kind],
                    raw,
                    reps_a=reps,
                    reps_b=reps,
                    warmup=warmup if number == 0 else 0,
                    warm=warm,
                    c=threaded,
                )
            )
    results = []
    for kind in QUERY_KINDS:
        validations: list[float] = []
        for request in requests[: reps * rounds]:
            payloads = [payload for _, payload in RAW_QUERIES[kind](shard, request)]
            start = time.perf_counter()
            for payload in payloads:
                record_from_payload(payload)
            validations.append(time.perf_counter() - start)
        ratios = [p.a.p50 / p.b.p50 for p in pairs[kind]]
        results.append(QueryResult(kind, merged(pairs[kind]), Series(validations), ratios))
    return results


async def measure_local(
    edge: EdgeHistoryStore, local: ServerHistoryStore, requests: Sequence[Request], reps: int, local_reps: int
) -> list[QueryResult]:
    edge_queries = ours_queries(edge)
    local_queries = ours_queries(local)
    results = []
    for kind in QUERY_KINDS:
        log(f"  {kind}: Edge {reps} requests, local mode {local_reps}")
        pair = await paired(requests, edge_queries[kind], local_queries[kind], reps_a=reps, reps_b=local_reps, warmup=2)
        results.append(QueryResult(kind, pair))
    return results


# -- child processes -----------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def child_ours(data_dir: str, requests: list[Request]) -> dict[str, Any]:
    started = time.perf_counter()
    from engine.history import HistorySettings, RecordFilter, open_history_store

    imported = time.perf_counter()
    # Explicit settings: a QDRANT_URL or embeddings endpoint in the environment must not change the subject.
    settings = HistorySettings(data_dir=data_dir, qdrant_url=None, embeddings_url=None, _env_file=None)
    first = requests[0]
    t0 = time.perf_counter()
    store = await open_history_store(settings)
    t1 = time.perf_counter()
    found = await store.latest(LATEST_LIMIT, RecordFilter(user=first.user, status=first.status))
    t2 = time.perf_counter()
    queries = ours_queries(store)
    for request in requests:
        for kind in QUERY_KINDS:
            await queries[kind](request)
    await store.close()
    return {
        "import": imported - started,
        "open": t1 - t0,
        "first_query": t2 - t1,
        "first_ids": [str(r.id) for r in found],
        "peak_mb": peak_rss_mb(),
    }


def child_raw(shard_dirs: list[str], requests: list[Request]) -> dict[str, Any]:
    first = requests[0]
    t0 = time.perf_counter()
    shards = [qe.EdgeShard.load(path) for path in shard_dirs]
    t1 = time.perf_counter()
    found = raw_latest(shards[0], first)
    t2 = time.perf_counter()
    for request in requests:
        for kind in QUERY_KINDS:
            RAW_QUERIES[kind](shards[0], request)
    for shard in shards:
        shard.close()
    return {
        "import": 0.0,
        "open": t1 - t0,
        "first_query": t2 - t1,
        "first_ids": [point_id for point_id, _ in found],
        "peak_mb": peak_rss_mb(),
    }


def run_child(kind: str, target: str, params: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.history_bench",
        "--child",
        kind,
        "--target",
        target,
        "--params",
        str(params),
    ]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def child_main(args: argparse.Namespace) -> None:
    requests = [Request(**r) for r in json.loads(Path(args.params).read_text())]
    if args.child == "ours":
        result = asyncio.run(child_ours(args.target, requests))
    else:
        result = child_raw(args.target.split(os.pathsep), requests)
    print(json.dumps(result))


# -- the run ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Restart:
    ours: list[dict[str, Any]]
    raw: list[dict[str, Any]]

    @staticmethod
    def median(runs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    def total(self, runs: list[dict[str, Any]]) -> float:
        return statistics.median(r["open"] + r["first_query"] for r in runs)


def _filesystem(path: Path) -> str:
    found, best = "unknown", ""
    with open("/proc/mounts") as mounts:
        for line in mounts:
            _, mount, kind, *_ = line.split()
            if str(path.resolve()).startswith(mount) and len(mount) > len(best):
                best, found = mount, f"{kind} ({mount})"
    return found


def environment(base: Path, local_base: Path) -> list[tuple[str, str]]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("qdrant-edge-py", "qdrant-client", "pydantic")
    )
    return [
        ("cores", f"{os.cpu_count()} ({len(os.sched_getaffinity(0))} usable), {cpu}"),
        ("memory", f"{memory_gb:.1f} GiB"),
        ("system", platform.platform()),
        ("python", platform.python_version()),
        ("packages", versions),
        ("stores", f"Edge in {base} on {_filesystem(base)}; local mode in {local_base} on {_filesystem(local_base)}"),
        ("load average at start (1, 5, 15 min)", ", ".join(f"{x:.2f}" for x in os.getloadavg())),
    ]


def check_layout() -> None:
    """The raw requests name the store's fields and vector directly; make sure they are the store's."""
    from engine.history import layout
    from engine.history.qdrant_store import _PAGE

    if layout.LEXICAL != LEXICAL or layout.CREATED_TS != CREATED_TS:
        raise SystemExit("engine.history.layout renamed the lexical vector or created_ts: update the raw requests")
    if not {REQUESTED_BY, STATUS, CONVERSATION_ID} <= set(layout.RECORD_INDEXES):
        raise SystemExit("engine.history.layout no longer indexes a field the raw requests filter on")
    if _PAGE != CONVERSATION_PAGE:
        raise SystemExit(
            f"the store scrolls in pages of {_PAGE}, the raw conversation request asks for {CONVERSATION_PAGE}"
        )


@dataclass(slots=True)
class Setup:
    started: float
    base: Path
    # qdrant-client local mode commits every point to sqlite (an fsync each) while loading; its queries run
    # from memory. Its files go to tmpfs when there is one, which changes the loading time only.
    local_base: Path
    dataset: Dataset
    layout_seconds: float
    pool: Pool
    workers: int


async def run(args: argparse.Namespace, setup: Setup) -> None:
    from qdrant_client import AsyncQdrantClient

    from bench.history_data import bulk_load, edge_writer, server_writer
    from engine.history import EdgeHistoryStore, ServerHistoryStore
    from engine.history.layout import audit_name, records_name

    check_layout()
    base, dataset, pool = setup.base, setup.dataset, setup.pool
    report: dict[str, Any] = {"env": environment(base, setup.local_base), "setup": setup}

    log(f"store.create on {args.check} records, and the bulk path checked against it")
    check = await check_create_path(dataset, pool, base, args.check)
    report["check"] = check
    if not check.ok:
        raise SystemExit(f"bulk path differs from store.create: {check.differences} {check.verify_problems}")
    projected = check.per_record * args.records
    use_store_path = args.load == "store" or (args.load == "auto" and projected <= LOAD_BUDGET_SECONDS)
    report["projected"] = projected

    full_dir = base / "full"
    log(f"loading {args.records:,} records ({'store.create' if use_store_path else 'bulk'})")
    store = await EdgeHistoryStore(full_dir).open()
    started = time.perf_counter()
    if use_store_path:
        for record in dataset.records():
            await store.create(record)
        load_seconds = time.perf_counter() - started
    else:
        stats = await bulk_load(pool, range(args.records), [edge_writer(store)], progress=_progress(args.records))
        await store.run_in_shard_thread(lambda records, audit: (records.flush(), audit.flush()))
        load_seconds = time.perf_counter() - started
        report["load_stats"] = stats
    report["load"] = (load_seconds, "store.create" if use_store_path else "bulk")
    report["loader_peak_after_load"] = peak_rss_mb()
    stored_records = await store.count()
    stored_entries = await store.run_in_shard_thread(lambda records, audit: audit.count(qe.CountRequest(exact=True)))
    report["counts"] = (stored_records, stored_entries)
    log(f"  {stored_records:,} records, {stored_entries:,} audit entries in {load_seconds:.1f} s")

    await store.close()

    requests = make_requests(dataset, dataset.conversation_ids(), args.reps * args.rounds + args.warmup, args.seed + 1)
    log("queries on the full store, reopened: ours against raw Qdrant Edge")
    store = await EdgeHistoryStore(full_dir).open()
    report["overhead"] = await measure_overhead(store, requests, args.reps, args.rounds, args.warmup)
    report["env"].append(("load average after those queries", ", ".join(f"{x:.2f}" for x in os.getloadavg())))
    await store.close()

    subset = dataset.subset(args.subset)
    log(f"loading a {len(subset):,}-record subset into a fresh Edge store and qdrant-client local mode")
    edge = await EdgeHistoryStore(base / "subset-edge").open()
    with warnings.catch_warnings():
        # Local mode says once that it ignores payload indexes: that is what is being measured.
        warnings.filterwarnings("ignore", "Payload indexes have no effect")
        client = AsyncQdrantClient(path=str(setup.local_base / "subset-local"))
        local = await ServerHistoryStore(client=client).open()
    started = time.perf_counter()
    subset_stats = await bulk_load(pool, subset, [edge_writer(edge), server_writer(local)])
    await edge.run_in_shard_thread(lambda records, audit: (records.flush(), audit.flush()))
    report["subset_load"] = (len(subset), time.perf_counter() - started, subset_stats)
    pool.close()
    pool.join()
    report["workers_peak"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    subset_requests = make_requests(
        dataset, dataset.conversation_ids(subset), max(args.reps, args.local_reps) + 2, args.seed + 2
    )
    log("queries on the subset: Edge against local mode")
    report["local"] = await measure_local(edge, local, subset_requests, args.reps, args.local_reps)
    await edge.close()
    await local.close()
    await client.close()
    report["loader_peak_end"] = peak_rss_mb()

    log(f"reopening in fresh processes, {args.restarts} times each side")
    params = base / "requests.json"
    params.write_text(json.dumps([asdict(r) for r in requests[: args.child_reps]]))
    history = full_dir / "history"
    shard_dirs = os.pathsep.join(str(history / name) for name in (records_name("cloudops"), audit_name("cloudops")))
    restart = Restart([], [])
    for i in range(args.restarts):
        sides = [("ours", str(full_dir), restart.ours), ("raw", shard_dirs, restart.raw)]
        for kind, target, runs in sides if i % 2 == 0 else reversed(sides):
            runs.append(run_child(kind, target, params))
    if restart.ours[0]["first_ids"] != restart.raw[0]["first_ids"]:
        log("  warning: the first query's answers differ between the two processes")
    report["restart"] = restart
    print_report(args, report)


def _progress(total: int) -> Callable[[int], None]:
    step = max(total // 10, 1)
    started = time.perf_counter()

    def show(done: int) -> None:
        if done % step < 250 or done == total:
            log(f"  {done:,}/{total:,} ({time.perf_counter() - started:.0f} s)")

    return show


# -- the report ----------------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def timing(series: Series) -> str:
    return f"{ms(series.p50)} (p95 {ms(series.p95)})"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**MISSED**"


def print_report(args: argparse.Namespace, report: dict[str, Any]) -> None:
    rows: list[tuple[str, str, str, str, str, str]] = []
    check: CreateCheck = report["check"]
    load_seconds, path = report["load"]
    setup: Setup = report["setup"]
    rate = args.records / load_seconds
    rows.append(
        (
            f"generate + load {args.records:,} records ({path})",
            f"{load_seconds:.1f} s ({rate:,.0f} records/s)",
            f"store.create: {ms(check.per_record)}/record, {report['projected'] / 60:.1f} min projected"
            + (
                f"; loading process: {stats.waiting:.0f} s waiting for the workers, {stats.chaining:.0f} s on the "
                f"audit chain, {stats.writing:.0f} s on writes"
                if (stats := report.get("load_stats"))
                else ""
            ),
            "",
            f"≤ {LOAD_BUDGET_SECONDS:.0f} s",
            verdict(load_seconds <= LOAD_BUDGET_SECONDS),
        )
    )
    rows.append(
        (
            "bulk-loaded points = store.create points",
            f"{check.sample} records written both ways, compared as stored: "
            f"{'identical' if not check.differences else 'DIFFERENT'} (but for updated_at, write_token and the "
            "hashes over them)",
            f"verify_chain over {check.verify_records} records (created, created + bulk on top, bulk): "
            f"{'ok' if not check.verify_problems else 'FAILED'}",
            "",
            "identical, chain ok",
            verdict(check.ok),
        )
    )
    for result in report["overhead"]:
        pair: Pair = result.pair
        rows.append(
            (
                f"({'abc'[QUERY_KINDS.index(result.kind)]}) {QUERY_TITLES[result.kind]}, "
                f"{args.records:,} records, p50 of {len(pair.a.times)} ({args.rounds} rounds)",
                f"ours {timing(pair.a)}",
                f"raw Edge {timing(pair.b)}; same answers (ids, in order) {pair.same}/{pair.compared}; "
                f"{statistics.mean(pair.sizes):.1f} records/answer",
                f"{result.ratio:.3f} (rounds: {', '.join(f'{r:.2f}' for r in result.round_ratios)})",
                f"ours/raw ≤ {TARGET_OVERHEAD}",
                verdict(result.ratio <= TARGET_OVERHEAD),
            )
        )
    subset_size, subset_seconds, _ = report["subset_load"]
    for result in report["local"]:
        pair = result.pair
        speedup = pair.b.p50 / pair.a.p50
        rows.append(
            (
                f"({'abc'[QUERY_KINDS.index(result.kind)]}) {QUERY_TITLES[result.kind]}, {subset_size:,} records",
                f"Edge {timing(pair.a)} (p50 of {len(pair.a.times)})",
                f"local mode {timing(pair.b)} (p50 of {len(pair.b.times)}); same ids {pair.same_set}/{pair.compared}, "
                f"in the same order {pair.same}/{pair.compared}",
                f"{speedup:,.0f}x",
                f"Edge ≥ {TARGET_LOCAL_SPEEDUP:.0f}x faster",
                verdict(speedup >= TARGET_LOCAL_SPEEDUP),
            )
        )
    restart: Restart = report["restart"]
    ours_total, raw_total = restart.total(restart.ours), restart.total(restart.raw)
    rows.append(
        (
            f"reopen + first latest-20, fresh process, {args.records:,} records (median of {args.restarts})",
            f"ours {ms(ours_total)} (open {ms(Restart.median(restart.ours, 'open'))}, "
            f"query {ms(Restart.median(restart.ours, 'first_query'))})",
            f"raw Edge {ms(raw_total)} (load {ms(Restart.median(restart.raw, 'open'))}, "
            f"query {ms(Restart.median(restart.raw, 'first_query'))})",
            f"{ours_total / raw_total:.2f}",
            "reported",
            "",
        )
    )
    rows.append(
        (
            f"whole fresh process (interpreter, imports, open, first query, 3 queries x {args.child_reps}, close)",
            f"ours {Restart.median(restart.ours, 'wall'):.2f} s "
            f"(engine imports {Restart.median(restart.ours, 'import'):.2f} s)",
            f"raw Edge {Restart.median(restart.raw, 'wall'):.2f} s",
            f"{Restart.median(restart.ours, 'wall') / Restart.median(restart.raw, 'wall'):.2f}",
            "reported",
            "",
        )
    )
    ours_peak, raw_peak = Restart.median(restart.ours, "peak_mb"), Restart.median(restart.raw, "peak_mb")
    rows.append(
        (
            f"peak memory (VmHWM), fresh process: open {args.records:,} + first query + 3 queries x {args.child_reps}",
            f"ours {ours_peak:,.0f} MB",
            f"raw Edge {raw_peak:,.0f} MB",
            f"{ours_peak / raw_peak:.2f}",
            "reported",
            "",
        )
    )
    rows.append(
        (
            "peak memory (VmHWM), loader process",
            f"{report['loader_peak_after_load']:,.0f} MB after loading {args.records:,}",
            f"{report['loader_peak_end']:,.0f} MB at the end (with local mode holding {subset_size:,}); "
            f"record-building workers {report['workers_peak']:,.0f} MB each at most",
            "",
            "reported",
            "",
        )
    )

    breakdown = []
    for result in report["overhead"]:
        pair = result.pair
        assert pair.c is not None and result.validation is not None
        hop = pair.c.p50 - pair.b.p50
        rest = pair.a.p50 - pair.c.p50 - result.validation.p50
        breakdown.append(
            f"| {QUERY_TITLES[result.kind]} | {ms(pair.b.p50)} | {ms(pair.c.p50)} (+{ms(hop)}) "
            f"| {ms(result.validation.p50)} | {ms(rest)} | {ms(pair.a.p50)} |"
        )

    records, entries = report["counts"]
    print("## History store benchmark\n")
    for name, value in report["env"]:
        print(f"- {name}: {value}")
    print(
        f"- data: {args.records:,} records (seed {args.seed}), {len(setup.dataset.conversations):,} conversations, "
        f"{len(setup.dataset.users)} users; stored {records:,} records and {entries:,} audit entries"
    )
    print(
        f"- generation: layout (conversations, times) {setup.layout_seconds:.1f} s; records built in "
        f"{setup.workers} worker processes while loading; the {subset_size:,}-record subset loaded into both "
        f"stores in {subset_seconds:.1f} s"
    )
    print(f"- total run: {time.perf_counter() - setup.started:.0f} s\n")
    print("| measurement | ours | reference | ratio | target | result |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(
        f"\nWhere ours spends its time beyond the engine's, {args.records:,} records (p50s; the validation is "
        "timed apart, so the parts add up only roughly):\n"
    )
    print(
        "| query | raw Edge, caller's thread | the same raw call on the shard thread (+ the hop) "
        "| validating payloads into records | rest (filters, conversions, glue) | ours |"
    )
    print("|---|---|---|---|---|---|")
    for line in breakdown:
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--subset", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=100, help="requests per query, side and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --reps on the full store")
    parser.add_argument("--local-reps", type=int, default=10, help="requests per query in local mode")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--restarts", type=int, default=3, help="fresh processes per side")
    parser.add_argument("--child-reps", type=int, default=20, help="requests per query in the fresh processes")
    parser.add_argument(
        "--load",
        choices=("auto", "store", "bulk"),
        default="auto",
        help=f"auto: store.create when it would load the records within {LOAD_BUDGET_SECONDS:.0f} s, else bulk",
    )
    parser.add_argument("--check", type=int, default=40, help="records written through store.create first")
    parser.add_argument("--seed", type=int, default=20250601)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the stores (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the stores afterwards")
    parser.add_argument("--child", choices=("ours", "raw"), help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return

    from bench.history_data import Dataset, worker_pool

    started = time.perf_counter()
    base = Path(tempfile.mkdtemp(prefix="cloudops-history-bench-", dir=args.dir))
    shm = Path("/dev/shm")
    tmpfs = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    local_base = Path(tempfile.mkdtemp(prefix="cloudops-history-bench-local-", dir=tmpfs)) if tmpfs else base
    mark = time.perf_counter()
    dataset = Dataset(args.records, seed=args.seed)
    layout_seconds = time.perf_counter() - mark
    # Fork the record builders before any Edge shard (and its threads) exists in this process.
    workers = os.cpu_count() or 1
    pool = worker_pool(dataset, workers)
    try:
        asyncio.run(run(args, Setup(started, base, local_base, dataset, layout_seconds, pool, workers)))
    finally:
        pool.terminate()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
            shutil.rmtree(local_base, ignore_errors=True)
        else:
            log(f"stores kept in {base} and {local_base}")


if __name__ == "__main__":
    main()
