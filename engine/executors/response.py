"""What an API operation's response becomes before anything sees it: redacted by shape, then queried.

Both executors hand every response of a botocore operation through ``shape_response``: members botocore's
model marks ``sensitive`` are replaced first (``engine.sensitive.redact_output``), and only then is the
plan's ``--query`` applied, by CloudOps, to the redacted response. The aws CLI never sees the ``--query``
(``without_query``), because it would apply it to the response as the service sent it, and a projection
(``Parameter.*``, ``values(Parameter)``, ``Parameter."\\u0056alue"``) takes a value out of the member that
says it is secret.

With a ``--query``, the key-name and name/value-pair rules of ``engine.redact.redact_data`` also run on the
whole response before it. A projection strips keys: cloudformation's ``ParameterValue`` is not marked
sensitive, and in ``Parameters[?ParameterKey=='DbPassword'].ParameterValue`` only the neighbour the query
drops says what the value is. The query sees only redacted values, so neither a projection nor a function
(``reverse``, ``join``) nor a filter used as an oracle (``starts_with``) can reach a secret. The cost: a
filter on a redacted field matches ``"[REDACTED]"``, not the value the service sent.
Without a ``--query``, ``redact_result`` applies the same rules to the whole response later.

Commands that are not one API operation (``s3 cp``, reviewed customizations such as ``emr describe-cluster``)
print what the aws CLI makes of them; they keep their ``--query`` and free-text redaction is what applies.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.parser import ParsedResult

from engine.commands import ResolvedCommand
from engine.redact import redact_data
from engine.sensitive import redact_output, returns_secrets

QUERY_FAILED = "QueryFailed"
_QUERY = "--query"


class QueryError(Exception):
    """The plan's ``--query`` could not be applied to the response (a JMESPath type or value error)."""


def shaped_by_cloudops(command: ResolvedCommand) -> bool:
    """Whether ``command``'s output is one API operation's response, redacted and queried by CloudOps."""
    return command.operation is not None


def query_of(cli_args: Sequence[str] | None) -> str | None:
    """The ``--query`` expression of an aws command line (the last one, as the aws CLI takes), or None."""
    found: str | None = None
    args = list(cli_args or ())
    index = 0
    while index < len(args):
        name, equals, value = args[index].partition("=")
        if _is_query_option(name):
            if equals:
                found = value
            elif index + 1 < len(args):
                found = args[index + 1]
                index += 1
        index += 1
    return found


def without_query(cli_args: Sequence[str]) -> list[str]:
    """``cli_args`` with every ``--query`` option and its value left out."""
    kept: list[str] = []
    skip = False
    for arg in cli_args:
        if skip:
            skip = False
            continue
        name, equals, _ = arg.partition("=")
        if _is_query_option(name):
            skip = not equals
            continue
        kept.append(arg)
    return kept


def _is_query_option(name: str) -> bool:
    # The aws CLI's global parser accepts any unique prefix (`--quer`); validation refuses those, but the
    # argv must not hand the aws CLI a projection of the unredacted response whatever got through.
    return len(name) > 2 and _QUERY.startswith(name)


def shape_response(command: ResolvedCommand, response: Any, *, query: bool = True) -> Any:
    """``response`` (the parsed response of ``command``'s operation) redacted by shape, then queried
    (unless ``query`` is False).

    Raises ``QueryError`` when the ``--query`` fails on it (``length(`` of a number), as the aws CLI fails.
    """
    assert command.operation is not None
    data = redact_output(command.service, command.operation, response)
    expression = query_of(command.cli_args) if query else None
    if expression is None:
        return data
    try:
        return _compiled(expression).search(redact_data(data))
    except (ValueError, TypeError) as exc:  # jmespath's errors are ValueErrors; a few of its functions raise TypeError
        raise QueryError(
            f"the {command.operation} call succeeded, but its --query could not be applied to the response: "
            + " ".join(str(exc).split())
        ) from exc


@lru_cache(maxsize=256)
def _compiled(query: str) -> ParsedResult:
    return jmespath.compile(query)


def render_json(data: Any) -> str:
    """``data`` as the aws CLI's JSON output prints it: nothing for an empty response, else indented JSON."""
    if data == {}:
        return ""
    return json.dumps(data, indent=4, ensure_ascii=False) + "\n"


def read_cli_response(command: ResolvedCommand, stdout: str, truncated: bool, complete: bool) -> tuple[str, Any]:
    """The output and data of an API operation's kept stdout: what the sink and the result may get.

    The response of a complete run is redacted by shape and queried. What a failed or stopped run printed
    (rarely anything: the aws CLI prints a response once the call is over) is redacted but not queried. Raises
    ``QueryError``.
    """
    if not complete and not stdout.strip():
        return "", None
    try:
        response = json.loads(stdout) if stdout.strip() else {}
        readable = not truncated
    except ValueError:
        readable = False
    if readable:
        data = shape_response(command, response, query=complete)
        return render_json(data), data
    if returns_secrets(command.service, command.operation):
        return (
            f"(output withheld: {command.service} {command.operation} returns secrets, and what the aws CLI "
            "printed could not be read as its response)\n",
            None,
        )
    return stdout, None
