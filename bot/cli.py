"""The ``cloudops`` command line. Each group of subcommands lives in its own module with ``register``."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
from collections.abc import Sequence

from engine.errors import CloudOpsError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2, never a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"cloudops: error: {message} (see `cloudops {self.prog.split()[-1]} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from bot import cli_history, cli_plans, cli_serve

    parser = _Parser(prog="cloudops", description="Approval-gated chat-ops for AWS.")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in (cli_plans, cli_history, cli_serve):
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        outcome = args.func(args)
        if inspect.iscoroutine(outcome):
            outcome = asyncio.run(outcome)
        return int(outcome or 0)
    except CloudOpsError as exc:
        print(f"cloudops: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cloudops: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
