"""Commands whose output is a secret with no key beside it."""

from __future__ import annotations

import re
from collections.abc import Sequence

from engine.redaction.keys import is_sensitive_key, normalize

# --- commands whose output is an unlabeled secret ---------------------------------------------------------

_BARE_SECRET_COMMANDS = frozenset(
    {("ecr", "get-login-password"), ("ecr-public", "get-login-password"), ("ecr", "get-login")}
)
# Text output drops the keys, so these results' secrets (SecretString, Plaintext, PasswordData) stand bare.
_TEXT_SECRET_COMMANDS = frozenset(
    {
        ("secretsmanager", "get-secret-value"),
        ("secretsmanager", "batch-get-secret-value"),
        ("kms", "decrypt"),
        ("kms", "generate-data-key"),
        ("kms", "generate-data-key-pair"),
        ("kms", "generate-random"),
        ("ec2", "get-password-data"),
        ("lightsail", "get-instance-access-details"),
    }
)
# Global options that take a value, skipped when looking for the service and operation words.
_GLOBAL_OPTIONS_WITH_VALUE = frozenset(
    {"--region", "--profile", "--output", "--endpoint-url", "--query", "--color", "--ca-bundle"}
    | {"--cli-read-timeout", "--cli-connect-timeout", "--cli-binary-format"}
)
_QUERY_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def prints_bare_secret(cli_args: Sequence[str]) -> bool:
    """Whether the ``aws`` command ``cli_args`` (argv, with or without the leading ``aws``) prints a
    secret with no key beside it.

    ``--query SecretString --output text`` prints the secret alone on its lines, where no pattern can tell
    it from any other text; so do ``ecr get-login-password``, ``configure get aws_secret_access_key`` and
    the text output of ``secretsmanager get-secret-value`` or ``kms decrypt``. Such commands need
    ``RedactingSink.mark_secret_output`` (or ``StreamRedactor(redact_all=True)``).
    """
    args = list(cli_args)
    if args and args[0] == "aws":
        args = args[1:]
    words = _command_words(args)
    if tuple(words[:2]) in _BARE_SECRET_COMMANDS:
        return True
    if words[:2] == ["configure", "get"] and len(words) > 2 and is_sensitive_key(words[2].rsplit(".", 1)[-1]):
        return True
    if _option_value(args, "--output") == "text" and tuple(words[:2]) in _TEXT_SECRET_COMMANDS:
        return True
    query = _option_value(args, "--query")
    if query is None:
        return False
    identifiers = _QUERY_IDENTIFIER.findall(query)
    if any(is_sensitive_key(name) for name in identifiers):
        return True
    # ssm get-parameter(s) --with-decryption --query Parameter.Value
    return "--with-decryption" in args and any(normalize(name) == "value" for name in identifiers)


def _command_words(args: Sequence[str]) -> list[str]:
    words: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _GLOBAL_OPTIONS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            words.append(arg)
    return words


def _option_value(args: Sequence[str], option: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == option and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(option + "="):
            return arg[len(option) + 1 :]
    return None
