"""Plan text from a chat message that already holds a plan: a fenced YAML/JSON plan or pasted ``aws`` lines.

This is a text transform only. Nothing here runs, resolves or judges a command: the engine parses and
validates whatever comes out, exactly as it would a plan file, before anyone is offered a button.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import yaml

from engine.errors import RefusedPlanSyntax
from engine.plan import MAX_PLAN_TEXT_BYTES, load_plan_data

SUMMARY_MAX_CHARS = 200

_FENCE = "```"
# Slack wraps mentions, channels, special mentions and auto-links in <...>; literal <, > and & arrive
# escaped, so every raw angle bracket in a Slack message is markup.
_SLACK_TOKEN = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_LEADING_MENTIONS = re.compile(r"^\s*(?:<@[A-Z0-9]+(?:\|[^<>]*)?>[\s,:]*)+")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_LANGUAGE_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_+.-]*")
_PROMPT = re.compile(r"\$[ \t]+")
# A literal space or tab after `aws`: a no-break space would pass here but then glue `aws` to the
# service name when the engine splits the line.
_AWS_LINE = re.compile(r"aws[ \t]")
_CLI_WORD = re.compile(r"[a-z0-9][a-z0-9-]*")
_COMMANDS_KEY = re.compile(r"""^\s*["']?commands["']?\s*:""", re.MULTILINE)
_COMMANDS_KEY_ANYWHERE = re.compile(r"""(?:^|[\s{,])["']?commands["']?\s*:""")

# Top-level aws CLI commands that are not botocore service names (renamed services and CLI-only groups).
_CLI_ONLY_SERVICES = frozenset({"s3api", "configservice", "deploy", "ddb", "configure", "history"})


def extract_plan_text(message: str, *, slack_markup: bool = True) -> str | None:
    """The plan a message holds, as YAML or JSON text for ``engine.plan.parse_plan``; None when it holds none.

    In order: a fenced code block whose content is a mapping with ``commands``; a whole message that is
    such a mapping with ``summary`` too; lines that are ``aws ...`` commands, turned into a sequential plan.
    ``slack_markup`` says the text is Slack message text (escaped entities, ``<...>`` markup); text from
    elsewhere, such as an LLM's answer, must not be unescaped.
    """
    # Lone surrogates (possible in JSON-decoded text) cannot be encoded or dumped; they are never part
    # of a real command.
    text = message.encode("utf-8", "replace").decode("utf-8")
    if slack_markup:
        text = slack_markup_to_text(text)
    return _fenced_plan(text) or _whole_message_plan(text) or _command_lines_plan(text)


def slack_markup_to_text(text: str) -> str:
    """Slack message text as the person typed it: leading bot mention dropped, links and entities undone."""
    text = _LEADING_MENTIONS.sub("", text, count=1)
    text = _SLACK_TOKEN.sub(_slack_token_text, text)
    # One pass, so `&amp;lt;` becomes the literal `&lt;` the person typed rather than `<`.
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)


def _slack_token_text(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    if target.startswith(("@", "#")):
        return target[0] + (label or target[1:])
    if target.startswith("!"):
        return label if label else "@" + target[1:]
    return label if label is not None else target


def _fenced_plan(text: str) -> str | None:
    for inside, part in _split_fences(text):
        if inside:
            found = _plan_mapping_text(_drop_language_tag(part), need_summary=False)
            if found is not None:
                return found
    return None


def _whole_message_plan(text: str) -> str | None:
    if _FENCE in text:
        return None
    # Without a fence only a mapping with both keys counts: a chat line such as "commands: none yet"
    # must still reach the planner rather than fail as a broken plan.
    return _plan_mapping_text(text, need_summary=True)


def _plan_mapping_text(text: str, *, need_summary: bool) -> str | None:
    if not text.strip():
        return None
    if len(text) > MAX_PLAN_TEXT_BYTES or len(text.encode("utf-8")) > MAX_PLAN_TEXT_BYTES:
        # Too large to be accepted anyway; hand it on when it plainly means to be a plan, so the engine
        # says why it is refused instead of the message being taken for chat.
        return text if _COMMANDS_KEY.search(text) else None
    try:
        # The engine's own reading (YAML, or JSON that YAML cannot read), so a probe never sees other data
        # than the engine will.
        data = load_plan_data(text)
    except RefusedPlanSyntax:
        # Aliases, a key given twice, NaN...: refused however it is read. Handed on when it means to be a
        # plan, so the engine says why.
        return text if _COMMANDS_KEY_ANYWHERE.search(text) else None
    # PyYAML's constructors raise plain ValueError/OverflowError on scalars such as `2024-02-30`, and
    # deep nesting raises RecursionError; none of that may escape from a probe of chat text.
    except Exception:
        return None
    if isinstance(data, dict) and _is_plan_mapping(data, need_summary=need_summary):
        return text
    return None


def _is_plan_mapping(data: dict[Any, Any], *, need_summary: bool) -> bool:
    return "commands" in data and (not need_summary or "summary" in data)


def _command_lines_plan(text: str) -> str | None:
    commands: list[str] = []
    prose: list[str] = []
    for inside, part in _split_fences(text):
        body = _drop_language_tag(part) if inside else part
        for line in _join_continuations(body.splitlines()):
            command = _command_from_line(line, formatted=inside)
            if command is not None:
                commands.append(command)
            elif not inside and line.strip():
                prose.append(line.strip())
    if not commands:
        return None
    plan = {
        "summary": _summary(prose, len(commands)),
        "mode": "sequential",
        "commands": [{"id": f"step-{n}", "cli": cli} for n, cli in enumerate(commands, start=1)],
    }
    # Dumped rather than formatted by hand, so no quoting in a command can change the plan's shape.
    return yaml.safe_dump(plan, sort_keys=False, allow_unicode=True, width=1 << 16)


def _split_fences(text: str) -> list[tuple[bool, str]]:
    """Parts of the text with whether each sits inside a ``` fence; an unclosed fence runs to the end."""
    return [(index % 2 == 1, part) for index, part in enumerate(text.split(_FENCE))]


def _drop_language_tag(block: str) -> str:
    first, newline, rest = block.partition("\n")
    if newline and (not first.strip() or _LANGUAGE_TAG.fullmatch(first.strip())):
        return rest
    return block


def _join_continuations(lines: list[str]) -> list[str]:
    joined: list[str] = []
    pending: str | None = None
    for raw in lines:
        line = raw if pending is None else f"{pending} {raw.lstrip()}"
        pending = None
        stripped = line.rstrip()
        trailing = len(stripped) - len(stripped.rstrip("\\"))
        # An even run of backslashes is escaped backslashes, not a continuation.
        if trailing % 2 == 1:
            pending = stripped[:-1].rstrip()
            continue
        joined.append(line)
    if pending is not None:
        joined.append(pending)
    return joined


def _command_from_line(line: str, *, formatted: bool) -> str | None:
    candidate = _unwrap_inline_code(line.strip())
    prompt = _PROMPT.match(candidate)
    if prompt is not None:
        candidate = _unwrap_inline_code(candidate[prompt.end() :])
    # Code formatting or a prompt says the person meant a command.
    formatted = formatted or candidate != line.strip()
    if not _AWS_LINE.match(candidate):
        return None
    candidate = _strip_shell_comment(candidate).strip()
    # A bare prose line such as "aws console is slow" must not become a plan: without formatting the
    # service word has to be a real one.
    if not formatted and not _names_a_service(candidate):
        return None
    return candidate


def _unwrap_inline_code(text: str) -> str:
    # Only a pair around the whole line: JMESPath literals inside a command use backticks too.
    if len(text) >= 2 and text.startswith("`") and text.endswith("`"):
        return text[1:-1].strip()
    return text


def _strip_shell_comment(line: str) -> str:
    """The line without a trailing ``# ...`` comment, as a shell would read it; quotes are respected."""
    quote: str | None = None
    escaped = False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif quote == "'":
            if char == "'":
                quote = None
        elif char == "\\":
            escaped = True
        elif quote == '"':
            if char == '"':
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and index > 0 and line[index - 1] in " \t":
            return line[:index].rstrip()
    return line


def _names_a_service(command: str) -> bool:
    words = command.split()
    return len(words) >= 3 and words[1] in _service_names() and _CLI_WORD.fullmatch(words[2]) is not None


@lru_cache(maxsize=1)
def _service_names() -> frozenset[str]:
    # botocore only lists its data directories here; no client is built and nothing is called.
    import botocore.session

    return frozenset(botocore.session.get_session().get_available_services()) | _CLI_ONLY_SERVICES


def _summary(prose: list[str], command_count: int) -> str:
    for line in prose:
        summary = line.rstrip(":").strip()
        if summary:
            if len(summary) > SUMMARY_MAX_CHARS:
                summary = summary[: SUMMARY_MAX_CHARS - 1].rstrip() + "…"
            return summary
    return f"Run {command_count} aws command{'s' if command_count != 1 else ''}"
