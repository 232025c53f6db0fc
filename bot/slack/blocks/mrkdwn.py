"""Text for Slack's mrkdwn: escaping, code, visible trimming, dates, people and risk badges.

Everything a plan or a person supplies (summaries, commands, descriptions, reasons, error messages) reaches
Slack through these helpers. ``&``, ``<`` and ``>`` are always escaped, because Slack reads ``<...>`` as
markup everywhere, code blocks included: unescaped, a plan could ping ``<!channel>`` or forge a link.

Lengths are counted in UTF-16 code units, which is never less than Python's count of code points, so text
sized here fits Slack's limits whichever way Slack counts.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from engine.history.records import CommandStatus, RecordStatus
from engine.risk import Risk

ELLIPSIS = "…"
# Breaks a run of three backticks, which would otherwise open or end a code block (and let the rest of the
# text be read as markup); it is invisible, and the exact text is always one click away in Edit.
_ZERO_WIDTH_SPACE = "\u200b"
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_BACKTICK_LOOKALIKE = "\u02cb"  # MODIFIER LETTER GRAVE ACCENT
_FENCE_RUN = re.compile(r"`(?=``)")
_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")

RISK_EMOJI = {
    Risk.READ_ONLY: ":large_green_circle:",
    Risk.MODIFY: ":large_yellow_circle:",
    Risk.DESTRUCTIVE: ":red_circle:",
}

COMMAND_STATUS_BADGE = {
    CommandStatus.PENDING: ":white_circle: pending",
    CommandStatus.RUNNING: ":arrows_counterclockwise: running",
    CommandStatus.SUCCEEDED: ":white_check_mark: succeeded",
    CommandStatus.FAILED: ":x: failed",
    CommandStatus.SKIPPED: ":fast_forward: skipped",
    CommandStatus.CANCELLED: ":octagonal_sign: cancelled",
    CommandStatus.ROLLED_BACK: ":leftwards_arrow_with_hook: rolled back",
    CommandStatus.INTERRUPTED: ":warning: interrupted",
}

RECORD_STATUS_BADGE = {
    RecordStatus.PENDING_APPROVAL: ":hourglass_flowing_sand: awaiting approval",
    RecordStatus.APPROVED: ":white_check_mark: approved",
    RecordStatus.RUNNING: ":arrows_counterclockwise: running",
    RecordStatus.SUCCEEDED: ":white_check_mark: succeeded",
    RecordStatus.FAILED: ":x: failed",
    RecordStatus.ROLLED_BACK: ":leftwards_arrow_with_hook: rolled back",
    RecordStatus.REJECTED: ":no_entry: rejected",
    RecordStatus.EXPIRED: ":hourglass: expired",
    RecordStatus.CANCELLED: ":octagonal_sign: cancelled",
    RecordStatus.INTERRUPTED: ":warning: interrupted",
}


def slack_len(text: str) -> int:
    """Length as Slack's limits count it, at its most demanding (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    """``text`` with Slack's three control characters escaped, so it shows as typed and never as markup."""
    return "".join(_ESCAPES.get(char, char) for char in text)


def defuse_fences(text: str) -> str:
    """``text`` with every run of three backticks broken, so it can neither open nor close a code block."""
    return _FENCE_RUN.sub("`" + _ZERO_WIDTH_SPACE, text)


def risk_badge(risk: Risk) -> str:
    """Emoji and word, so the level reads without colour: ``:red_circle: destructive``."""
    return f"{RISK_EMOJI[risk]} {risk.label}"


def _pieces(raw: str) -> list[str]:
    # One piece per character of ``raw``, so a cut can say exactly how many characters it left out.
    pieces = []
    for index, char in enumerate(raw):
        piece = _ESCAPES.get(char, char)
        if char == "`" and raw[index + 1 : index + 3] == "``":
            piece = "`" + _ZERO_WIDTH_SPACE
        pieces.append(piece)
    return pieces


def _prefix(pieces: list[str], budget: int) -> tuple[str, int]:
    """The longest run of pieces within ``budget``, and how many were left out."""
    used = 0
    for index, piece in enumerate(pieces):
        cost = slack_len(piece)
        if used + cost > budget:
            return "".join(pieces[:index]), len(pieces) - index
        used += cost
    return "".join(pieces), 0


def cut_marker(omitted: int, where: str | None = "Edit") -> str:
    """The note that ends cut text; ``where`` names the place the whole text can be read, when there is one."""
    return f"{ELLIPSIS} ({omitted:,} more characters" + (f" — full text in {where})" if where else ")")


def fit(raw: str, budget: int, where: str | None = "Edit") -> str:
    """``raw`` escaped, cut visibly to ``budget`` when it is longer (the cut says how much is missing)."""
    pieces = _pieces(raw)
    whole = "".join(pieces)
    if slack_len(whole) <= budget:
        return whole
    reserve = slack_len(" _" + cut_marker(len(raw), where) + "_")
    kept, omitted = _prefix(pieces, max(budget - reserve, 0))
    return f"{kept} _{cut_marker(omitted, where)}_"


def code_block(raw: str, budget: int, where: str | None = "Edit") -> str:
    """``raw`` as a code block within ``budget``; when it is cut, the note follows the block."""
    opening, closing = "```\n", "\n```"
    pieces = _pieces(raw)
    whole = opening + "".join(pieces) + closing
    if slack_len(whole) <= budget:
        return whole
    reserve = slack_len(opening + closing + "\n_" + cut_marker(len(raw), where) + "_")
    kept, omitted = _prefix(pieces, max(budget - reserve, 0))
    return f"{opening}{kept}{closing}\n_{cut_marker(omitted, where)}_"


def split_code(raw: str, budget: int) -> list[str]:
    """``raw`` as consecutive code blocks of at most ``budget`` characters each, split at line ends if possible."""
    opening, closing = "```\n", "\n```"
    room = budget - slack_len(opening + closing)
    if room < 1:
        raise ValueError("a code block needs room for at least one character")
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    last_break = -1
    for piece, char in zip(_pieces(raw), raw, strict=True):
        cost = slack_len(piece)
        if used + cost > room and current:
            cut = last_break + 1 if last_break >= 0 else len(current)
            chunks.append("".join(current[:cut]))
            current = current[cut:]
            used = sum(slack_len(p) for p in current)
            last_break = -1
        current.append(piece)
        used += cost
        if char == "\n":
            last_break = len(current) - 1
    if current:
        chunks.append("".join(current))
    return [f"{opening}{chunk.rstrip(chr(10)) or ' '}{closing}" for chunk in chunks]


def code_span(raw: str, max_chars: int = 200) -> str:
    """``raw`` as inline code. A backtick cannot appear inside one, so it is shown as a look-alike."""
    text = trim_plain(raw.replace("`", _BACKTICK_LOOKALIKE), max_chars)
    return f"`{escape(text)}`"


def trim_plain(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` with an ellipsis, for plain_text fields where a long note cannot fit."""
    if slack_len(text) <= limit:
        return text
    kept, _ = _prefix(list(text), max(limit - 1, 0))
    return kept.rstrip() + ELLIPSIS


def person(user: str) -> str:
    """A Slack user as a mention; anyone else (a CLI user name) as inline code, never as markup."""
    if _SLACK_USER_ID.fullmatch(user):
        return f"<@{user}>"
    return code_span(user, 80)


def people(users: list[str], *, limit: int = 20) -> str:
    shown = ", ".join(person(user) for user in users[:limit])
    rest = len(users) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown


def slack_date(when: datetime) -> str:
    """A time every reader sees in their own time zone, with a UTC fallback for clients that cannot."""
    if when.tzinfo is None:
        raise ValueError("a time shown in Slack must carry a time zone")
    fallback = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def id_list(ids: list[str], *, limit: int = 10) -> str:
    """Command ids as inline code, the tail counted rather than listed."""
    shown = ", ".join(code_span(item, 64) for item in ids[:limit])
    rest = len(ids) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown
