"""Where values start and end: quoted strings (escaped at any depth), label values, CSV fields, table cells."""

from __future__ import annotations

import re
from functools import lru_cache

from engine.redaction.shapes import AUTH_SCHEME, REDACTED, mixed_enough

DQ_INNER = re.compile(r'(?:[^"\\]|\\.)*')
_SQ_INNER = re.compile(r"(?:[^'\\]|\\.)*")
_BARE_VALUE = re.compile(r"""[^\s,;&"'<>)\]}\\]+""")
_SHELL_WORD = re.compile(r"\S+")

# Whole cells, trimmed in code: trimming in the pattern backtracks quadratically over wide padding.
TABLE_CELL = re.compile(r"(?<=\|)(?P<label>[ \t]*+[^|\s][^|]*)\|(?P<value>[^|]*)(?=\|)")
TABLE_LABEL = re.compile(r"[A-Za-z][\w.\-]{0,80}")
TABLE_BORDER = re.compile(r"[ \t]*[|+][|+\- \t]*")


def quoted_value_span(body: str, pos: int) -> tuple[int, int, bool] | None:
    """(start, end, closed) of the quoted string value at ``pos``; None when the value is not a string."""
    if body.startswith(("b'", 'b"'), pos):
        pos += 1  # a bytes repr in a Python dict printed to a log
    escaped = _ESCAPED_QUOTE.match(body, pos)
    if escaped is not None:
        # JSON inside a JSON string, once or more: the value ends at the same escaped quote, not one
        # escaped deeper.
        quote = escaped.group()
        closing = _escaped_closing(quote).search(body, escaped.end())
        if closing is None:
            return escaped.end(), len(body), False
        return escaped.end(), closing.start(), True
    quote_char = body[pos : pos + 1]
    if quote_char == '"':
        end = DQ_INNER.match(body, pos + 1).end()
    elif quote_char == "'":
        end = _SQ_INNER.match(body, pos + 1).end()
    else:
        return None
    return pos + 1, end, end < len(body) and body[end] == quote_char


_ESCAPED_QUOTE = re.compile(r"""\\+["']""")


@lru_cache(maxsize=16)
def _escaped_closing(quote: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\\)" + re.escape(quote))


def csv_field_spans(body: str, delimiter: str) -> list[tuple[int, int]]:
    """(start, end) of each field of one CSV row, quotes included, in ``body``."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while True:
        if body.startswith('"', pos):
            end = pos + 1
            while True:
                end = body.find('"', end)
                if end == -1:
                    end = len(body)
                    break
                if body.startswith('""', end):
                    end += 2
                    continue
                end += 1
                break
            stop = body.find(delimiter, end)
        else:
            stop = body.find(delimiter, pos)
        field_end = len(body) if stop == -1 else stop
        spans.append((pos, field_end))
        if stop == -1:
            return spans
        pos = stop + len(delimiter)


def label_value_span(body: str, pos: int, *, whole_line: bool, shell_word: bool) -> tuple[int, int] | None:
    if pos >= len(body):
        return None
    quote_char = body[pos]
    if quote_char in "\"'":
        end = body.find(quote_char, pos + 1)
        return pos + 1, (len(body.rstrip()) if end == -1 else end)
    if whole_line:
        end = len(body.rstrip())
        return (pos, end) if end > pos else None
    if body.startswith('\\"', pos):
        # A quoted value inside a JSON string: db_password = \"...\"
        end = body.find('\\"', pos + 2)
        return pos + 2, (len(body) if end == -1 else end)
    scheme = AUTH_SCHEME.match(body, pos)
    value_start = scheme.end() if scheme else pos
    if body.startswith(REDACTED, value_start):
        # Already redacted: the marker's brackets would otherwise end a bare value early.
        return pos, value_start + len(REDACTED)
    bare = (_SHELL_WORD if shell_word else _BARE_VALUE).match(body, value_start)
    if bare is None:
        return None
    return pos, bare.end()


_BARE_SECRET_KEY = re.compile(r"[A-Za-z0-9+/]{40}")


def redact_bare_secret_key(body: str) -> str:
    """A line that is only a secret access key: ``aws configure get aws_secret_access_key`` or a
    ``--query Credentials.SecretAccessKey`` in text or JSON."""
    candidate = body.strip().strip('",')
    if len(candidate) == 40 and _BARE_SECRET_KEY.fullmatch(candidate) and mixed_enough(candidate):
        return body.replace(candidate, REDACTED)
    return body
