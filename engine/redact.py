"""Redaction of secrets in command output, before any sink, the history store or a log sees it.

Output reaches us three ways: line by line from ``aws`` CLI processes (pretty JSON, YAML, text tables,
``s3`` progress, object bodies, error messages), as parsed JSON from boto3, and as finished
``CommandResult`` / ``PlanResult`` models. ``StreamRedactor`` handles the first (it keeps state across lines
for private key blocks, YAML continuations, name/value pairs and CSV columns), ``redact_data`` the second,
``redact_result`` and ``redact_plan_result`` the third, and ``RedactingSink`` puts a stream redactor in
front of any sink.

Secrets are found four ways: by the key or label they sit under (``"SecretAccessKey": ...``,
``password=...``, ``--master-user-password ...``, ``<SessionToken>...``, a CSV column named ``password``);
by their own shape, from the maintained ``detect-secrets`` ruleset (``engine.redaction.detector``) and the
shapes AWS output carries that it does not describe (``engine.redaction.shapes``: AWS keys and session
tokens, presigned URLs, webhooks, command lines, ``.netrc``/``.pgpass`` lines, base64 that decodes to a
secret); verbatim for values the application registers (its own tokens and keys); and, for structured
responses, by botocore's ``sensitive`` trait (``engine.sensitive``, before this). Identifiers and enum values
are deliberately left alone: output nobody can read is output nobody can act on.

The code lives in ``engine.redaction``; this module is its public face.
"""

from __future__ import annotations

from engine.redaction.commands import prints_bare_secret
from engine.redaction.keys import is_sensitive_key
from engine.redaction.registry import (
    MIN_REGISTERED_SECRET_LENGTH,
    clear_registered_secrets,
    register_environment_secrets,
    register_secret,
)
from engine.redaction.shapes import REDACTED
from engine.redaction.stream import StreamRedactor, redact_text
from engine.redaction.structured import RedactingSink, redact_data, redact_plan_result, redact_result

__all__ = [
    "MIN_REGISTERED_SECRET_LENGTH",
    "REDACTED",
    "RedactingSink",
    "StreamRedactor",
    "clear_registered_secrets",
    "is_sensitive_key",
    "prints_bare_secret",
    "redact_data",
    "redact_plan_result",
    "redact_result",
    "redact_text",
    "register_environment_secrets",
    "register_secret",
]
