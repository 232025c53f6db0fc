"""Reading an ``aws ...`` argv the way the aws CLI reads it, with the CLI's own command and argument tables.

The aws CLI builds its parsers from the botocore models plus its own customizations (``ec2 run-instances
--count``, ``ec2 authorize-security-group-ingress --port``, the high-level ``s3`` commands...). A reader
built on botocore alone would refuse valid commands and miss options the CLI reads differently, so this
module asks the CLI: one in-process driver parses the argv with the CLI's parsers and, for commands that
map to one API operation, runs the CLI's own parameter building up to the point where it would call AWS,
keeping the request instead of sending it.

Nothing here can reach the network, by construction rather than by matching event names:

* every operation is read with an operation caller that only records the request it is handed; the CLI's
  real caller, which creates a client and sends, is never given to it;
* the driver's session has fixed dummy credentials and settings, ignores the operator's environment and
  config files, and refuses every request a client could make: a handler on ``before-call`` and another
  on ``before-send`` raise before anything is signed or sent. If the CLI ever got that far the command is
  refused as "could not be checked offline" and the attempt is logged as a defect;
* the CLI's loading of ``file://`` and ``http(s)://`` parameter values is replaced by a handler that only
  records what the real CLI would read or download, and commands that would read or write local files
  are never run through the parameter building at all;
* whatever the CLI's code writes to standard output or standard error while reading a command is kept
  from the process's streams.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from difflib import get_close_matches
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn

import awscli
import botocore.session
import jmespath
from awscli import EnvironmentVariables
from awscli.argparser import ArgTableArgParser
from awscli.argprocess import unpack_argument
from awscli.clidriver import CLIDriver, ServiceCommand, ServiceOperation
from awscli.customizations.commands import BasicCommand
from awscli.paramfile import URIArgumentHandler
from awscli.plugin import load_plugins
from botocore.compat import accepts_kwargs
from botocore.configprovider import ConstantProvider
from botocore.exceptions import ParamValidationError
from botocore.hooks import HierarchicalEmitter, NodeList
from botocore.model import OperationModel, ServiceModel
from botocore.validate import validate_parameters
from pydantic import BaseModel, ConfigDict, Field

from engine.awscli_review import (
    API_CUSTOMIZATIONS,
    CUSTOM_ARGUMENT,
    LOCAL_READ_ARGUMENTS,
    LOCAL_WRITE_ARGUMENTS,
    PLAIN_ARGUMENTS,
    REFUSED_ARGUMENTS,
    REFUSED_COMMANDS,
    REFUSED_CUSTOMIZATIONS,
    REFUSED_SUBCOMMANDS,
)

logger = logging.getLogger(__name__)

HIGH_LEVEL_S3_COMMANDS = frozenset({"ls", "cp", "mv", "rm", "sync", "mb", "rb"})
# The high-level S3 commands whose two paths may name a local file or directory.
_S3_TRANSFER_COMMANDS = frozenset({"cp", "mv", "sync"})

_PAGINATION_CONFIG = "PaginationConfig"
_URI_PREFIXES = ("file://", "fileb://", "http://", "https://")


class LocalAccess(StrEnum):
    READ = "read"
    WRITE = "write"


LocalPathCheck = Callable[[str, LocalAccess], "str | None"]
"""Called for every local path a command would touch; returns why it may not, or None."""


class CliReading(BaseModel):
    """What the aws CLI makes of an argv (the words after ``aws``), and every reason it must not run.

    The names are set as far as the argv could be read, so a caller can apply policy to a command even
    when its options are wrong. ``params`` is the request the CLI would send, or None when the command is
    not one API call (high-level ``s3``), touches local files, or has problems.
    """

    model_config = ConfigDict(frozen=True)

    cli_service: str | None = None
    cli_operation: str | None = None
    service: str | None = Field(default=None, description="botocore service name.")
    operation: str | None = Field(
        default=None, description="botocore operation name; None for commands that are not one API operation."
    )
    high_level: bool = Field(default=False, description="An aws CLI command that is not one API operation.")
    api_operations: tuple[str, ...] = Field(
        default=(), description="For a reviewed aws CLI customization: the botocore operations it may call."
    )
    params: dict[str, Any] | None = None
    supports_dry_run: bool = False
    local_files: bool = Field(default=False, description="The command reads or writes local files.")
    global_options: dict[str, Any] = Field(
        default_factory=dict, description="Global options the argv sets, by option name (`--query`)."
    )
    problems: list[str] = Field(default_factory=list)


def read_aws_args(args: list[str], check_local_path: LocalPathCheck) -> CliReading:
    """Read ``args`` (the argv after ``aws``) with the aws CLI's own parsers. Never raises for bad input."""
    with _LOCK, _kept_from_streams():
        return _Reader(_cli_tables(), check_local_path).read(list(args))


@contextmanager
def _kept_from_streams() -> Iterator[None]:
    # The CLI writes help, skeletons and warnings with print(); none of it may reach the process's output,
    # where it could carry a request's values. Logging handlers keep the streams they were given, so logs
    # from other threads are unaffected.
    sink = io.StringIO()
    with redirect_stdout(sink), redirect_stderr(sink):
        yield
    if sink.tell():
        logger.warning("the aws CLI wrote %d characters while a command was validated; discarded", sink.tell())


def botocore_services() -> frozenset[str]:
    with _LOCK:
        return _cli_tables().botocore_services


def service_model(service: str) -> ServiceModel:
    """botocore's model of ``service``; raises ``botocore.exceptions.UnknownServiceError``."""
    with _LOCK:
        return _cli_tables().service_model(service)


def global_option_names() -> frozenset[str]:
    """Every global option the aws CLI's main parser knows (``--profile``, ``--query``...)."""
    with _LOCK:
        return _cli_tables().global_option_names


def cli_service_name(service: str) -> str:
    """The aws CLI's command for a botocore service (``s3`` -> ``s3api``)."""
    with _LOCK:
        return _cli_tables().cli_names.get(service, service)


def api_params_problem(params: Mapping[str, Any], operation: OperationModel) -> str | None:
    """Why botocore would refuse ``params`` for ``operation`` before sending it, or None.

    Idempotency tokens count as present: botocore fills them in itself. ``PaginationConfig`` is the
    paginator's, not the API's, and only its keys are checked.
    """
    request = dict(params)
    paging = request.pop(_PAGINATION_CONFIG, None)
    problems = []
    if paging is not None:
        unknown = sorted(set(paging) - {"MaxItems", "PageSize", "StartingToken"}) if isinstance(paging, dict) else []
        if not isinstance(paging, dict) or unknown:
            problems.append(f"{_PAGINATION_CONFIG} takes only MaxItems, PageSize and StartingToken")
    shape = operation.input_shape
    if shape is not None:
        for name, member in shape.members.items():
            if member.metadata.get("idempotencyToken") and name not in request:
                request[name] = _token_placeholder(member)
    try:
        if shape is not None:
            validate_parameters(request, shape)
        elif request:
            problems.append(f"{operation.name} takes no parameters")
    except ParamValidationError as exc:
        problems.append(" ".join(str(exc.kwargs.get("report", exc)).split()))
    return "; ".join(problems) or None


def _verify_accepts_kwargs(handler: Any) -> None:
    try:
        accepted = _accepts_kwargs(getattr(handler, "__func__", handler))
    except TypeError:
        # As botocore does: a handler it cannot inspect (or hash, here) is taken as it is.
        return
    if not accepted:
        raise ValueError(f"Event handler {handler} must accept keyword arguments (**kwargs)")


@lru_cache(maxsize=4096)
def _accepts_kwargs(function: Any) -> bool:
    return bool(accepts_kwargs(function))


def _trie_node(trie: Any, key: str) -> dict[str, Any] | None:
    """The node of botocore's handler trie that holds ``key``'s own handlers, if it exists."""
    node = trie._root
    for part in key.split("."):
        node = node["children"].get(part)
        if node is None:
            return None
    return node


def _token_placeholder(shape: Any) -> str:
    """A stand-in for the token botocore generates (a UUID), within the member's own length rules."""
    low = shape.metadata.get("min", 0)
    high = shape.metadata.get("max", _UUID_LENGTH)
    return "0" * max(low, min(_UUID_LENGTH, high))


_UUID_LENGTH = 36


def _class_name(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_streaming_blob(argument: object) -> bool:
    # The CLI reads these values as local file paths and sends the file's bytes.
    model = getattr(argument, "argument_model", None)
    return model is not None and model.type_name == "blob" and bool(model.serialization.get("streaming"))


# ---------------------------------------------------------------------------------------------------------
# The in-process driver.


class _ArgparseError(Exception):
    def __init__(self, message: str, *, choice: str | None = None, dest: str | None = None, final: bool = False):
        super().__init__(message)
        self.choice = choice
        self.dest = dest
        # A complete message that callers pass on as it is.
        self.final = final


class _Reference(BaseModel):
    option: str
    prefix: str
    value: str


def _quiet(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make an aws CLI parser raise instead of printing to stderr and calling ``sys.exit``."""

    def error(message: str) -> NoReturn:
        raise _ArgparseError(message)

    def exit_(status: int = 0, message: str | None = None) -> NoReturn:
        # Only the --version action exits without an error: the CLI's parsers have no --help.
        raise _ArgparseError(
            message or "option --version is not allowed: it prints the aws CLI version and exits", final=True
        )

    def check_value(action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            raise _ArgparseError(f"invalid value {value!r}", choice=str(value), dest=action.dest)

    parser.error = error  # type: ignore[method-assign]
    parser.exit = exit_  # type: ignore[method-assign]
    parser._print_message = lambda *args, **kwargs: None  # type: ignore[method-assign]
    parser._check_value = check_value  # type: ignore[method-assign]
    return parser


def _isolated_session() -> botocore.session.Session:
    """A botocore session that reads nothing from the operator's environment or aws config files.

    botocore's own handlers are left out: they act on requests (filling idempotency tokens, encoding
    user data) and would run again when an executor sends the request, so the captured params must be
    taken before them. The CLI's handlers, added by ``load_plugins``, are what shape the request.
    """
    session = botocore.session.Session(EnvironmentVariables, include_builtin_handlers=False)
    store = session.get_component("config_store")
    fixed = {
        "profile": None,
        "config_file": os.devnull,
        "credentials_file": os.devnull,
        "region": "us-east-1",
        "api_versions": {},
        # Only the CLI's own data, as in the aws process the CLI executor starts without AWS_DATA_PATH.
        "data_path": str(Path(awscli.__file__).parent / "data"),
    }
    for name, value in fixed.items():
        store.set_config_provider(name, ConstantProvider(value))
    # Fixed credentials also keep botocore's provider chain (instance metadata, SSO...) from ever running.
    session.set_credentials("VALIDATION-ONLY", "VALIDATION-ONLY")
    emitter = session.get_component("event_emitter")
    # The transport: every client this session could make refuses to call, before signing and again before
    # sending. Registered on the bare event names, which prefix every service's and operation's event.
    emitter.register_first("before-call", _refuse_request, unique_id="cloudops-offline-call")
    emitter.register_first("before-send", _refuse_request, unique_id="cloudops-offline-send")
    # No plugins from a config file: only the CLI's built-in customizations.
    load_plugins({}, event_hooks=emitter)
    return session


class OfflineViolation(Exception):
    """The aws CLI tried to send a request while a command was being read: refused before it left."""


def _refuse_request(event_name: str, **kwargs: Any) -> NoReturn:
    # The event names the service and operation (``before-call.secrets-manager.DeleteSecret``); no
    # parameter is logged, since they may hold secrets.
    logger.error("defect: the aws CLI tried to send a request while a command was validated (%s)", event_name)
    raise OfflineViolation(event_name.split(".", 1)[-1])


class _RecordingCaller:
    """Stands in for the CLI's operation caller, which would create a client and send: it keeps the request."""

    def __init__(self) -> None:
        self.params: dict[str, Any] | None = None

    def invoke(self, service_name: str, operation_name: str, parameters: dict[str, Any], parsed_globals: Any) -> int:
        self.params = _plain(parameters)
        return 0


class _CliTables:
    """One in-process aws CLI driver, its parsers, and the two handlers this module adds to its session."""

    def __init__(self) -> None:
        self.session = _isolated_session()
        self.driver = CLIDriver(session=self.session)
        self.commands = self.driver._get_command_table()
        self.global_parser = _quiet(self.driver._create_parser(self.commands))
        self.global_options = {
            action.dest: action.option_strings[0] for action in self.global_parser._actions if action.option_strings
        }
        self.global_option_names = frozenset(
            name for action in self.global_parser._actions for name in action.option_strings
        )
        self.global_defaults = {dest: self.global_parser.get_default(dest) for dest in self.global_options}
        self.cli_names = {
            command._service_name: name
            for name, command in self.commands.items()
            if type(command) is ServiceCommand and command._service_name != name
        }
        self.botocore_services = frozenset(self.session.get_available_services())
        self._service_parsers: dict[str, argparse.ArgumentParser] = {}
        self._models: dict[str, ServiceModel] = {}
        self._references: list[_Reference] | None = None
        self._current_option = ""
        emitter = self.session.get_component("event_emitter")
        self._handlers = getattr(emitter, "_emitter", emitter)
        if not isinstance(self._handlers, HierarchicalEmitter):
            raise TypeError(f"unexpected botocore event emitter {type(self._handlers).__name__}")
        # botocore inspects every handler's signature as it is registered, and the CLI registers a dozen
        # for each command read; the answer depends only on the function, so it is kept.
        self._handlers._verify_accept_kwargs = _verify_accepts_kwargs  # type: ignore[method-assign]
        recorder = URIArgumentHandler({prefix: (self._record_reference, {}) for prefix in _URI_PREFIXES})
        emitter.register("load-cli-arg", recorder, unique_id="cloudops-uri-recorder")

    @contextmanager
    def one_command(self) -> Iterator[None]:
        """Forget every handler the CLI registers or removes while reading one command.

        The aws CLI runs one command per process, and its customizations register handlers as they go,
        some for a whole service (``operation-args-parsed.ec2.*``) and some holding that command's
        values. Left in place they would act on the next command read, so every event whose handlers
        change is put back as it was before the command. Only those events are saved: copying the whole
        handler table for each command would cost more than reading the command.
        """
        emitter = self._handlers
        trie = emitter._handlers
        saved: dict[str, Any] = {}
        unique_ids = {key: dict(value) for key, value in emitter._unique_id_handlers.items()}

        def remember(key: str) -> None:
            if key not in saved:
                node = _trie_node(trie, key)
                values = None if node is None else node["values"]
                saved[key] = None if values is None else [list(section) for section in values]

        def append_item(key: str, value: Any, section: int = 1) -> None:
            remember(key)
            type(trie).append_item(trie, key, value, section)

        def remove_item(key: str, value: Any) -> None:
            remember(key)
            type(trie).remove_item(trie, key, value)

        trie.append_item, trie.remove_item = append_item, remove_item
        try:
            yield
        finally:
            del trie.append_item, trie.remove_item
            for key, values in saved.items():
                node = _trie_node(trie, key)
                if node is not None:
                    node["values"] = None if values is None else NodeList(*values)
            emitter._unique_id_handlers = unique_ids
            emitter._lookup_cache = {}

    def service_parser(self, cli_service: str) -> argparse.ArgumentParser:
        parser = self._service_parsers.get(cli_service)
        if parser is None:
            parser = _quiet(self.commands[cli_service]._create_parser())
            self._service_parsers[cli_service] = parser
        return parser

    def service_model(self, service: str) -> ServiceModel:
        model = self._models.get(service)
        if model is None:
            model = self.session.get_service_model(service)
            self._models[service] = model
        return model

    @contextmanager
    def recording(self) -> Iterator[list[_Reference]]:
        self._references = []
        try:
            yield self._references
        finally:
            self._references = None

    def _record_reference(self, prefix: str, path: str, **kwargs: Any) -> None:
        # Stands in for the CLI's file and URL loaders: note what would be loaded, load nothing.
        if self._references is not None:
            self._references.append(_Reference(option=self._current_option, prefix=prefix, value=path))

    def scan_references(
        self, values: list[tuple[str, Any, Any]], service: str, operation: str, ns: Any
    ) -> list[_Reference]:
        """The values the real CLI would read from a file or download, found with the CLI's own rules.

        ``values`` holds (option name, the CLI's argument object or None, value), as the CLI unpacks them.
        """
        with self.recording() as references:
            for option, argument, value in values:
                if value is None:
                    continue
                self._current_option = option
                unpack_argument(self.session, service, operation, argument, value, ns)
        return references

    def capture(self, operation: ServiceOperation, args: list[str], ns: Any) -> tuple[bool, dict[str, Any] | None]:
        """Run the CLI's own handling of ``args`` until the call; return (captured, params).

        ``operation`` must have been built with a ``_RecordingCaller``. ``captured`` is False when a CLI
        customization took the call over instead of calling the API: then there is no single request to
        report.
        """
        caller = operation._operation_caller
        if not isinstance(caller, _RecordingCaller):
            raise TypeError("an operation read for validation must hold a recording caller")
        operation(args, ns)
        if caller.params is None:
            return False, None
        params = caller.params
        self._apply_cli_request_handlers(params, operation._operation_model)
        return True, params

    def _apply_cli_request_handlers(self, params: dict[str, Any], model: OperationModel) -> None:
        """The CLI customizations that act when the client builds the request (``run-instances`` counts).

        Emitted as a botocore client would, on a session that holds only the CLI's handlers. The
        paginator's ``PaginationConfig`` is set aside, as the paginator does before each call.
        """
        paging = params.pop(_PAGINATION_CONFIG, None)
        service_id = model.service_model.service_id.hyphenize()
        context: dict[str, Any] = {}
        responses = self.session.emit(
            f"provide-client-params.{service_id}.{model.name}", params=params, model=model, context=context
        )
        replaced = next((response for _, response in responses if response is not None), None)
        if replaced is not None:
            params.clear()
            params.update(replaced)
        self.session.emit(
            f"before-parameter-build.{service_id}.{model.name}", params=params, model=model, context=context
        )
        if paging is not None:
            params[_PAGINATION_CONFIG] = paging


_NO_SERVICE = "no service given: write `aws <service> <operation> [options]`"
_LOCK = threading.RLock()
_TABLES: _CliTables | None = None


def _cli_tables() -> _CliTables:
    global _TABLES
    if _TABLES is None:
        _TABLES = _CliTables()
    return _TABLES


# ---------------------------------------------------------------------------------------------------------
# Reading one argv.


class _Reader:
    def __init__(self, tables: _CliTables, check_local_path: LocalPathCheck):
        self.tables = tables
        self.check_local_path = check_local_path
        self.problems: list[str] = []
        self.names: dict[str, Any] = {}
        self.local_files = False
        self.dry_run = False
        self.global_options: dict[str, Any] = {}

    def read(self, args: list[str]) -> CliReading:
        params: dict[str, Any] | None = None
        try:
            params = self._read(args)
        except _ArgparseError as exc:
            self.problems.append(str(exc))
        except Exception as exc:
            # The CLI's own code failing on an odd argv must refuse the command, never crash validation.
            self.problems.append(f"the aws CLI cannot read the command: {_one_line(exc)}")
        return CliReading(
            **self.names,
            params=params if not self.problems else None,
            supports_dry_run=self.dry_run,
            local_files=self.local_files,
            global_options=self.global_options,
            problems=list(dict.fromkeys(self.problems)),
        )

    def _read(self, args: list[str]) -> dict[str, Any] | None:
        if not args:
            raise _ArgparseError(_NO_SERVICE)
        ns, rest = self._parse_globals(args)
        self.global_options = {
            self.tables.global_options[dest]: value
            for dest, value in vars(ns).items()
            if dest in self.tables.global_options and value != self.tables.global_defaults[dest]
        }
        if ns.query is not None:
            try:
                jmespath.compile(ns.query)
            except Exception as exc:  # jmespath raises several unrelated types for a bad expression
                self.problems.append(f"--query is not a valid JMESPath expression: {' '.join(str(exc).split())}")
        cli_service = ns.command
        if cli_service == "s3":
            return self._read_high_level(args, rest, ns)
        command = self.tables.commands[cli_service]
        if type(command) is not ServiceCommand:
            reason = REFUSED_COMMANDS.get(cli_service, "it is an aws CLI command that is not an API operation")
            raise _ArgparseError(f"`aws {cli_service}` is not allowed: {reason}")
        self.names = {"cli_service": cli_service, "service": command._service_name}
        return self._read_operation(args, command, rest, ns)

    def _parse_globals(self, args: list[str]) -> tuple[argparse.Namespace, list[str]]:
        try:
            return self.tables.global_parser.parse_known_args(args)
        except _ArgparseError as exc:
            if exc.dest == "command" and exc.choice is not None:
                hint = _did_you_mean(exc.choice, self.tables.commands)
                raise _ArgparseError(f"`aws {exc.choice}`: no such aws command{hint}") from None
            if exc.final:
                raise
            if exc.dest is None and "command" in str(exc):
                raise _ArgparseError(_NO_SERVICE) from None
            raise _ArgparseError(f"the aws CLI cannot read the command: {exc}") from None

    # -- one API operation --------------------------------------------------------------------------------

    def _read_operation(
        self, args: list[str], command: ServiceCommand, rest: list[str], ns: argparse.Namespace
    ) -> dict[str, Any] | None:
        cli_service = command.name
        table = command._get_command_table()
        try:
            parsed, rest = self.tables.service_parser(cli_service).parse_known_args(rest)
        except _ArgparseError as exc:
            if exc.dest == "operation" and exc.choice is not None:
                hint = _did_you_mean(exc.choice, table)
                raise _ArgparseError(f"`aws {cli_service}` has no operation `{exc.choice}`{hint}") from None
            raise _ArgparseError(f"`aws {cli_service}` needs an operation: {exc}") from None
        name = parsed.operation
        listed = table.get(name)
        if type(listed) is not ServiceOperation:
            operations = API_CUSTOMIZATIONS.get((cli_service, name))
            if operations is not None and isinstance(listed, BasicCommand):
                return self._read_customization(args, listed, rest, ns, operations)
            reason = REFUSED_CUSTOMIZATIONS.get((cli_service, name)) or REFUSED_SUBCOMMANDS.get(
                name, "it is an aws CLI customization this engine has not reviewed, not one API operation"
            )
            raise _ArgparseError(f"`aws {cli_service} {name}` is not allowed: {reason}")
        model = listed._operation_model
        self.names.update(cli_operation=name, operation=model.name)
        self.dry_run = model.input_shape is not None and "DryRun" in model.input_shape.members
        with self.tables.one_command():
            # A new operation object builds a new argument table: what a fresh aws process would have.
            operation = ServiceOperation(
                name=name,
                parent_name=cli_service,
                # Never the CLI's own caller: this one keeps the request and sends nothing.
                operation_caller=_RecordingCaller(),
                operation_model=model,
                session=self.tables.session,
            )
            arguments = operation.arg_table
            self._check_option_spelling(args, {a.cli_name for a in arguments.values()})
            self.tables.session.emit(
                f"before-building-argument-table-parser.{cli_service}.{name}",
                argument_table=arguments,
                args=rest,
                session=self.tables.session,
                parsed_globals=ns,
            )
            values = self._parse_arguments(ArgTableArgParser(arguments), rest, f"aws {cli_service} {name}")
            self._check_arguments(arguments, values, args)
            # The order and names ServiceOperation uses when it unpacks values into the request.
            unpacked = [(a.cli_name, a, values.get(a.py_name)) for a in arguments.values()]
            self._check_references(self.tables.scan_references(unpacked, model.service_model.endpoint_prefix, name, ns))
            if self.problems or self.local_files:
                return None
            return self._capture(operation, rest, args)

    def _capture(self, operation: ServiceOperation, rest: list[str], args: list[str]) -> dict[str, Any] | None:
        # A fresh namespace: the CLI's handlers change it (pagination turns itself off, for one).
        ns, _ = self.tables.global_parser.parse_known_args(args)
        try:
            captured, params = self.tables.capture(operation, rest, ns)
        except OfflineViolation as exc:
            self.problems.append(
                f"the command could not be checked offline: reading it made the aws CLI try to call {exc} "
                "(nothing was sent)"
            )
            return None
        except (Exception, SystemExit) as exc:
            self.problems.append(f"the aws CLI refuses the arguments: {_one_line(exc)}")
            return None
        if not captured or params is None:
            return None
        problem = api_params_problem(params, operation._operation_model)
        if problem is not None:
            self.problems.append(f"the request the aws CLI would send is invalid: {problem}")
            return None
        return params

    def _parse_arguments(self, parser: argparse.ArgumentParser, rest: list[str], what: str) -> dict[str, Any]:
        parser = _quiet(parser)
        # The same stray-word slot the CLI adds: `aws ... help` would print documentation.
        parser.add_argument("help", nargs="?")
        try:
            parsed, remaining = parser.parse_known_args(rest)
        except _ArgparseError as exc:
            if exc.final:
                raise
            raise _ArgparseError(f"`{what}`: {exc}") from None
        values = vars(parsed)
        stray = values.pop("help", None)
        if stray == "help":
            raise _ArgparseError(f"`{what} help` is not allowed: it prints documentation")
        if stray is not None:
            remaining.append(stray)
        if remaining:
            unread = sorted(set(remaining), key=lambda word: rest.index(word) if word in rest else len(rest))
            self.problems.append(f"`{what}` does not take {', '.join(unread)}")
        return values

    def _check_option_spelling(self, args: list[str], names: set[str]) -> None:
        """Every option written in full: the CLI's parsers accept any unique abbreviation (``--prof``)."""
        known = self.tables.global_option_names | names
        for arg in args:
            if arg == "--":
                self.problems.append("`--` is not allowed: every word after `aws` is read as an option or value")
                continue
            if not arg.startswith("--"):
                continue
            written = arg.split("=", 1)[0]
            if written in known:
                continue
            meant = sorted(name for name in known if name.startswith(written))
            # Unknown options are left to the parser, which reports them with the words it could not read.
            if meant:
                self.problems.append(
                    f"option {written} is abbreviated: write it in full (the aws CLI would read it as "
                    f"{' or '.join(meant)})"
                )

    def _check_arguments(
        self,
        arguments: Mapping[str, Any],
        values: Mapping[str, Any],
        args: list[str],
        *,
        reviewed_command: bool = False,
    ) -> None:
        written = {arg.split("=", 1)[0] for arg in args if arg.startswith("--")}
        for argument in arguments.values():
            value = values.get(argument.py_name)
            option = argument.cli_name
            used = option in written if option.startswith("--") else value is not None
            if not used or value is None:
                continue
            kind = _class_name(argument)
            if kind in REFUSED_ARGUMENTS:
                self.problems.append(f"option {option} is not allowed: {REFUSED_ARGUMENTS[kind]}")
            elif kind in LOCAL_READ_ARGUMENTS or _is_streaming_blob(argument):
                self._check_local(option, value, LocalAccess.READ)
            elif kind in LOCAL_WRITE_ARGUMENTS:
                self._check_local(option, value, LocalAccess.WRITE)
            elif kind not in PLAIN_ARGUMENTS and not (reviewed_command and kind == CUSTOM_ARGUMENT):
                self.problems.append(
                    f"option {option} is not allowed: it is an aws CLI customization ({kind}) this engine "
                    "has not reviewed for local file access"
                )

    def _check_local(self, option: str, value: Any, access: LocalAccess) -> None:
        self.local_files = True
        paths = value if isinstance(value, list) else [value]
        for path in paths:
            problem = self.check_local_path(str(path), access)
            if problem is not None:
                self.problems.append(f"{option}: {problem}")

    def _check_references(self, references: list[_Reference]) -> None:
        for reference in references:
            if reference.prefix in ("http://", "https://"):
                self.problems.append(
                    f"{reference.option}: the aws CLI would download {reference.value} when the command runs, "
                    "so what runs could differ from what was approved; put the content in the plan"
                )
            else:
                self._check_local(reference.option, reference.value[len(reference.prefix) :], LocalAccess.READ)

    # -- a reviewed aws CLI customization ---------------------------------------------------------------------

    def _read_customization(
        self,
        args: list[str],
        command: BasicCommand,
        rest: list[str],
        ns: argparse.Namespace,
        operations: tuple[str, ...],
    ) -> None:
        """A customized command that only calls API operations: its options are read, nothing of it runs."""
        name = command.name
        self.names.update(cli_operation=name, high_level=True, api_operations=operations)
        arguments = command.arg_table
        self._check_option_spelling(args, {a.cli_name for a in arguments.values()})
        with self.tables.one_command():
            what = f"aws {self.names['cli_service']} {name}"
            values = self._parse_arguments(ArgTableArgParser(arguments), rest, what)
            self._check_arguments(arguments, values, args, reviewed_command=True)
            unpacked = [(a.cli_name, a, values.get(a.py_name)) for a in arguments.values()]
            self._check_references(self.tables.scan_references(unpacked, "custom", name, ns))

    # -- high-level s3 ------------------------------------------------------------------------------------

    def _read_high_level(self, args: list[str], rest: list[str], ns: argparse.Namespace) -> dict[str, Any] | None:
        s3 = self.tables.commands["s3"]
        self.names = {"cli_service": "s3", "service": "s3", "high_level": True}
        parser = _quiet(ArgTableArgParser(s3.arg_table, s3.subcommand_table))
        try:
            parsed, rest = parser.parse_known_args(rest)
        except _ArgparseError as exc:
            if exc.dest == "subcommand" and exc.choice is not None:
                hint = _did_you_mean(exc.choice, HIGH_LEVEL_S3_COMMANDS)
                raise _ArgparseError(f"`aws s3` has no command `{exc.choice}`{hint}") from None
            raise _ArgparseError(f"`aws s3`: {exc}") from None
        name = getattr(parsed, "subcommand", None)
        if getattr(parsed, "help", None) is not None or name == "help":
            raise _ArgparseError("`aws s3 help` is not allowed: it prints documentation")
        if name is None:
            raise _ArgparseError("`aws s3` needs a command: one of " + ", ".join(sorted(HIGH_LEVEL_S3_COMMANDS)))
        if name not in HIGH_LEVEL_S3_COMMANDS:
            reason = REFUSED_SUBCOMMANDS.get(name, "only " + ", ".join(sorted(HIGH_LEVEL_S3_COMMANDS)) + " are")
            raise _ArgparseError(f"`aws s3 {name}` is not allowed: {reason}")
        self.names["cli_operation"] = name
        command = s3.subcommand_table[name]
        # Built once and kept, as in one aws process: building the (empty) subcommand table first is
        # what registers `sync`'s --delete, --size-only and --exact-timestamps.
        _ = command.subcommand_table
        arguments = command.arg_table
        self.dry_run = "dryrun" in arguments
        self._check_option_spelling(args, {a.cli_name for a in arguments.values()})
        with self.tables.one_command():
            values = self._parse_arguments(ArgTableArgParser(arguments), rest, f"aws s3 {name}")
            # The names BasicCommand uses when it unpacks: by destination, so some have no argument object.
            unpacked = []
            for dest, value in values.items():
                argument = arguments.get(dest.replace("_", "-"))
                unpacked.append((argument.cli_name if argument else "--" + dest.replace("_", "-"), argument, value))
            self._check_references(self.tables.scan_references(unpacked, "custom", name, ns))
        if name in _S3_TRANSFER_COMMANDS:
            self._check_transfer_paths(name, values, args)
        return None

    def _check_transfer_paths(self, name: str, values: Mapping[str, Any], args: list[str]) -> None:
        paths = values.get("paths") or []
        if len(paths) != 2:
            return
        source, destination = paths
        if not (_is_s3(source) or _is_s3(destination)):
            self.problems.append(f"`aws s3 {name}` needs an s3:// path on at least one side")
        if source == "-":
            self.problems.append(f"`aws s3 {name}` cannot read standard input: commands get none")
        elif not _is_s3(source):
            # mv deletes the source once it is copied.
            self._check_local("source", source, LocalAccess.WRITE if name == "mv" else LocalAccess.READ)
            walks_tree = name == "sync" or "--recursive" in args
            if walks_tree and "--no-follow-symlinks" not in args:
                self.problems.append(
                    f"`aws s3 {name}` from a local directory needs --no-follow-symlinks, so a link inside it "
                    "cannot reach files outside the allowed directory"
                )
        # `cp ... -` writes the object to standard output, which the executor streams like any output.
        if not _is_s3(destination) and not (name == "cp" and destination == "-"):
            self._check_local("destination", destination, LocalAccess.WRITE)


def _plain(value: Any) -> Any:
    """A copy made of plain dicts and lists (the CLI parses JSON into OrderedDicts)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _is_s3(path: str) -> bool:
    return path.startswith("s3://")


def _did_you_mean(word: str, choices: Mapping[str, Any] | frozenset[str]) -> str:
    close = get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(f'`{c}`' for c in close)}?)" if close else ""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
