"""Streaming redaction cost: 20,000 lines of realistic aws CLI output through one ``StreamRedactor``, against a
plain pass-through of the same lines in the same process (target: at least 50,000 lines/s).

The lines are the aws CLI's own example responses (``awscli/examples``), printed by the aws CLI's JSON, text
and table formatters in turn, with a secret from the test corpus on one line in a hundred. Runs are
interleaved (pass-through, redactor, ...) so that machine noise hits both alike; medians are compared. The
first use (compiling the detector's rules) is timed on its own.

Run from the repository root: python -m bench.redact_bench [--lines 20000] [--runs 7]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from itertools import cycle

from awscli.formatter import JSONFormatter, TableFormatter, TextFormatter

from engine.redact import REDACTED, StreamRedactor
from tests.awscli_examples import example_outputs
from tests.secret_corpus import shapes

_FORMATTERS = (JSONFormatter, TextFormatter, TableFormatter)
_ARGS = argparse.Namespace(query=None, color="off")
SECRET_EVERY = 100


def realistic_lines(count: int) -> list[str]:
    """``count`` lines of aws CLI output, each response printed in the next of the three formats."""
    responses = []
    for example in example_outputs():
        try:
            data = json.loads(example.text)
        except ValueError:
            continue
        if isinstance(data, dict):
            responses.append((example.operation[1], data))
    secrets = cycle(shape.text.splitlines()[0] for shape in shapes() if "bare" in shape.tags)
    lines: list[str] = []
    formatters = cycle(_FORMATTERS)
    for operation, data in cycle(responses):
        out = io.StringIO()
        next(formatters)(_ARGS)(operation, data, out)
        for line in out.getvalue().splitlines(keepends=True):
            if len(lines) % SECRET_EVERY == SECRET_EVERY - 1:
                line = f"2024-06-01T10:15:03Z worker: loaded {next(secrets)}\n"
            lines.append(line)
            if len(lines) == count:
                return lines
    return lines


def pass_through(lines: list[str]) -> float:
    out: list[str] = []
    started = time.perf_counter()
    for line in lines:
        out.append(line)
    return time.perf_counter() - started


def redacted(lines: list[str]) -> float:
    redactor = StreamRedactor()
    out: list[str] = []
    started = time.perf_counter()
    for line in lines:
        out.append(redactor.feed(line))
    elapsed = time.perf_counter() - started
    assert sum(REDACTED in line for line in out) >= len(lines) // SECRET_EVERY
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    lines = realistic_lines(args.lines)
    started = time.perf_counter()
    StreamRedactor().feed("first use compiles the rules")
    first_use = time.perf_counter() - started

    plain: list[float] = []
    redacting: list[float] = []
    for _ in range(args.runs):
        plain.append(pass_through(lines))
        redacting.append(redacted(lines))
    plain_median, redact_median = statistics.median(plain), statistics.median(redacting)
    changed = sum(a != b for a, b in zip(lines, map(StreamRedactor().feed, lines), strict=True))

    print(f"lines: {len(lines):,} ({sum(map(len, lines)) / 1024:,.0f} KiB), {changed:,} changed by redaction")
    print(f"first use (rules compiled): {first_use * 1000:.0f} ms")
    print(f"pass-through: {len(lines) / plain_median:,.0f} lines/s (median of {args.runs})")
    print(
        f"StreamRedactor: {len(lines) / redact_median:,.0f} lines/s, {redact_median / len(lines) * 1e6:.1f} us/line "
        f"(median of {args.runs}; best {len(lines) / min(redacting):,.0f}, worst {len(lines) / max(redacting):,.0f})"
    )
    print(f"redaction cost over pass-through: {(redact_median - plain_median) / len(lines) * 1e6:.1f} us/line")


if __name__ == "__main__":
    main()
