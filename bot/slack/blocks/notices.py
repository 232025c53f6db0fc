"""Short replies: ephemeral explanations for one person, and the reply that says why a plan cannot run."""

from __future__ import annotations

import re

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.slack.blocks.actions import ActionRef
from bot.slack.blocks.limits import CONTEXT_TEXT_MAX, FALLBACK_TEXT_MAX, MESSAGE_MAX_BLOCKS, SECTION_TEXT_MAX
from bot.slack.blocks.message import RenderedMessage, validated_message
from bot.slack.blocks.mrkdwn import ELLIPSIS, defuse_fences, escape, fit, slack_len, trim_plain

# Engine problems quote commands, ids and options between backticks; those stay inline code.
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_PROBLEM_MAX = 1_000
_ERROR_REPLY_MAX_BLOCKS = 20


def ephemeral(text: str, *, context: str | None = None) -> RenderedMessage:
    """An explanation shown to one person (``chat.postEphemeral``).

    ``text`` is mrkdwn the app writes, so it may mention people (``<@U…>``); anything a plan or a person
    supplied must be passed through ``escape`` (or ``code_span``) first. Over-long text is cut visibly.
    """
    if not text.strip():
        raise ValueError("an ephemeral message needs text")
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=_cut(text, SECTION_TEXT_MAX), verbatim=True))]
    if context:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_cut(context, CONTEXT_TEXT_MAX), verbatim=True)]))
    return validated_message(_cut(text, FALLBACK_TEXT_MAX), blocks)


def stale_click_notice(clicked: ActionRef, current_version: int) -> RenderedMessage:
    """The answer to a click on a card that has since been edited: the click was not counted."""
    return ephemeral(
        f":warning: This plan was edited: version {current_version} is current; "
        f"your click on version {clicked.plan_version} was not counted.",
        context="Read the updated plan in the thread and decide on the current version.",
    )


def plan_error_message(problems: list[str]) -> RenderedMessage:
    """The threaded reply for a plan that cannot run: every problem as a bullet, within Slack's limits."""
    bullets = [line for problem in problems for line in _problem_lines(problem)]
    if not bullets:
        raise ValueError("an error reply needs at least one problem")
    count = len(bullets)
    heading = f":x: *This plan cannot run.* {count} problem{'s' if count != 1 else ''}:"
    sections: list[str] = [heading]
    shown = 0
    # One section is kept back for the count of problems not shown.
    for bullet in bullets:
        if slack_len(sections[-1]) + 1 + slack_len(bullet) <= SECTION_TEXT_MAX:
            sections[-1] += "\n" + bullet
        elif len(sections) < _ERROR_REPLY_MAX_BLOCKS - 1:
            sections.append(bullet)
        else:
            break
        shown += 1
    if shown < count:
        sections.append(
            f"{ELLIPSIS} and *{count - shown} more problem{'s' if count - shown != 1 else ''} not shown*. "
            "Run `cloudops validate` on the plan to see them all."
        )
    first = trim_plain(bullets[0].removeprefix("• "), 500)
    text = f"This plan cannot run: {count} problem{'s' if count != 1 else ''}. First: {first}"
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=s, verbatim=True)) for s in sections]
    return validated_message(_cut(text, FALLBACK_TEXT_MAX), blocks, max_blocks=MESSAGE_MAX_BLOCKS)


def _problem_lines(problem: str) -> list[str]:
    # A parse error names one problem per line; each is its own bullet.
    return [_bullet(line.strip()) for line in problem.splitlines() if line.strip()]


def _bullet(problem: str) -> str:
    """A problem as mrkdwn: escaped, its quoted parts as inline code, cut visibly when very long."""
    parts: list[str] = []
    position = 0
    for match in _CODE_SPAN.finditer(problem):
        parts.append(escape(problem[position : match.start()]))
        parts.append(f"`{escape(match.group(1))}`")
        position = match.end()
    parts.append(escape(problem[position:]))
    text = defuse_fences("".join(parts))
    if slack_len(text) > _PROBLEM_MAX:
        # Cutting through a code span would leave a dangling backtick, so a cut problem is shown without them.
        text = fit(problem, _PROBLEM_MAX, None)
    return f"• {text}"


def _cut(text: str, limit: int) -> str:
    return text if slack_len(text) <= limit else trim_plain(text, limit)
