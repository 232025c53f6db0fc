"""The example commands and outputs that ship inside the installed aws CLI (``awscli/examples/**/*.rst``).

A corpus nobody on this team wrote: thousands of real commands as AWS documents them, used to check that
validation accepts what the aws CLI accepts, and never sends anything while doing so; and the outputs printed
under them, thousands of real responses, used to check that redaction leaves ordinary values readable.

Commands are read as an operator pastes them: the indented ``aws ...`` lines of a literal block, with the
shell's line continuations (a backslash at the end of a line) joined, and lines inside an open quote kept.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import awscli

EXAMPLES = Path(awscli.__file__).parent / "examples"

# "Output::", as most examples write it, and its variants ("Output ::", "Output: :").
_OUTPUT_DIRECTIVE = re.compile(r"(?i:output)\s*:\s*:")


@dataclass(frozen=True)
class ExampleCommand:
    source: str  # path under awscli/examples, for messages
    line: int
    text: str  # the command line, continuations joined

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


@cache
def example_commands() -> tuple[ExampleCommand, ...]:
    """Every ``aws ...`` command of the installed aws CLI's examples, in a stable order."""
    found: list[ExampleCommand] = []
    for path in sorted(EXAMPLES.rglob("*.rst")):
        found.extend(_commands_in(path))
    return tuple(found)


def _commands_in(path: Path) -> Iterator[ExampleCommand]:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    source = str(path.relative_to(EXAMPLES))
    n = 0
    while n < len(lines):
        line = lines[n]
        stripped = line.strip()
        if not (line[:1].isspace() and stripped.startswith("aws ")):
            n += 1
            continue
        start = n
        text = stripped
        n += 1
        while n < len(lines):
            if text.endswith("\\"):
                # A shell line continuation: the backslash and the line break go, the next line's words follow.
                text = text[:-1].rstrip() + " " + lines[n].strip()
            elif not _balanced(text):
                # Inside an open quote the line break is part of the value.
                text = text + "\n" + lines[n]
            else:
                break
            n += 1
        yield ExampleCommand(source=source, line=start + 1, text=text.rstrip())


def _balanced(text: str) -> bool:
    try:
        shlex.split(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ExampleOutput:
    source: str  # path under awscli/examples, for messages
    line: int  # of the first line of the output
    text: str  # the output as the aws CLI printed it, its block indentation removed

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def operation(self) -> tuple[str, str]:
        """(service, command) as the example's file is named: ``ec2/describe-instances.rst``."""
        service, _, name = self.source.partition("/")
        return service, name.rsplit("/", 1)[-1].removesuffix(".rst")


@cache
def example_outputs() -> tuple[ExampleOutput, ...]:
    """Every ``Output::`` block of the installed aws CLI's examples (real responses as AWS documents them),
    in a stable order."""
    found: list[ExampleOutput] = []
    for path in sorted(EXAMPLES.rglob("*.rst")):
        found.extend(_outputs_in(path))
    return tuple(found)


def _outputs_in(path: Path) -> Iterator[ExampleOutput]:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    source = str(path.relative_to(EXAMPLES))
    n = 0
    while n < len(lines):
        directive = lines[n]
        n += 1
        if not _OUTPUT_DIRECTIVE.fullmatch(directive.strip()):
            continue
        # A literal block: every following line that is blank or indented deeper than the directive.
        indent = len(directive) - len(directive.lstrip())
        start = n
        while n < len(lines) and (not lines[n].strip() or len(lines[n]) - len(lines[n].lstrip()) > indent):
            n += 1
        block = lines[start:n]
        while block and not block[0].strip():
            block.pop(0)
            start += 1
        while block and not block[-1].strip():
            block.pop()
        if block:
            yield ExampleOutput(source=source, line=start + 1, text=textwrap.dedent("\n".join(block)))
