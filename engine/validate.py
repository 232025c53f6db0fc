"""Plan validation: a plan runs only as the ``ValidatedPlan`` this module returns, so nothing invalid runs.

Every rule reports into one list, so a refused plan names all of its problems at once, each as
"command `<id>`: <reason>" (or "plan: <reason>" for the plan as a whole).

Decisions worth knowing:

* Shell syntax (``; | & ` $ < >``, line breaks, a word-initial ``#``) is refused where a POSIX shell would
  act on it: outside quotes, and ``$`` or backticks inside double quotes. No shell ever runs a command, but
  a plan that would mean something else if pasted into a terminal is either confused or hostile, and a
  reviewer should never have to work out which. Inside single quotes nothing is special to a shell either,
  so a Lambda ``'$LATEST'`` or a JMESPath ``--query 'a[?b==`1`] | [0]'`` passes as written. Control and
  invisible characters, and look-alikes of shell characters, are refused anywhere.
* When the text has shell syntax or cannot be split into words, the command is not read any further:
  its words are not a trustworthy basis for the other checks.
* Global options that choose credentials, region, endpoint, TLS, output format, timeouts or debugging
  are refused; the engine sets them from configuration. Only ``--query``, ``--no-paginate`` and
  ``--color`` are allowed. Options must be written in full: the aws CLI accepts any unique abbreviation
  (``--prof``), which would let a plan hide what it sets.
* Local files are refused unless the policy sets ``local_file_dir``. With it, a command may name files by
  absolute path inside that directory (after resolving symlinks and ``..``), both as ``s3 cp/mv/sync``
  paths and as ``file://``/``fileb://`` values the aws CLI reads. ``file://`` anywhere else in the text
  (inside a JSON value, upper case) is refused. Such commands keep ``params`` None and run on the CLI
  executor only, which reads the file when the command runs; validation never opens them. Uploading a
  local directory (``sync``, ``cp``/``mv --recursive``) also needs ``--no-follow-symlinks``, since links
  inside the directory could point anywhere. ``aws s3 cp s3://... -`` (to standard output) is allowed;
  standard input is not, as commands get none.
* Values the aws CLI would download (``http(s)://`` for most parameters) are refused: what runs would not
  be what was approved.
* ``depends_on`` is refused outside ``dependency_graph`` mode, where it would be silently ignored.
* ``policy.max_commands`` counts commands and rollback steps together (each is resolved, checked and
  possibly run), and a plan over it is refused before any command is resolved. Validation that takes
  longer than ``VALIDATION_TIME_BUDGET_SECONDS`` stops and refuses the plan.
* Rollback steps are validated like commands (policy and all), inherit their command's
  ``timeout_seconds``, and carry their own risk, which does not count toward the plan's risk.
"""

from __future__ import annotations

import os
import re
import shlex
import time
import unicodedata
from collections import Counter
from difflib import get_close_matches
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

from botocore import xform_name
from botocore.exceptions import UnknownServiceError

from engine import awscli_model
from engine.awscli_model import LocalAccess
from engine.classify import operation_risk
from engine.commands import ResolvedCommand, ValidatedCommand, ValidatedPlan
from engine.display import command_display
from engine.errors import PlanValidationError
from engine.plan import CommandSpec, ExecutionMode, Plan, parse_plan
from engine.policy import Policy
from engine.risk import Risk, highest
from engine.secret_inputs import seal_plan, unseal_plan
from engine.sensitive import returns_secrets

SHELL_CHARACTERS = {
    ";": "command separator",
    "|": "pipe",
    "&": "background or `&&`",
    "`": "command substitution",
    "$": "variable or command substitution",
    "<": "redirection",
    ">": "redirection",
}
ALLOWED_GLOBAL_OPTIONS = frozenset({"--query", "--no-paginate", "--color"})
_CONFIGURATION = "credentials, endpoints and TLS come from configuration"
FORBIDDEN_GLOBAL_OPTIONS = {
    "--profile": _CONFIGURATION,
    "--endpoint-url": _CONFIGURATION,
    "--no-verify-ssl": _CONFIGURATION,
    "--ca-bundle": _CONFIGURATION,
    "--no-sign-request": _CONFIGURATION,
    "--region": "the region comes from configuration",
    "--output": "the engine always reads JSON output",
    "--debug": "debug logging prints request details; the engine controls diagnostics",
    "--v2-debug": "the engine controls diagnostics",
    "--cli-read-timeout": "timeouts come from the command's timeout_seconds and the engine's configuration",
    "--cli-connect-timeout": "timeouts come from the command's timeout_seconds and the engine's configuration",
}
_FILE_URI = re.compile(r"fileb?://", re.IGNORECASE)
# Categories of characters no command needs: controls, invisible formatting, line and paragraph
# separators, private use, surrogates and unassigned code points.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"}
# Wall-clock seconds one plan may take to validate; checked between commands.
VALIDATION_TIME_BUDGET_SECONDS = 10.0


def validate_text(text: str, policy: Policy) -> ValidatedPlan:
    """Parse plan text (YAML or JSON) and validate it. Raises ``PlanError`` or ``PlanValidationError``."""
    return validate_plan(parse_plan(text), policy)


def validate_plan(plan: Plan, policy: Policy) -> ValidatedPlan:
    """The plan, resolved and checked; raises ``PlanValidationError`` listing every problem.

    A stored plan's withheld secret inputs are put back first (``engine.secret_inputs``); the result's
    ``stored_plan`` withholds them again.
    """
    plan, lost = unseal_plan(plan)
    if lost:
        raise PlanValidationError(
            [
                f"plan: {len(lost)} secret input value(s) were withheld from storage and are no longer kept "
                "(CloudOps restarted, or another process proposed the plan): propose it again with the values"
            ]
        )
    problems = _plan_problems(plan, policy)
    if _step_count(plan) > policy.max_commands:
        raise PlanValidationError(problems)  # the count alone refuses it; resolving thousands would take long
    deadline = time.monotonic() + VALIDATION_TIME_BUDGET_SECONDS
    commands: list[ValidatedCommand] = []
    for planned in plan.commands:
        if time.monotonic() >= deadline:
            problems.append(
                f"plan: validation took longer than {VALIDATION_TIME_BUDGET_SECONDS:g} s and stopped before "
                f"command `{planned.id}`; split the plan into smaller ones"
            )
            break
        resolved: ResolvedCommand | None = None
        rollback: list[ResolvedCommand] = []
        try:
            resolved = resolve_command(
                planned, command_id=planned.id, policy=policy, timeout_seconds=planned.timeout_seconds
            )
        except PlanValidationError as exc:
            problems.extend(exc.problems)
        for n, step in enumerate(planned.rollback):
            try:
                rollback.append(
                    resolve_command(
                        step,
                        command_id=rollback_id(planned.id, n),
                        policy=policy,
                        timeout_seconds=planned.timeout_seconds,
                    )
                )
            except PlanValidationError as exc:
                problems.extend(exc.problems)
        if resolved is not None:
            commands.append(
                ValidatedCommand(
                    id=planned.id,
                    description=planned.description,
                    depends_on=list(planned.depends_on),
                    command=resolved,
                    rollback=rollback,
                )
            )
    if problems:
        raise PlanValidationError(problems)
    computed = highest([command.command.risk for command in commands])
    stated = plan.risk or Risk.READ_ONLY
    stored = seal_plan(plan, {c.id: [c.command, *c.rollback] for c in commands})
    return ValidatedPlan(
        plan=plan,
        commands=commands,
        computed_risk=computed,
        risk=max(computed, stated),
        stored_plan=None if stored is plan else stored,
    )


def rollback_id(command_id: str, n: int) -> str:
    return f"{command_id}.rollback.{n}"


def resolve_command(
    spec: CommandSpec, *, command_id: str, policy: Policy, timeout_seconds: float | None = None
) -> ResolvedCommand:
    """One command (or rollback step) checked and resolved; raises ``PlanValidationError``."""
    try:
        if spec.cli is not None:
            problems, fields = _resolve_cli(spec.cli, policy)
        else:
            problems, fields = _resolve_sdk(spec, policy)
        # What everything but the executor shows of the command: its sensitive input values withheld.
        display = "" if problems else command_display(spec, fields["service"], fields["operation"], fields["params"])
    except RecursionError:
        # Deep SDK params pass the plan parser but not botocore's recursive validator or json.dumps.
        problems, fields, display = ["the command is nested too deeply to check"], {}, ""
    if problems:
        raise PlanValidationError([f"command `{command_id}`: {problem}" for problem in dict.fromkeys(problems)])
    return ResolvedCommand(id=command_id, display=display, timeout_seconds=timeout_seconds, **fields)


# ---------------------------------------------------------------------------------------------------------
# The plan as a whole.


def _step_count(plan: Plan) -> int:
    return len(plan.commands) + sum(len(command.rollback) for command in plan.commands)


def _plan_problems(plan: Plan, policy: Policy) -> list[str]:
    problems: list[str] = []
    steps = _step_count(plan)
    if steps > policy.max_commands:
        count = f"{len(plan.commands)} commands is"
        if steps > len(plan.commands):
            rollback = steps - len(plan.commands)
            commands = f"{len(plan.commands)} command{'s' if len(plan.commands) != 1 else ''}"
            count = f"{steps} steps ({commands}, {rollback} rollback steps, which count too) are"
        problems.append(f"plan: {count} more than the policy's limit of {policy.max_commands}")
    counts = Counter(command.id for command in plan.commands)
    problems.extend(f"plan: command id `{name}` is used {n} times" for name, n in counts.items() if n > 1)
    ids = set(counts)
    for command in plan.commands:
        for n in range(len(command.rollback)):
            if rollback_id(command.id, n) in ids:
                problems.append(
                    f"command `{rollback_id(command.id, n)}`: the id is taken by rollback step {n} of `{command.id}`"
                )
    graph_mode = plan.mode is ExecutionMode.DEPENDENCY_GRAPH
    graph: dict[str, set[str]] = {}
    for command in plan.commands:
        where = f"command `{command.id}`"
        if command.depends_on and not graph_mode:
            problems.append(
                f"{where}: depends_on is only allowed in dependency_graph mode; "
                f"{plan.mode.value} mode would ignore the order it asks for"
            )
        for dependency in dict.fromkeys(command.depends_on):
            if dependency == command.id:
                problems.append(f"{where}: depends on itself")
            elif dependency not in ids:
                problems.append(f"{where}: depends on unknown command `{dependency}`")
            else:
                graph.setdefault(command.id, set()).add(dependency)
    if graph_mode:
        try:
            TopologicalSorter(graph).prepare()
        except CycleError as exc:
            cycle = list(reversed(exc.args[1]))
            problems.append(
                f"plan: dependency cycle: {' -> '.join(f'`{c}`' for c in cycle)} (each depends on the next)"
            )
    return problems


# ---------------------------------------------------------------------------------------------------------
# One CLI command.


def _resolve_cli(text: str, policy: Policy) -> tuple[list[str], dict[str, Any]]:
    problems = text_problems(text)
    try:
        words = shlex.split(text, posix=True)
    except ValueError as exc:
        return [*problems, f"the command cannot be split into words: {str(exc).lower()} (unbalanced quotes?)"], {}
    if problems:
        return problems, {}
    if not words:
        return ["the command is empty"], {}
    if words[0] != "aws":
        return [f"the program must be `aws`, not `{words[0]}`"], {}
    args = words[1:]
    files = _LocalFiles(policy.local_file_dir)
    problems.extend(files.uri_problems(args))
    reading = awscli_model.read_aws_args(args, files.check)
    problems.extend(reading.problems)
    for option in reading.global_options:
        if option not in ALLOWED_GLOBAL_OPTIONS:
            reason = FORBIDDEN_GLOBAL_OPTIONS.get(option, "the engine sets global options from configuration")
            problems.append(f"option {option} is not allowed: {reason}")
    if reading.service is None or reading.cli_service is None or reading.cli_operation is None:
        return problems, {}
    names = (reading.cli_service, reading.cli_operation)
    operation = reading.operation or reading.cli_operation
    # A reviewed aws CLI customization answers for every API operation it may call.
    called = reading.api_operations or (operation,)
    for name in called:
        denial = policy.denial_reason(reading.service, name, names)
        if denial is not None:
            problems.append(f"{reading.service}:{name} is {denial}")
    if problems:
        return problems, {}
    if reading.api_operations:
        risk = highest(
            [
                _raised(
                    operation_risk(reading.service, name, xform_name(name, "-"), secret_reads=policy.secret_reads),
                    policy,
                    reading.service,
                    name,
                    names,
                )
                for name in reading.api_operations
            ]
        )
    else:
        risk = operation_risk(
            reading.service, reading.operation, reading.cli_operation, args, secret_reads=policy.secret_reads
        )
    return [], {
        "form": "cli",
        "service": reading.service,
        "cli_service": reading.cli_service,
        "operation": reading.operation,
        "cli_operation": reading.cli_operation,
        "cli_args": args,
        "params": reading.params,
        "high_level": reading.high_level,
        "api_operations": list(reading.api_operations),
        "risk": _raised(risk, policy, reading.service, operation, names),
        "returns_secrets": any(returns_secrets(reading.service, name) for name in called),
        "supports_dry_run": reading.supports_dry_run,
    }


def text_problems(text: str) -> list[str]:
    """Shell syntax where a POSIX shell would act on it, control and invisible characters, and look-alikes.

    Quoting is read as a shell reads it: inside single quotes nothing is special, inside double quotes only
    ``$`` and backticks are (a shell expands them there), outside quotes every shell character is, and so
    are line breaks and a ``#`` that starts a word (a comment). shlex splits the text by the same quoting
    rules, so what passes here means the same to CloudOps as it would to a shell, which never sees it.
    """
    problems: list[str] = []
    quote = ""
    escaped = False
    previous = " "
    for char in text:
        if escaped:
            escaped = False
            if char == "\n" and not quote:
                problems.append(_LINE_BREAK)
            elif quote == '"' and char in "$`\n":
                # A shell drops this backslash, shlex keeps it: the two would read different values.
                problems.append(
                    f"a backslash before `{char}` inside double quotes: a shell drops it and CloudOps would keep it; "
                    "use single quotes"
                )
        elif quote == "'":
            quote = "" if char == "'" else quote
        elif char == "\\":
            escaped = True
        elif quote == '"':
            if char == '"':
                quote = ""
            elif char in _EXPANDED_IN_DOUBLE_QUOTES:
                problems.append(_shell_problem(char, text) + " (a shell expands it inside double quotes)")
        elif char in "'\"":
            quote = char
        elif char in SHELL_CHARACTERS:
            problems.append(_shell_problem(char, text))
        elif char == "\n":
            problems.append(_LINE_BREAK)
        elif char == "#" and previous.isspace():
            problems.append("shell syntax is not allowed: `#` at the start of a word begins a comment in a shell")
        problems.extend(_character_problems(char))
        previous = char
    return list(dict.fromkeys(problems))


_LINE_BREAK = "a line break is not allowed outside quotes: a command is one line"
_EXPANDED_IN_DOUBLE_QUOTES = frozenset("$`")


def _character_problems(char: str) -> list[str]:
    if unicodedata.category(char) in _REFUSED_CATEGORIES and char != "\n":
        return [f"character {_describe(char)} is not allowed: it is a control or invisible character"]
    if unicodedata.category(char) == "Zs" and char != " ":
        return [f"character {_describe(char)} is not allowed: only plain spaces separate words"]
    if char > "\x7f":
        shell = [c for c in unicodedata.normalize("NFKC", char) if c in SHELL_CHARACTERS]
        if shell:
            return [f"character {_describe(char)} is not allowed: it looks like `{shell[0]}`"]
    return []


def _shell_problem(char: str, text: str) -> str:
    problem = f"shell syntax is not allowed: `{char}` ({SHELL_CHARACTERS[char]}); commands never run in a shell"
    if char in "|<>" and "--query" in text:
        problem += " (quote a --query expression that uses it)"
    return problem


def _describe(char: str) -> str:
    return f"U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')})"


class _LocalFiles:
    """The one rule for local paths, applied both to ``file://`` text and to paths the aws CLI would touch."""

    def __init__(self, root: Path | None):
        self.root = root
        self._reported: set[str] = set()

    def uri_problems(self, args: list[str]) -> list[str]:
        problems = []
        for arg in args:
            if not _FILE_URI.search(arg):
                continue
            value = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
            prefix = next((p for p in ("file://", "fileb://") if value.startswith(p)), None)
            if self.root is None:
                problems.append(f"local files are not allowed: `{_short(arg)}` (the policy sets no local_file_dir)")
            elif prefix is None or len(_FILE_URI.findall(arg)) > 1:
                problems.append(f"`file://` may only begin an option value: `{_short(arg)}`")
            else:
                problem = local_path_problem(value[len(prefix) :], self.root)
                if problem is not None:
                    problems.append(problem)
            self._reported.add(value[len(prefix) :] if prefix else value)
        return problems

    def check(self, path: str, access: LocalAccess) -> str | None:
        if path in self._reported:
            # Already reported from the text; the command is refused either way.
            return None
        return local_path_problem(path, self.root, access)


def local_path_problem(path: str, root: Path | None, access: LocalAccess = LocalAccess.READ) -> str | None:
    """Why a command may not touch ``path``, or None: it must resolve inside ``root``."""
    verb = "read" if access is LocalAccess.READ else "write"
    if root is None:
        return f"local file {path} is not allowed: the policy sets no local_file_dir"
    if not os.path.isabs(path):
        return f"local path {path} must be absolute, inside {root}"
    try:
        real_root = os.path.realpath(root)
        real = os.path.realpath(path)
        inside = os.path.commonpath([real_root, real]) == real_root
        special = os.path.exists(real) and not (os.path.isfile(real) or os.path.isdir(real))
    except (OSError, ValueError) as exc:
        return f"local path {path} cannot be checked: {exc}"
    if not inside:
        resolved = f" (it resolves to {real})" if real != os.path.normpath(path) else ""
        return f"local path {path} is outside {root}{resolved}: commands may only {verb} files there"
    if special:
        return f"local path {path} is not a regular file or directory"
    return None


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------------------
# One SDK call.


def _resolve_sdk(spec: CommandSpec, policy: Policy) -> tuple[list[str], dict[str, Any]]:
    assert spec.sdk is not None
    service, operation, params = spec.sdk.service, spec.sdk.operation, spec.sdk.params
    if service not in awscli_model.botocore_services():
        named = next((s for s in awscli_model.botocore_services() if awscli_model.cli_service_name(s) == service), None)
        hint = f" (the aws CLI's `{service}` is botocore's `{named}`)" if named else ""
        hint = hint or _did_you_mean(service, awscli_model.botocore_services())
        return [f"`{service}` is not a botocore service name{hint}"], {}
    try:
        model = awscli_model.service_model(service)
    except UnknownServiceError:
        return [f"`{service}` is not a botocore service name"], {}
    if operation not in model.operation_names:
        # `describe-instances` and `describe_instances` are the CLI's and boto3's spellings of the name.
        named = next((o for o in model.operation_names if operation in (xform_name(o, "-"), xform_name(o))), None)
        hint = f" (botocore names it `{named}`)" if named else _did_you_mean(operation, model.operation_names)
        return [f"`{service}` has no operation `{operation}`{hint}"], {}
    problems = [f"params: {problem}" for problem in _sdk_file_problems(params)]
    operation_model = model.operation_model(operation)
    invalid = awscli_model.api_params_problem(params, operation_model)
    if invalid is not None:
        problems.append(f"params are invalid: {invalid}")
    names = (awscli_model.cli_service_name(service), xform_name(operation, "-"))
    denial = policy.denial_reason(service, operation, names)
    if denial is not None:
        problems.append(f"{service}:{operation} is {denial}")
    if problems:
        return problems, {}
    shape = operation_model.input_shape
    risk = operation_risk(service, operation, names[1], None, secret_reads=policy.secret_reads)
    return [], {
        "form": "sdk",
        "service": service,
        "cli_service": names[0],
        "operation": operation,
        "cli_operation": names[1],
        "params": dict(params),
        "risk": _raised(risk, policy, service, operation, names),
        "returns_secrets": returns_secrets(service, operation),
        "supports_dry_run": shape is not None and "DryRun" in shape.members,
    }


def _sdk_file_problems(params: dict[str, Any]) -> list[str]:
    """``file://`` in any key or string value: an SDK call never reads files, and a plan must not pretend to."""
    problems = []
    pending: list[Any] = [params]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list | tuple):
            pending.extend(value)
        elif isinstance(value, str) and _FILE_URI.search(value):
            problems.append(f"local files are not allowed: `{_short(value)}`")
    return problems


# ---------------------------------------------------------------------------------------------------------


def _raised(risk: Risk, policy: Policy, service: str, operation: str, names: tuple[str, str]) -> Risk:
    raised = policy.raised_risk(service, operation, names)
    return risk if raised is None else max(risk, raised)


def _did_you_mean(word: str, choices: Any) -> str:
    close = get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(f'`{c}`' for c in close)}?)" if close else ""
