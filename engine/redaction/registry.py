"""Values the application knows to be secret (its own tokens and keys), redacted verbatim wherever they appear."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from urllib.parse import quote

from engine.redaction.keys import is_sensitive_key

# Shorter values would redact ordinary words and numbers everywhere they happen to occur.
MIN_REGISTERED_SECRET_LENGTH = 8

_lock = threading.Lock()
_registered: tuple[str, ...] = ()


def registered_secrets() -> tuple[str, ...]:
    """Every registered form, longest first, so a secret that contains another is replaced whole."""
    return _registered


def register_secret(value: str) -> bool:
    """Redact ``value`` verbatim wherever it appears from now on, also URL- and JSON-escaped.

    Returns False (and registers nothing) for values shorter than ``MIN_REGISTERED_SECRET_LENGTH``.
    """
    global _registered
    value = value.strip()
    if len(value) < MIN_REGISTERED_SECRET_LENGTH:
        return False
    # The same secret shows up escaped inside presigned URLs and JSON strings.
    forms = {value, quote(value, safe=""), json.dumps(value)[1:-1]}
    with _lock:
        _registered = tuple(sorted(set(_registered) | forms, key=len, reverse=True))
    return True


def register_environment_secrets(environ: Mapping[str, str] | None = None) -> int:
    """Register the values of environment variables whose names mark them as secret.

    ``SLACK_BOT_TOKEN``, ``OPENAI_API_KEY``, ``AWS_SECRET_ACCESS_KEY`` and the like; returns how many
    values were registered.
    """
    env = os.environ if environ is None else environ
    count = 0
    for name, value in env.items():
        # PWD is the working directory, not a password.
        if name.upper() in ("PWD", "OLDPWD") or not is_sensitive_key(name):
            continue
        count += register_secret(value)
    return count


def clear_registered_secrets() -> None:
    global _registered
    with _lock:
        _registered = ()
