"""How close the orchestrator gets to the ideal schedule of a dependency graph.

A random 200-command DAG (fixed seed) where each command only sleeps (20-100 ms by default). With
unlimited parallelism the fastest possible run takes exactly the critical path: the longest chain of sleeps
through the graph. The
ratio of measured wall time to that critical path is the orchestrator's overhead (scheduling, events,
redaction, result building); 1.00 would be none at all.

``max_parallel`` is set to the number of commands, so the bound never limits the schedule. As a reference the
script also times the critical path alone as a plain chain of ``asyncio.sleep`` calls, each right after an
orchestrator run: that is the part of the ratio owed to the event loop's timers (epoll waits in whole
milliseconds, so every sleep overruns a little) rather than to the orchestrator.

Run: ``python bench/orchestrator_overhead.py``
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.commands import ResolvedCommand, ValidatedCommand, ValidatedPlan
from engine.executors.base import ExecutionContext
from engine.orchestrator import Orchestrator
from engine.plan import ExecutionMode, Plan, PlanCommand, SdkCall
from engine.results import RunState
from engine.risk import Risk
from engine.sinks import NullSink
from tests.fakes import SleepExecutor

TARGET_RATIO = 1.05


def random_dag(
    size: int, seed: int, min_ms: float = 20, max_ms: float = 100
) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Dependencies and sleeps: each command depends on 0-3 of the 20 commands before it."""
    rng = random.Random(seed)
    ids = [f"c{i:03d}" for i in range(size)]
    deps: dict[str, list[str]] = {}
    for i, command_id in enumerate(ids):
        window = ids[max(0, i - 20) : i]
        deps[command_id] = sorted(rng.sample(window, k=min(len(window), rng.randint(0, 3))))
    sleeps = {command_id: rng.uniform(min_ms / 1000, max_ms / 1000) for command_id in ids}
    return deps, sleeps


def critical_path(deps: dict[str, list[str]], sleeps: dict[str, float]) -> tuple[float, list[str]]:
    """The longest chain of sleeps; ``deps`` lists every command after its dependencies."""
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for command_id, parents in deps.items():
        before = max(parents, key=lambda p: finish[p], default=None)
        via[command_id] = before
        finish[command_id] = (finish[before] if before else 0.0) + sleeps[command_id]
    end: str | None = max(finish, key=lambda c: finish[c])
    total = finish[end]
    chain: list[str] = []
    while end is not None:
        chain.append(end)
        end = via[end]
    return total, chain[::-1]


def build_plan(deps: dict[str, list[str]]) -> ValidatedPlan:
    commands = [
        ValidatedCommand(
            id=command_id,
            depends_on=parents,
            command=ResolvedCommand(
                id=command_id,
                form="sdk",
                service="s3",
                cli_service="s3api",
                operation="ListBuckets",
                cli_operation="list-buckets",
                params={},
                risk=Risk.READ_ONLY,
                display=f"s3:ListBuckets ({command_id})",
            ),
        )
        for command_id, parents in deps.items()
    ]
    plan = Plan(
        summary="orchestrator overhead benchmark",
        mode=ExecutionMode.DEPENDENCY_GRAPH,
        commands=[
            PlanCommand(id=c.id, sdk=SdkCall(service="s3", operation="ListBuckets"), depends_on=c.depends_on)
            for c in commands
        ],
    )
    return ValidatedPlan(plan=plan, commands=commands, computed_risk=Risk.READ_ONLY, risk=Risk.READ_ONLY)


async def measure(size: int, seed: int, repeats: int, min_ms: float, max_ms: float) -> None:
    deps, sleeps = random_dag(size, seed, min_ms, max_ms)
    ideal, chain = critical_path(deps, sleeps)
    plan = build_plan(deps)
    orchestrator = Orchestrator(SleepExecutor(sleeps), max_parallel=size)
    context = ExecutionContext()

    # Each orchestrator run is paired with a bare chain run right after it, so both see the same machine load.
    walls: list[float] = []
    bare: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = await orchestrator.execute(plan, context, NullSink())
        walls.append(time.perf_counter() - start)
        if result.state is not RunState.SUCCEEDED:
            raise SystemExit(f"benchmark plan did not succeed: {result.state}")
        start = time.perf_counter()
        for command_id in chain:
            await asyncio.sleep(sleeps[command_id])
        bare.append(time.perf_counter() - start)

    median = statistics.median(walls)
    edges = sum(len(p) for p in deps.values())
    print(
        f"{size} commands, {edges} dependency edges, seed {seed}, sleeps {min_ms:g}-{max_ms:g} ms, "
        f"max_parallel={size} (never the limit), {repeats} runs\n"
    )
    print("| measure | wall time (ms) | / critical path |")
    print("|---|---:|---:|")
    print(f"| critical path ({len(chain)} commands), ideal | {ideal * 1000:.1f} | 1.000 |")
    for i, wall in enumerate(walls, start=1):
        print(f"| orchestrator, run {i} | {wall * 1000:.1f} | {wall / ideal:.3f} |")
    print(f"| **orchestrator, median** | **{median * 1000:.1f}** | **{median / ideal:.3f}** |")
    print(
        f"| bare asyncio.sleep chain, median | {statistics.median(bare) * 1000:.1f} "
        f"| {statistics.median(bare) / ideal:.3f} |"
    )
    paired = statistics.median(w / b for w, b in zip(walls, bare, strict=True))
    print(f"\norchestrator / bare chain, median of paired runs: {paired:.3f}")
    verdict = "met" if median / ideal <= TARGET_RATIO else "MISSED"
    print(f"target median / critical path <= {TARGET_RATIO}: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-ms", type=float, default=20, help="shortest command sleep")
    parser.add_argument("--max-ms", type=float, default=100, help="longest command sleep")
    args = parser.parse_args()
    asyncio.run(measure(args.size, args.seed, args.repeats, args.min_ms, args.max_ms))


if __name__ == "__main__":
    main()
