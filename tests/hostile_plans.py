"""Plans built to cost: shared by the parsing, validation and Slack tests."""

from __future__ import annotations

import yaml

ALIAS_BOMB_BYTES = 890


def alias_bomb(size: int = ALIAS_BOMB_BYTES) -> str:
    """A "billion laughs" plan: nine levels of nine aliases each, 9**9 strings once expanded."""
    levels = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 9)]
    params = "".join(f"        {level}\n" for level in levels)
    head = "commands:\n  - id: list\n    sdk:\n      service: s3\n      operation: ListBuckets\n      params:\n"
    summary = "summary: a billion laughs"
    padding = size - len(f"{summary}\n{head}{params}".encode())
    assert padding >= 0, "the bomb does not fit the size asked for"
    return f"{summary}{'!' * padding}\n{head}{params}"


def one_word_commands(count: int) -> str:
    """``count`` commands of the single word ``aws``: each cheap to write, each costly to resolve."""
    commands = [{"id": f"c{n}", "cli": "aws"} for n in range(count)]
    return yaml.safe_dump({"summary": "many", "commands": commands}, sort_keys=False)


def read_only_commands(count: int) -> str:
    """A valid plan of ``count`` read-only commands."""
    commands = [{"id": f"c{n}", "cli": f"aws s3api list-objects-v2 --bucket b{n}"} for n in range(count)]
    return yaml.safe_dump({"summary": "many reads", "commands": commands}, sort_keys=False)
