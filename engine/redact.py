"""Redaction of secrets in command output, before any sink, the history store or a log sees it.

Output reaches us three ways: line by line from ``aws`` CLI processes (pretty JSON, YAML, text tables,
``s3`` progress, error messages), as parsed JSON from boto3, and as finished ``CommandResult`` /
``PlanResult`` models. ``StreamRedactor`` handles the first (it keeps state across lines for PEM blocks,
YAML continuations and name/value pairs), ``redact_data`` the second, ``redact_result`` and
``redact_plan_result`` the third, and ``RedactingSink`` puts a stream redactor in front of any sink.

Secrets are found three ways: by the key or label they sit under (``"SecretAccessKey": ...``,
``password=...``, ``--master-user-password ...``, ``<SessionToken>...``), by their own shape (``AKIA...``,
``xoxb-...``, JWTs, PEM private keys, presigned URL signatures), and verbatim for values the application
registers (its own tokens and keys). Identifiers are deliberately left alone: output nobody can read is
output nobody can act on.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from engine.results import CommandOutcome, CommandResult, PlanResult, RollbackOutcome, RunState
from engine.sinks import CommandStateChanged, Event, OutputLine, OutputSink, PlanStateChanged

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

REDACTED = "[REDACTED]"

# Shorter values would redact ordinary words and numbers everywhere they happen to occur.
MIN_REGISTERED_SECRET_LENGTH = 8


# --- which keys hold secrets -------------------------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^a-z0-9]+")

# Error codes and exception names mention secrets without holding one: "NoCredentialsError: Unable to
# locate credentials", "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist".
_ERROR_NAME = re.compile(
    r"^(?:missing|invalid|expired|malformed|unrecognized|incomplete)|"
    r"(?:error|errors|exception|exceptions|failure|failures|fault|violation|mismatch|notfound|denied)$"
)

# Checked before the identifier suffixes: these end in "id" or name a signature yet are credentials.
_ALWAYS_SECRET_KEY = re.compile(r"(?:accesskeyid|amzsignature|amzcredential|amzsecuritytoken)$")

# A secret word followed by one of these names something about a secret (its ARN, age, policy), not the
# secret itself: "SecretArn", "PasswordLastUsed", "MinimumPasswordLength", "AWS_SHARED_CREDENTIALS_FILE".
_IDENTIFIER_SUFFIX = re.compile(
    r"(?:arn|arns|id|ids|name|names|list|status|stages|type|types|state|date|time|timestamp|lastused|"
    r"lastchanged|changed|created|age|length|size|policy|policies|enabled|required|prevention|expiration|"
    r"expiry|expires|expiresat|rotation|rules|source|origin|provider|format|spec|usage|fingerprint|location|"
    r"count|version|versions|path|file|dir|region|mode|config|configuration|settings|strategy|url|uri|prompt|"
    r"hint|reference|ref|selector|selectors|metadata|kind|algorithm|algorithms|validity|units|manager)$"
)

_SECRET_WORD = re.compile(r"password|passwd|passphrase|secret|privatekey|keymaterial|credential|plaintext")
# Only as the last word: "AccessKey" is a secret, "AccessKeysPerUser" (a quota) is not.
_SECRET_SUFFIX = re.compile(
    r"(?:token|tokens|cookie|cookies|auth|authorization|pwd|accesskey|apikey|apikeyvalue|presharedkey|"
    r"connectionstring)$"
)

# Tokens that page, order or deduplicate requests. Anyone holding them can do nothing they could not
# already do, and hiding them breaks pagination in the output.
_NOT_SECRET_TOKEN = re.compile(
    r"(?:next|continuation|client|idempotency|pagination|paging|starting|start|page|sync|sequence|forward|"
    r"backward|change|resume|conflict|request|cursor|previous|prev|marker|expired|invalid|missing|malformed|"
    r"deduplication|cancellation)tokens?$"
)


def _normalize(name: str) -> str:
    return _NON_ALNUM.sub("", name.lower())


@lru_cache(maxsize=8192)
def is_sensitive_key(name: str) -> bool:
    """Whether a value stored under ``name`` (JSON key, variable, flag, XML tag, in any case or separator
    style) is a secret: ``SecretAccessKey``, ``aws_session_token``, ``--master-user-password`` are;
    ``SecretArn``, ``NextToken``, ``PasswordLastUsed`` are not."""
    key = _normalize(name)
    if not key or _ERROR_NAME.search(key):
        return False
    if _ALWAYS_SECRET_KEY.search(key):
        return True
    if _IDENTIFIER_SUFFIX.search(key):
        return False
    if _SECRET_WORD.search(key):
        return True
    return bool(_SECRET_SUFFIX.search(key)) and not _NOT_SECRET_TOKEN.search(key)


# Keys that name an entry and keys that hold its value, in the name/value lists AWS uses for environment
# variables (ECS, CodeBuild), stack parameters and option settings: the value is secret when the name is.
_PAIR_NAME_KEYS = frozenset(
    {"name", "key", "parametername", "parameterkey", "optionname", "variablename", "settingname", "attributename"}
)
_PAIR_VALUE_KEYS = frozenset({"value", "parametervalue", "optionvalue", "settingvalue", "attributevalue"})
_MAX_PAIR_NAME = 128


def _names_secret(name: str) -> bool:
    return len(name) <= _MAX_PAIR_NAME and is_sensitive_key(name)


# --- values the application knows to be secret ------------------------------------------------------------

_registry_lock = threading.Lock()
_registered: tuple[str, ...] = ()


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
    with _registry_lock:
        # Longest first, so a secret that contains another is replaced whole.
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
    with _registry_lock:
        _registered = ()


# --- shapes of secrets in text -----------------------------------------------------------------------------

_PEM_BEGIN = re.compile(r"-----BEGIN(?: [A-Z0-9]+)* PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END(?: [A-Z0-9]+)* PRIVATE KEY(?: BLOCK)?-----")

# A quoted key and its colon: JSON ("k": ), Python reprs ('k': ) and JSON escaped inside a string (\"k\": ).
_QUOTED_KEY = re.compile(r"""(?P<q>\\?["'])(?P<key>[^"'\\\r\n]{1,128})(?P=q)[ \t]*:[ \t]*""")
_ONLY_BLANKS = re.compile(r"[ \t]*")
_DQ_INNER = re.compile(r'(?:[^"\\]|\\.)*')
_SQ_INNER = re.compile(r"(?:[^'\\]|\\.)*")
_ESCAPED_DQ_INNER = re.compile(r'(?:[^"\\]|\\[^"])*')

# ``label: value`` / ``label=value`` (env files, YAML, INI, headers, query strings, connection strings) and
# ``--flag value``. Labels glued to a preceding ``:`` or ``/`` are parts of ARNs and paths
# (``arn:aws:secretsmanager:...:secret:prod/db``), not labels.
_LABEL = re.compile(
    r"(?<![\w-])(?P<flag>--[A-Za-z][\w-]{0,80})(?:=|[ \t]++)(?![-\s])"
    r"|(?:(?<=\\n)|(?<![\w.\-:/$@]))(?:\$env:)?(?P<label>[A-Za-z][\w.\-]{0,80})[ \t]*(?P<sep>[=:])(?![:/=])[ \t]*"
)
_LINE_PREFIX = re.compile(r"[ \t]*(?:(?:export|set|setx|local|readonly|declare(?:[ \t]+-\w+)?)[ \t]+|-[ \t]+|#[ \t]*)?")
_BARE_VALUE = re.compile(r"""[^\s,;&"'<>)\]}\\]+""")
_SHELL_WORD = re.compile(r"\S+")
_AUTH_SCHEME = re.compile(r"(?i:bearer|basic|digest|token|negotiate|ntlm|aws4-hmac-sha256)[ \t]+")
_BLOCK_SCALAR = frozenset({"|", ">", "|-", ">-", "|+", ">+"})
_LITERALS = frozenset({"true", "false", "null", "none", "~", "yes", "no"})
_QUERY_SIGNATURE_KEYS = frozenset({"signature", "sig"})
# Matched from the first non-blank character: a leading blank run here would backtrack quadratically.
_NESTED_ENTRY = re.compile(r"""[{\[]|(?:-[ \t]++)?["']?[\w.\-/ ]{1,128}["']?[ \t]*:(?:[ \t]|$)""")

# Key ids are upper case and digits, so a lower-case neighbour ("\\nAKIA...", "\\tASIA...") or a
# percent escape ("%2FAKIA...") still bounds one.
_AWS_KEY_ID = re.compile(r"(?:(?<![A-Z0-9])|(?<=%[0-9A-Fa-f]{2}))(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])")
_BASE64_40 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])")
# AWS session tokens are base64 of a protobuf whose first field is "origin" or "er/aws", so they begin
# with one of these two runs after a few bytes of framing.
_SESSION_TOKEN = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{2,6}(?:b3JpZ2lu|ZXIvYXdz)[A-Za-z0-9+/=%]{16,}")
_ECR_TOKEN = re.compile(
    r"(?<![A-Za-z0-9+/])(?:QVdTOm[A-Za-z0-9+/]{20,}|eyJwYXlsb2Fk[A-Za-z0-9+/]{20,})={0,2}(?![A-Za-z0-9+/=])"
)
_SLACK_TOKEN = re.compile(r"(?<![\w-])(?:xox[abposre]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{10,})")
_SLACK_WEBHOOK = re.compile(r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_-]+")
_LLM_KEY = re.compile(r"(?<![\w-])sk-[A-Za-z0-9_-]{20,}")
_GITHUB_TOKEN = re.compile(r"(?<!\w)(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})")
_GITLAB_TOKEN = re.compile(r"(?<![\w-])glpat-[A-Za-z0-9_-]{20,}")
_GOOGLE_KEY = re.compile(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}")
_STRIPE_KEY = re.compile(r"(?<!\w)[sr]k_(?:live|test)_[A-Za-z0-9]{16,}")
_HF_NPM_TOKEN = re.compile(r"(?<!\w)(?:hf|npm)_[A-Za-z0-9]{30,}")
_JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?<![\w-])((?i:bearer)[ \t]+)([A-Za-z0-9\-._~+/]{16,}=*)")
_URL_CREDENTIALS = re.compile(r"""(\b[A-Za-z][A-Za-z0-9+.\-]{0,30}://[^/\s:@"'<>]{0,256}:)([^/\s"'<>]{1,256})(@)""")
_DOCKER_LOGIN_PASSWORD = re.compile(r"(\blogin\b[^\n]{0,200}?[ \t]-p[ \t]*)([^\s\"']+)")
_XML_ELEMENT = re.compile(r"<(?P<tag>[A-Za-z_][\w:.\-]{0,80})(?:\s[^<>]*)?>(?P<value>[^<]+)</(?P=tag)\s*>")
_SSM_TEXT_SECURE = re.compile(r"(\tSecureString\t)([^\t\r\n]+)")


def _mixed_enough(value: str) -> bool:
    """Random keys mix cases and digits; words, host names and hex digests do not."""
    return (
        any(c.isupper() for c in value)
        and any(c.islower() for c in value)
        and any(c.isdigit() or c in "+/" for c in value)
    )


def _keep_if_plain(match: re.Match[str]) -> str:
    return REDACTED if _mixed_enough(match.group()) else match.group()


def _redact_aws_key_ids(text: str) -> str:
    text, found = _AWS_KEY_ID.subn(REDACTED, text)
    if found:
        # Text output (``--output text``) drops the keys; the secret key is the 40-character field that
        # sits on the same line as its key id.
        text = _BASE64_40.sub(_keep_if_plain, text)
    return text


def _redact_xml(match: re.Match[str]) -> str:
    if not is_sensitive_key(match["tag"]):
        return match.group()
    start, end = match.span("value")
    whole = match.group()
    offset = match.start()
    return whole[: start - offset] + _mask(match["value"]) + whole[end - offset :]


def _sub(pattern: re.Pattern[str], replacement: str | Callable[[re.Match[str]], str]) -> Callable[[str], str]:
    return lambda text: pattern.sub(replacement, text)


# Each rule runs only when one of its lowercase triggers is in the line: most lines of real output trigger
# nothing, which keeps streaming cheap.
_SHAPE_RULES: tuple[tuple[tuple[str, ...], Callable[[str], str]], ...] = (
    (("akia", "asia", "abia", "acca"), _redact_aws_key_ids),
    (("b3jpz2lu", "zxivyxdz"), _sub(_SESSION_TOKEN, REDACTED)),
    (("qvdtom", "eyjwyxlsb2fk"), _sub(_ECR_TOKEN, REDACTED)),
    (("xox", "xapp-"), _sub(_SLACK_TOKEN, REDACTED)),
    (("hooks.slack.com",), _sub(_SLACK_WEBHOOK, rf"\g<1>{REDACTED}")),
    (("sk-",), _sub(_LLM_KEY, _keep_if_plain)),
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), _sub(_GITHUB_TOKEN, REDACTED)),
    (("glpat-",), _sub(_GITLAB_TOKEN, REDACTED)),
    (("aiza",), _sub(_GOOGLE_KEY, REDACTED)),
    (("k_live_", "k_test_"), _sub(_STRIPE_KEY, REDACTED)),
    (("hf_", "npm_"), _sub(_HF_NPM_TOKEN, _keep_if_plain)),
    (("eyj",), _sub(_JWT, REDACTED)),
    (("bearer",), _sub(_BEARER, lambda m: m[1] + REDACTED if any(c.isdigit() for c in m[2]) else m.group())),
    (("://",), _sub(_URL_CREDENTIALS, rf"\g<1>{REDACTED}\g<3>")),
    (("login",), _sub(_DOCKER_LOGIN_PASSWORD, rf"\g<1>{REDACTED}")),
    (("</",), _sub(_XML_ELEMENT, _redact_xml)),
    (("securestring",), _sub(_SSM_TEXT_SECURE, rf"\g<1>{REDACTED}")),
)

# Words every secret key or label contains, and markers of name/value pairs; lowercase.
_KEY_TRIGGERS = (
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "credential",
    "auth",
    "plaintext",
    "cookie",
    "connectionstring",
    "signature",
    "sig=",
    "securestring",
    "userdata",
)

# One search for "could anything here be a secret?" before trying rules one by one.
_KEY_GATE = re.compile("|".join(map(re.escape, _KEY_TRIGGERS)))
_SHAPE_GATE = re.compile("|".join(sorted({re.escape(t) for triggers, _ in _SHAPE_RULES for t in triggers})))


def _mask(value: str) -> str:
    """The replacement for a secret value; an auth scheme in front of it stays readable."""
    if not value.replace(REDACTED, ""):
        return value  # empty, or redacted already
    scheme = _AUTH_SCHEME.match(value)
    if scheme and scheme.end() < len(value):
        return value[: scheme.end()] + REDACTED
    return REDACTED


def _decode_base64_text(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _user_data_has_secret(value: str) -> bool:
    """EC2 user data is base64: its secrets (passwords in bootstrap scripts) only show once decoded."""
    decoded = _decode_base64_text(value.strip())
    return decoded is not None and redact_text(decoded) != decoded


def _split_ending(line: str) -> tuple[str, str]:
    if line.endswith("\r\n"):
        return line[:-2], "\r\n"
    if line.endswith(("\n", "\r")):
        return line[:-1], line[-1]
    return line, ""


def _indent_of(text: str) -> int:
    return len(text) - len(text.lstrip(" \t"))


class StreamRedactor:
    """Redacts one command output stream line by line, remembering what spans lines.

    State kept between lines: inside a PEM private key block; inside a sensitive quoted value that did not
    close on its line; inside the continuation of a sensitive YAML/INI value (a block scalar, a folded
    plain scalar, or a value on the line after its key); and a pending name/value pair (an entry named
    ``DB_PASSWORD`` or typed ``SecureString`` whose ``value`` comes later in the same object).

    With ``redact_all`` every non-blank line is redacted: for commands whose whole output is a bare
    secret (see ``prints_bare_secret``).
    """

    __slots__ = ("_continuation_indent", "_continuation_open", "_in_pem", "_in_string", "_pair", "redact_all")

    def __init__(self, *, redact_all: bool = False) -> None:
        self.redact_all = redact_all
        self._in_pem = False
        self._in_string = False
        self._continuation_indent: int | None = None
        self._continuation_open = False
        self._pair: str | None = None

    def feed(self, line: str) -> str:
        """Redact one line (with or without its line ending, which is kept)."""
        body, ending = _split_ending(line)
        if "\n" in body:
            return "\n".join(self._redact_line(part) for part in body.split("\n")) + ending
        return self._redact_line(body) + ending

    def _redact_line(self, body: str) -> str:
        if not body.strip():
            return body
        if self.redact_all:
            return body[: _indent_of(body)] + REDACTED
        prefix = ""
        if self._in_pem:
            end = _PEM_END.search(body)
            if end is None:
                return body[: _indent_of(body)] + REDACTED
            self._in_pem = False
            prefix, body = REDACTED, body[end.end() :]
        elif self._in_string:
            inner_end = _DQ_INNER.match(body).end()
            if inner_end == len(body):
                return body[: _indent_of(body)] + REDACTED
            self._in_string = False
            prefix, body = REDACTED, body[inner_end:]
        elif self._continuation_indent is not None:
            indent = _indent_of(body)
            if indent > self._continuation_indent and not (
                self._continuation_open and _NESTED_ENTRY.match(body, indent)
            ):
                self._continuation_open = False
                return body[:indent] + REDACTED
            self._continuation_indent = None
            self._continuation_open = False
        return prefix + self._redact_body(body)

    def _redact_body(self, body: str) -> str:
        for secret in _registered:
            if secret in body:
                body = body.replace(secret, REDACTED)
        low = body.lower()
        if "private key" in low:
            body, unterminated = self._redact_pem(body)
            if unterminated:
                return body
            low = body.lower()
        if self._pair is not None or _KEY_GATE.search(low):
            body = self._redact_quoted_keys(body)
            body = self._redact_labels(body)
            if "|" in body:
                body = self._redact_table_cells(body)
        if _SHAPE_GATE.search(low):
            for triggers, rule in _SHAPE_RULES:
                if any(t in low for t in triggers):
                    body = rule(body)
        return _redact_bare_secret_key(body)

    def _redact_pem(self, body: str) -> tuple[str, bool]:
        """Replace PEM private key blocks; an unterminated one redacts the rest of the stream until END."""
        while (begin := _PEM_BEGIN.search(body)) is not None:
            end = _PEM_END.search(body, begin.end())
            if end is None:
                self._in_pem = True
                before = self._redact_body(body[: begin.start()]) if begin.start() else ""
                return before + REDACTED, True
            body = body[: begin.start()] + REDACTED + body[end.end() :]
        return body, False

    def _open_continuation(self, indent: int, *, value_follows: bool) -> None:
        self._continuation_indent = indent
        self._continuation_open = value_follows

    def _redact_quoted_keys(self, body: str) -> str:
        pieces: list[str] = []
        cursor = 0
        scanned = 0
        for match in _QUOTED_KEY.finditer(body):
            if match.start() < cursor:
                continue
            if self._pair is not None and "}" in body[scanned : match.start()]:
                self._pair = None
            scanned = match.end()
            key = match["key"]
            norm = _normalize(key)
            action: str | None = None
            if is_sensitive_key(key):
                action = "secret"
            elif norm in _PAIR_VALUE_KEYS and self._pair is not None:
                action, self._pair = self._pair, None
            elif norm == "userdata":
                action = "userdata"
            span = _quoted_value_span(body, match.end())
            if span is None:
                if action == "secret" and _ONLY_BLANKS.fullmatch(body, match.end()):
                    self._open_continuation(_indent_of(body), value_follows=True)
                elif action == "userdata" and body.startswith("{", match.end()):
                    self._pair = "userdata"
                continue
            start, end, closed = span
            value = body[start:end]
            if action is None:
                if (norm in _PAIR_NAME_KEYS and _names_secret(value)) or (norm == "type" and value == "SecureString"):
                    self._pair = "secret"
                continue
            if action == "userdata" and not _user_data_has_secret(value):
                continue
            if not closed:
                self._in_string = True
                pieces.append(body[cursor:start] + REDACTED)
                cursor = len(body)
                break
            masked = _mask(value)
            if masked != value:
                pieces.append(body[cursor:start] + masked)
                cursor = end
        if self._pair is not None and "}" in body[scanned:]:
            self._pair = None
        if not pieces:
            return body
        pieces.append(body[cursor:])
        return "".join(pieces)

    def _redact_labels(self, body: str) -> str:
        if self._pair is not None and body.lstrip().startswith("- "):
            self._pair = None
        pieces: list[str] = []
        cursor = 0
        for match in _LABEL.finditer(body):
            if match.start() < cursor:
                continue
            flag = match["flag"]
            label = flag or match["label"]
            norm = _normalize(label)
            sensitive = is_sensitive_key(label) or (
                norm in _QUERY_SIGNATURE_KEYS
                and match["sep"] == "="
                and match.start() > 0
                and body[match.start() - 1] in "?&"
            )
            at_line_start = flag is None and _LINE_PREFIX.fullmatch(body, 0, match.start()) is not None
            # "key: value" (YAML, headers) and "key = value" (INI) run to the end of the line; a shell
            # assignment "KEY=value cmd" ends at whitespace.
            whole_line = at_line_start and (match["sep"] == ":" or body[match.end() - 1] in " \t")
            shell_word = at_line_start and not whole_line
            column = match.start("flag") if flag else match.start("label")
            span = _label_value_span(body, match.end(), whole_line=whole_line, shell_word=shell_word)
            if span is None:
                if sensitive and whole_line:
                    self._open_continuation(column, value_follows=True)
                continue
            start, end = span
            value = body[start:end]
            if not self._value_is_secret(norm, value, sensitive=sensitive) or value.lower() in _LITERALS:
                continue
            if whole_line:
                # What follows, indented deeper, belongs to this value (YAML block or folded scalar, INI
                # continuation lines).
                self._open_continuation(column, value_follows=False)
                if value in _BLOCK_SCALAR:
                    continue
            masked = _mask(value)
            if masked != value:
                pieces.append(body[cursor:start] + masked)
                cursor = end
        if not pieces:
            return body
        pieces.append(body[cursor:])
        return "".join(pieces)

    def _redact_table_cells(self, body: str) -> str:
        """``--output table`` rows: ``|  SecretString |  value  |``."""
        if _TABLE_BORDER.fullmatch(body):
            # A border closes the sub-table, and with it any pending name/value pair.
            self._pair = None
            return body

        def replace(match: re.Match[str]) -> str:
            label, cell = match["label"].strip(), match["value"]
            value = cell.strip()
            if (
                not value
                or not _TABLE_LABEL.fullmatch(label)
                or not self._value_is_secret(_normalize(label), value, sensitive=is_sensitive_key(label))
            ):
                return match.group()
            # Padded to the cell's width so the table's columns stay aligned.
            return match["label"] + "|" + cell.replace(value, REDACTED.ljust(len(value)), 1)

        return _TABLE_CELL.sub(replace, body)

    def _value_is_secret(self, norm: str, value: str, *, sensitive: bool) -> bool:
        """Whether the value under a label is secret; tracks name/value pairs on the way."""
        if sensitive:
            return True
        if norm in _PAIR_VALUE_KEYS and self._pair == "secret":
            self._pair = None
            return True
        if (norm in _PAIR_NAME_KEYS and _names_secret(value)) or (norm == "type" and value == "SecureString"):
            self._pair = "secret"
        return False


# Whole cells, trimmed in code: trimming in the pattern backtracks quadratically over wide padding.
_TABLE_CELL = re.compile(r"(?<=\|)(?P<label>[ \t]*+[^|\s][^|]*)\|(?P<value>[^|]*)(?=\|)")
_TABLE_LABEL = re.compile(r"[A-Za-z][\w.\-]{0,80}")
_TABLE_BORDER = re.compile(r"[ \t]*[|+][|+\- \t]*")


def _quoted_value_span(body: str, pos: int) -> tuple[int, int, bool] | None:
    """(start, end, closed) of the quoted string value at ``pos``; None when the value is not a string."""
    if body.startswith(("b'", 'b"'), pos):
        pos += 1  # a bytes repr in a Python dict printed to a log
    if body.startswith('\\"', pos):
        end = _ESCAPED_DQ_INNER.match(body, pos + 2).end()
        return pos + 2, end, body.startswith('\\"', end)
    quote_char = body[pos : pos + 1]
    if quote_char == '"':
        end = _DQ_INNER.match(body, pos + 1).end()
    elif quote_char == "'":
        end = _SQ_INNER.match(body, pos + 1).end()
    else:
        return None
    return pos + 1, end, end < len(body) and body[end] == quote_char


def _label_value_span(body: str, pos: int, *, whole_line: bool, shell_word: bool) -> tuple[int, int] | None:
    if pos >= len(body):
        return None
    quote_char = body[pos]
    if quote_char in "\"'":
        end = body.find(quote_char, pos + 1)
        return pos + 1, (len(body.rstrip()) if end == -1 else end)
    if whole_line:
        end = len(body.rstrip())
        return (pos, end) if end > pos else None
    scheme = _AUTH_SCHEME.match(body, pos)
    value_start = scheme.end() if scheme else pos
    if body.startswith(REDACTED, value_start):
        # Already redacted: the marker's brackets would otherwise end a bare value early.
        return pos, value_start + len(REDACTED)
    bare = (_SHELL_WORD if shell_word else _BARE_VALUE).match(body, value_start)
    if bare is None:
        return None
    return pos, bare.end()


_BARE_SECRET_KEY = re.compile(r"[A-Za-z0-9+/]{40}")


def _redact_bare_secret_key(body: str) -> str:
    """A line that is only a secret access key: ``aws configure get aws_secret_access_key`` or a
    ``--query Credentials.SecretAccessKey`` in text or JSON."""
    candidate = body.strip().strip('",')
    if len(candidate) == 40 and _BARE_SECRET_KEY.fullmatch(candidate) and _mixed_enough(candidate):
        return body.replace(candidate, REDACTED)
    return body


def redact_text(text: str) -> str:
    """Redact secrets in ``text``, which may span many lines (PEM blocks and YAML values included)."""
    if not text:
        return text
    redactor = StreamRedactor()
    return "\n".join(redactor.feed(line) for line in text.split("\n"))


# --- parsed JSON and boto3 results ------------------------------------------------------------------------


def redact_data(obj: Any) -> Any:
    """A redacted copy of parsed JSON or a boto3 result.

    Strings and bytes under secret keys are replaced; every other string is redacted as text; booleans,
    numbers and None stay (``"ManageMasterUserPassword": true`` is a setting, not a password). Containers
    are always new, so the caller's object is never shared with or changed by the copy.
    """
    return _redact_node(obj, secret=False)


def _redact_node(obj: Any, *, secret: bool) -> Any:
    if isinstance(obj, Mapping):
        return _redact_mapping(obj)
    if isinstance(obj, list | tuple):
        items = [_redact_node(item, secret=secret) for item in obj]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, str):
        return (REDACTED if obj else obj) if secret else redact_text(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        # Binary under a non-secret key is ciphertext or payload: nothing readable to redact.
        return REDACTED if secret else obj
    return obj


def _redact_mapping(mapping: Mapping[Any, Any]) -> dict[Any, Any]:
    pair_secret = any(
        isinstance(value, str)
        and (
            (_normalize(str(key)) in _PAIR_NAME_KEYS and _names_secret(value))
            or (_normalize(str(key)) == "type" and value == "SecureString")
        )
        for key, value in mapping.items()
    )
    redacted: dict[Any, Any] = {}
    for key, value in mapping.items():
        name = str(key)
        norm = _normalize(name)
        if norm == "userdata":
            redacted[key] = _redact_user_data(value)
        elif pair_secret and norm in _PAIR_VALUE_KEYS:
            redacted[key] = _redact_node(value, secret=True)
        else:
            redacted[key] = _redact_node(value, secret=is_sensitive_key(name))
    return redacted


def _redact_user_data(value: Any) -> Any:
    if isinstance(value, Mapping):
        # describe-instance-attribute wraps it: {"UserData": {"Value": "<base64>"}}
        return {
            k: (_redact_user_data(v) if _normalize(str(k)) == "value" else redact_data(v)) for k, v in value.items()
        }
    if isinstance(value, str):
        return REDACTED if _user_data_has_secret(value) else redact_text(value)
    return redact_data(value)


# --- results and events ------------------------------------------------------------------------------------


def _redact_optional(text: str | None) -> str | None:
    return None if text is None else redact_text(text)


def redact_result(result: CommandResult) -> CommandResult:
    """A redacted copy of ``result``: output, error messages (of the result and of every attempt), the
    dry-run reason and the parsed data."""
    return result.model_copy(
        update={
            "output": redact_text(result.output),
            "error_message": _redact_optional(result.error_message),
            "not_run_reason": _redact_optional(result.not_run_reason),
            "attempts": [
                attempt.model_copy(update={"error_message": _redact_optional(attempt.error_message)})
                for attempt in result.attempts
            ],
            "data": redact_data(result.data),
        }
    )


def _redact_rollback(outcome: RollbackOutcome) -> RollbackOutcome:
    return outcome.model_copy(
        update={
            "display": redact_text(outcome.display),
            "result": None if outcome.result is None else redact_result(outcome.result),
        }
    )


def _redact_outcome(outcome: CommandOutcome) -> CommandOutcome:
    return outcome.model_copy(
        update={
            "display": redact_text(outcome.display),
            "skipped_reason": _redact_optional(outcome.skipped_reason),
            "result": None if outcome.result is None else redact_result(outcome.result),
            "rollback": [_redact_rollback(step) for step in outcome.rollback],
        }
    )


def redact_plan_result(result: PlanResult) -> PlanResult:
    """A redacted copy of ``result``: every command's result and every rollback step's result."""
    return result.model_copy(update={"commands": [_redact_outcome(outcome) for outcome in result.commands]})


class RedactingSink:
    """An ``OutputSink`` that redacts each event and forwards the redacted copy to ``inner``.

    Lines are redacted with one ``StreamRedactor`` per (command, stream), so state such as an open PEM
    block never leaks between commands or between stdout and stderr. The state is dropped when a command
    starts an attempt or finishes, so a timed-out attempt cut inside a PEM block does not blank the next.
    """

    def __init__(self, inner: OutputSink) -> None:
        self._inner = inner
        self._streams: dict[tuple[str, str], StreamRedactor] = {}
        self._secret_output: set[str] = set()

    def mark_secret_output(self, command_id: str) -> None:
        """Redact every line this command prints: its output is a bare secret (``prints_bare_secret``)."""
        self._secret_output.add(command_id)
        for (cid, _stream), redactor in self._streams.items():
            if cid == command_id:
                redactor.redact_all = True

    async def emit(self, event: Event) -> None:
        await self._inner.emit(self.redact_event(event))

    def redact_event(self, event: Event) -> Event:
        if isinstance(event, OutputLine):
            return event.model_copy(update={"line": self._stream(event.command_id, event.stream).feed(event.line)})
        if isinstance(event, CommandStateChanged):
            if event.state is RunState.RUNNING or event.state.finished:
                self._forget(event.command_id, finished=event.state.finished)
            return event.model_copy(
                update={
                    "display": redact_text(event.display),
                    "reason": _redact_optional(event.reason),
                    "result": None if event.result is None else redact_result(event.result),
                }
            )
        if isinstance(event, PlanStateChanged):
            return event.model_copy(
                update={"result": None if event.result is None else redact_plan_result(event.result)}
            )
        return event.model_copy()

    def _stream(self, command_id: str, stream: str) -> StreamRedactor:
        key = (command_id, stream)
        redactor = self._streams.get(key)
        if redactor is None:
            redactor = StreamRedactor(redact_all=command_id in self._secret_output)
            self._streams[key] = redactor
        return redactor

    def _forget(self, command_id: str, *, finished: bool) -> None:
        for key in [key for key in self._streams if key[0] == command_id]:
            del self._streams[key]
        if finished:
            self._secret_output.discard(command_id)


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
    return "--with-decryption" in args and any(_normalize(name) == "value" for name in identifiers)


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
