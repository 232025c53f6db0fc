"""The ``cloudops`` command line. Each group of subcommands lives in its own module with ``register``."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Coroutine, Sequence

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
    """Run one ``cloudops`` command; ``argv`` defaults to the process's own command line."""
    # Start-up builds a few hundred thousand objects that live as long as the command (the parsers, the plan
    # models, the aws CLI's tables), and the cyclic collector would walk them again and again while they are
    # made: a fifth of `cloudops validate`. So it is off until the command starts its long-running part
    # (anything that needs an event loop) or ends.
    collecting = gc.isenabled()
    gc.disable()
    try:
        args = build_parser().parse_args(argv)
        outcome = args.func(args)
        if isinstance(outcome, Coroutine):
            _resume_collection(collecting, whole_process=argv is None)
            # Only the commands that need an event loop load asyncio (with ssl and concurrent.futures).
            import asyncio

            outcome = asyncio.run(outcome)
        return int(outcome or 0)
    except CloudOpsError as exc:
        print(f"cloudops: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cloudops: interrupted", file=sys.stderr)
        return 130
    finally:
        _resume_collection(collecting, whole_process=argv is None)


def _resume_collection(collecting: bool, *, whole_process: bool) -> None:
    if gc.isenabled() or not collecting:
        return
    if whole_process:
        # This is the process's own command: what start-up built stays until exit, so it is kept out of
        # every later collection, the one at exit included. Not done for a caller running commands in its
        # own process (tests), where it would keep that caller's garbage from ever being collected.
        gc.freeze()
    gc.enable()


if __name__ == "__main__":
    sys.exit(main())
