"""The line-by-line redactor: key and label rules, state that spans lines, and the shape rules after them."""

from __future__ import annotations

import csv
import json
import re

from engine.redaction.detector import prepare, redact_detected
from engine.redaction.gate import add_triggers, triggers_in
from engine.redaction.keys import (
    PAIR_NAME_KEYS,
    PAIR_VALUE_KEYS,
    is_enum_value,
    is_sensitive_key,
    names_secret,
    normalize,
)
from engine.redaction.registry import registered_secrets
from engine.redaction.shapes import (
    PEM_BEGIN,
    PEM_END,
    PUTTY_BEGIN,
    PUTTY_END,
    REDACTED,
    decode_base64,
    mask,
    redact_base64_secrets,
    redact_shapes,
)
from engine.redaction.spans import (
    DQ_INNER,
    TABLE_BORDER,
    TABLE_CELL,
    TABLE_LABEL,
    csv_field_spans,
    label_value_span,
    quoted_value_span,
    redact_bare_secret_key,
)

# A quoted key and its colon: JSON ("k": ), Python reprs ('k': ) and JSON escaped inside a string, once
# (\"k\": ) or more (\\\"k\\\": ).
_QUOTED_KEY = re.compile(r"""(?P<q>\\*["'])(?P<key>[^"'\\\r\n]{1,128})(?P=q)[ \t]*:[ \t]*""")
_ONLY_BLANKS = re.compile(r"[ \t]*")

# ``label: value`` / ``label=value`` (env files, YAML, INI, headers, query strings, connection strings) and
# ``--flag value``. Labels glued to a preceding ``:`` or ``/`` are parts of ARNs and paths
# (``arn:aws:secretsmanager:...:secret:prod/db``), not labels; ``_auth``/``_password`` after ``:`` are
# npm's per-registry settings (``//registry.example/:_password=``).
_LABEL = re.compile(
    r"(?<![\w-])(?P<flag>--[A-Za-z][\w-]{0,80})(?:=|[ \t]++)(?![-\s])"
    r"|(?:(?<=\\n)|(?<![\w.\-:/$@])|(?<=:)(?=_))(?:\$env:)?"
    r"(?P<label>[A-Za-z_][\w.\-]{0,80})[ \t]*(?P<sep>=(?!=)|:(?![:/=]))[ \t]*"
)
_LINE_PREFIX = re.compile(r"[ \t]*(?:(?:export|set|setx|local|readonly|declare(?:[ \t]+-\w+)?)[ \t]+|-[ \t]+|#[ \t]*)?")
_BLOCK_SCALAR = frozenset({"|", ">", "|-", ">-", "|+", ">+"})
_LITERALS = frozenset({"true", "false", "null", "none", "~", "yes", "no"})
_QUERY_SIGNATURE_KEYS = frozenset({"signature", "sig", "code"})
# Matched from the first non-blank character: a leading blank run here would backtrack quadratically.
_NESTED_ENTRY = re.compile(r"""[{\[]|(?:-[ \t]++)?["']?[\w.\-/ ]{1,128}["']?[ \t]*:(?:[ \t]|$)""")

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
    "code=",
    "psk",
    "securestring",
    "userdata",
)
add_triggers(_KEY_TRIGGERS)

# A header row of comma, semicolon or tab separated names, one of which names a secret column.
_CSV_DELIMITERS = (",", ";", "\t")
_CSV_NAME = re.compile(r"[A-Za-z_][\w .-]{0,60}")
_LAST_WORD = re.compile(r"[^\s'\"|:]*$")
# A JSON string literal holding line breaks: text from a file or a log, redacted line by line.
_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*\\n(?:[^"\\]|\\.)*)"')


def user_data_has_secret(value: str) -> bool:
    """EC2 user data is base64: its secrets (passwords in bootstrap scripts) only show once decoded."""
    decoded = decode_base64(value.strip())
    return decoded is not None and redact_text(decoded) != decoded


def _redact_escaped_lines(body: str) -> str:
    """JSON string values that hold several lines (a file, a manifest, a CSV table) are redacted as the
    lines they are, so that state spanning lines (a CSV header, a ``.netrc`` entry) applies inside them."""

    def replace(match: re.Match[str]) -> str:
        try:
            inner = json.loads(match.group())
        except ValueError:
            return match.group()
        redacted = redact_text(inner)
        return match.group() if redacted == inner else json.dumps(redacted, ensure_ascii=False)

    return _JSON_STRING.sub(replace, body)


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

    State kept between lines: inside a private key block (PEM, SSH2 or PuTTY); inside a sensitive quoted
    value that did not close on its line; inside the continuation of a sensitive YAML/INI value (a block
    scalar, a folded plain scalar, or a value on the line after its key); a pending name/value pair (an entry
    named ``DB_PASSWORD`` or typed ``SecureString`` whose ``value`` comes later in the same object); and the
    secret columns of a CSV or TSV table whose header named them.

    With ``redact_all`` every non-blank line is redacted: for commands whose whole output is a bare
    secret (see ``prints_bare_secret``).
    """

    __slots__ = (
        "_continuation_indent",
        "_continuation_open",
        "_csv",
        "_in_pem",
        "_in_putty",
        "_in_string",
        "_pair",
        "redact_all",
    )

    def __init__(self, *, redact_all: bool = False) -> None:
        self.redact_all = redact_all
        self._in_pem = False
        self._in_putty = False
        self._in_string = False
        self._csv: tuple[str, int, frozenset[int]] | None = None
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
        if self._in_putty:
            end = PUTTY_END.search(body)
            if end is None:
                return body[: _indent_of(body)] + REDACTED
            self._in_putty = False
            prefix, body = REDACTED, body[end.end() :]
        elif self._in_pem:
            end = PEM_END.search(body)
            if end is None:
                return body[: _indent_of(body)] + REDACTED
            self._in_pem = False
            prefix, body = REDACTED, body[end.end() :]
        elif self._in_string:
            inner_end = DQ_INNER.match(body).end()
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
        for secret in registered_secrets():
            if secret in body:
                body = body.replace(secret, REDACTED)
        low = body.lower()
        if "private key" in low or "putty-user-key-file" in low:
            body, unterminated = self._redact_key_blocks(body)
            if unterminated:
                return body
            low = body.lower()
        prepare()  # the detector's triggers join the gate on first use
        found = triggers_in(low)
        if self._csv is not None:
            body = self._redact_csv_row(body)
        if self._pair is not None or not found.isdisjoint(_KEY_TRIGGERS):
            if self._csv is None:
                self._read_csv_header(body)
            body = self._redact_quoted_keys(body)
            body = self._redact_labels(body)
            if "|" in body:
                body = self._redact_table_cells(body)
        if "\\n" in body:
            body = _redact_escaped_lines(body)
        body = redact_base64_secrets(body)
        # A redaction only removes text, so the triggers found before it still cover what is left.
        body = redact_shapes(body, found)
        body = redact_detected(body, found)
        return redact_bare_secret_key(body)

    def _read_csv_header(self, body: str) -> None:
        """A header row naming a secret column starts a table whose rows have that column redacted.

        The header may follow other text on its line (a log prefix, the columns of the aws CLI's text
        output): the table's names are the last run of fields that are all names."""
        for delimiter in _CSV_DELIMITERS:
            if delimiter not in body:
                continue
            fields = [field.strip(" \t\"'") for field in next(csv.reader([body], delimiter=delimiter))]
            fields[0] = _LAST_WORD.search(fields[0]).group()
            first = len(fields)
            while first > 0 and _CSV_NAME.fullmatch(fields[first - 1]):
                first -= 1
            names = fields[first:]
            secret = frozenset(i for i, name in enumerate(names) if is_sensitive_key(name))
            if len(names) >= 2 and secret:
                self._csv = (delimiter, len(names), secret)
                return

    def _redact_csv_row(self, body: str) -> str:
        assert self._csv is not None
        delimiter, width, secret = self._csv
        spans = csv_field_spans(body, delimiter)
        if len(spans) < width:
            # Not a row of the table any more.
            self._csv = None
            return body
        for index in sorted(secret, reverse=True):
            start, end = spans[index]
            if end > start:
                body = body[:start] + REDACTED + body[end:]
        return body

    def _redact_key_blocks(self, body: str) -> tuple[str, bool]:
        """Replace private key blocks (PEM, SSH2, PuTTY); an unterminated one redacts the rest of the stream
        until its end marker."""
        for begin_marker, end_marker in ((PEM_BEGIN, PEM_END), (PUTTY_BEGIN, PUTTY_END)):
            while (begin := begin_marker.search(body)) is not None:
                end = end_marker.search(body, begin.end())
                if end is None:
                    if begin_marker is PEM_BEGIN:
                        self._in_pem = True
                    else:
                        self._in_putty = True
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
            norm = normalize(key)
            action: str | None = None
            if is_sensitive_key(key):
                action = "secret"
            elif norm in PAIR_VALUE_KEYS and self._pair is not None:
                action, self._pair = self._pair, None
            elif norm == "userdata":
                action = "userdata"
            span = quoted_value_span(body, match.end())
            if span is None:
                if action == "secret" and _ONLY_BLANKS.fullmatch(body, match.end()):
                    self._open_continuation(_indent_of(body), value_follows=True)
                elif action == "userdata" and body.startswith("{", match.end()):
                    self._pair = "userdata"
                continue
            start, end, closed = span
            value = body[start:end]
            if action is None:
                if (norm in PAIR_NAME_KEYS and names_secret(value)) or (norm == "type" and value == "SecureString"):
                    self._pair = "secret"
                continue
            if action == "userdata" and not user_data_has_secret(value):
                continue
            if action == "secret" and is_enum_value(key, value):
                continue
            if not closed:
                # Only a plain JSON string can go on to the next line; an escaped one ends with the line.
                self._in_string = body[start - 2 : start - 1] != "\\"
                pieces.append(body[cursor:start] + REDACTED)
                cursor = len(body)
                break
            masked = mask(value)
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
            norm = normalize(label)
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
            span = label_value_span(body, match.end(), whole_line=whole_line, shell_word=shell_word)
            if span is None:
                if sensitive and whole_line:
                    self._open_continuation(column, value_follows=True)
                continue
            start, end = span
            value = body[start:end]
            if (
                not self._value_is_secret(norm, value, sensitive=sensitive)
                or value.lower() in _LITERALS
                or is_enum_value(label, value)
            ):
                continue
            if whole_line:
                # What follows, indented deeper, belongs to this value (YAML block or folded scalar, INI
                # continuation lines).
                self._open_continuation(column, value_follows=False)
                if value in _BLOCK_SCALAR:
                    continue
            masked = mask(value)
            if masked != value:
                pieces.append(body[cursor:start] + masked)
                cursor = end
        if not pieces:
            return body
        pieces.append(body[cursor:])
        return "".join(pieces)

    def _redact_table_cells(self, body: str) -> str:
        """``--output table`` rows: ``|  SecretString |  value  |``."""
        if TABLE_BORDER.fullmatch(body):
            # A border closes the sub-table, and with it any pending name/value pair.
            self._pair = None
            return body

        def replace(match: re.Match[str]) -> str:
            label, cell = match["label"].strip(), match["value"]
            value = cell.strip()
            if (
                not value
                or not TABLE_LABEL.fullmatch(label)
                or not self._value_is_secret(normalize(label), value, sensitive=is_sensitive_key(label))
                or is_enum_value(label, value)
            ):
                return match.group()
            # Padded to the cell's width so the table's columns stay aligned.
            return match["label"] + "|" + cell.replace(value, REDACTED.ljust(len(value)), 1)

        return TABLE_CELL.sub(replace, body)

    def _value_is_secret(self, norm: str, value: str, *, sensitive: bool) -> bool:
        """Whether the value under a label is secret; tracks name/value pairs on the way."""
        if sensitive:
            return True
        if norm in PAIR_VALUE_KEYS and self._pair == "secret":
            self._pair = None
            return True
        if (norm in PAIR_NAME_KEYS and names_secret(value)) or (norm == "type" and value == "SecureString"):
            self._pair = "secret"
        return False


def redact_text(text: str) -> str:
    """Redact secrets in ``text``, which may span many lines (PEM blocks and YAML values included)."""
    if not text:
        return text
    redactor = StreamRedactor()
    return "\n".join(redactor.feed(line) for line in text.split("\n"))
