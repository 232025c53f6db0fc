"""How a command is shown to people, logs and the LLM: its text with every sensitive input value withheld.

Which values are sensitive is botocore's ``sensitive`` trait (``engine.sensitive``), read from the request
the command makes, so a password is withheld whether the plan wrote it as ``--password x``,
``--password=x`` or inside ``--cli-input-json``. Only the executor sees the real values, in memory.

Values are replaced where the text holds them, as written or JSON-escaped. When a value cannot be found in
the text in either form (the aws CLI decoded or rewrote it on the way to the request), the text may hold it
in a form nobody can search for, so every option value of that command is withheld instead: the command
and its option names stay readable, nothing else does.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

from engine.plan import CommandSpec
from engine.sensitive import REDACTED, redact_input, sensitive_input_values

# A value this short is searched for only as a whole word (or a whole ``--option=value``): replacing every
# occurrence of, say, ``5`` inside other words would garble the command and keep nothing secret.
MIN_SEARCHED_LENGTH = 4


def command_display(spec: CommandSpec, service: str, operation: str | None, params: Mapping[str, Any] | None) -> str:
    """``spec`` as shown anywhere: every value the model marks sensitive in ``params`` replaced."""
    values = [value for value in sensitive_input_values(service, operation, params) if value]
    if spec.cli is not None:
        return masked_cli(spec.cli, values) if values else spec.cli
    assert spec.sdk is not None
    shown = redact_input(service, operation, dict(spec.sdk.params))
    text = f"{spec.sdk.service}:{spec.sdk.operation} {json.dumps(shown, sort_keys=True, default=str)}"
    # The shape already withheld the sensitive members; this also catches a copy of a value elsewhere.
    return _replace(text, _forms(values))


def plan_command_display(spec: CommandSpec) -> str:
    """A plan command as shown without resolving it: SDK params masked by the model, CLI text as it is.

    For showing a stored plan, whose command lines already hold markers in place of sensitive values
    (``engine.secret_inputs``); an SDK call's params are masked here too since that needs no parsing.
    """
    if spec.sdk is None:
        return spec.display
    return command_display(spec, spec.sdk.service, spec.sdk.operation, spec.sdk.params)


def masked_cli(text: str, values: list[str]) -> str:
    """The command line ``text`` with each of ``values`` withheld, re-quoted as a shell would read it."""
    try:
        words = shlex.split(text)
    except ValueError:
        return _all_withheld_text(text)
    if not all(_found(value, words) for value in values):
        return shlex.join(_all_values_withheld(words))
    forms = _forms(values)
    return shlex.join([_mask_word(word, values, forms) for word in words])


def _forms(values: list[str]) -> list[str]:
    """How the values may be written inside a longer word: as they are, or escaped in a JSON string."""
    forms: set[str] = set()
    for value in values:
        if len(value) < MIN_SEARCHED_LENGTH:
            continue
        forms.update({value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]})
    # Longest first, so a value that contains another is withheld whole.
    return sorted((form for form in forms if form), key=len, reverse=True)


def _replace(text: str, forms: list[str]) -> str:
    for form in forms:
        text = text.replace(form, REDACTED)
    return text


def _split_option(word: str) -> tuple[str, str]:
    """(``--name=``, value) for ``--name=value``; ("", word) for any other word."""
    if word.startswith("--") and "=" in word:
        name, value = word.split("=", 1)
        return name + "=", value
    return "", word


def _found(value: str, words: list[str]) -> bool:
    """Whether ``_mask_word`` would withhold ``value`` where the text holds it."""
    forms = _forms([value])
    for word in words:
        prefix, part = _split_option(word)
        if part == value:
            return True
        if (prefix or not _is_option_name(part)) and any(form in part for form in forms):
            return True
    return False


def _mask_word(word: str, values: list[str], forms: list[str]) -> str:
    prefix, part = _split_option(word)
    if part in values:
        return prefix + REDACTED
    if not prefix and _is_option_name(part):
        return word
    return prefix + _replace(part, forms)


def _is_option_name(word: str) -> bool:
    return word.startswith("--")


def _all_values_withheld(words: list[str]) -> list[str]:
    # Keeps `aws`, the service and operation words, and option names; everything after the first option
    # that is not itself an option name is withheld.
    shown: list[str] = []
    options_started = False
    for word in words:
        prefix, part = _split_option(word)
        if not prefix and _is_option_name(part):
            options_started = True
            shown.append(word)
        elif prefix:
            options_started = True
            shown.append(prefix + REDACTED)
        else:
            shown.append(REDACTED if options_started else word)
    return shown


def _all_withheld_text(text: str) -> str:
    head = text.split("--", 1)[0].rstrip()
    return f"{head} {REDACTED}" if head else REDACTED
