"""Validation speed and outcome over the aws CLI's own example commands, in one process, sockets blocked.

- throughput (commands per second) and per-command latency (p50, p99) over the whole corpus: the first
  pass, where the first command of each service loads its model, and then warm passes;
- how many commands are accepted, and how many are refused by each documented rule; "wrongful" counts the
  refusals no rule accounts for (targets: >= 400 commands/s, p99 <= 10 ms, wrongful <= 0.5%).

Every socket call raises during the run, and the run fails if any is attempted.
Run from the repository root: python -m bench.validation_corpus [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import time
from collections import Counter
from typing import Any

from engine.errors import PlanValidationError
from engine.plan import CommandSpec
from engine.policy import Policy
from engine.validate import resolve_command
from tests.awscli_examples import example_commands
from tests.test_validation_offline import rule_of

ATTEMPTS: list[str] = []


def _block_network() -> None:
    def blocked(*args: Any, **kwargs: Any) -> Any:
        ATTEMPTS.append("network")
        raise OSError("network blocked for the benchmark")

    for name in ("connect", "connect_ex", "sendto", "sendmsg"):
        setattr(socket.socket, name, blocked)
    socket.create_connection = blocked  # type: ignore[assignment]
    socket.getaddrinfo = blocked  # type: ignore[assignment]


def one_pass(commands: Any, policy: Policy) -> tuple[list[float], Counter[str]]:
    times: list[float] = []
    outcome: Counter[str] = Counter()
    for example in commands:
        spec = CommandSpec(cli=example.text)
        started = time.perf_counter()
        try:
            resolve_command(spec, command_id="x", policy=policy)
            outcome["accepted"] += 1
        except PlanValidationError as exc:
            rules = [rule for rule in map(rule_of, exc.problems) if rule is not None]
            outcome[rules[0] if rules else "wrongful"] += 1
        times.append(time.perf_counter() - started)
    return times, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    _block_network()
    commands = example_commands()
    policy = Policy(allow=["*:*"])
    # The first pass loads each service's model and argument tables once, as a fresh process would.
    cold, _ = one_pass(commands, policy)
    cold_sorted = sorted(cold)
    rates, p50s, p99s = [], [], []
    outcome: Counter[str] = Counter()
    for _ in range(args.rounds):
        times, outcome = one_pass(commands, policy)
        ordered = sorted(times)
        rates.append(len(times) / sum(times))
        p50s.append(ordered[len(ordered) // 2] * 1000)
        p99s.append(ordered[int(len(ordered) * 0.99)] * 1000)
    if ATTEMPTS:
        raise SystemExit(f"{len(ATTEMPTS)} network attempts during validation")
    print(
        json.dumps(
            {
                "commands": len(commands),
                "rounds": args.rounds,
                "first_pass_commands_per_second": round(len(cold) / sum(cold)),
                "first_pass_p99_ms": round(cold_sorted[int(len(cold_sorted) * 0.99)] * 1000, 2),
                "commands_per_second_median": round(statistics.median(rates)),
                "commands_per_second_min": round(min(rates)),
                "p50_ms_median": round(statistics.median(p50s), 2),
                "p99_ms_median": round(statistics.median(p99s), 2),
                "p99_ms_max": round(max(p99s), 2),
                "wrongful_share": round(outcome["wrongful"] / len(commands), 4),
                "outcome": dict(outcome.most_common()),
                "network_attempts": len(ATTEMPTS),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
