"""A rendered message: Block Kit blocks plus the fallback text Slack shows in notifications and screen readers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from bot.slack.blocks.limits import FALLBACK_TEXT_MAX, MESSAGE_MAX_BLOCKS
from bot.slack.blocks.mrkdwn import slack_len


@dataclass(frozen=True)
class RenderedMessage:
    """What ``chat.postMessage`` / ``chat.update`` / ``chat.postEphemeral`` take: ``text`` and ``blocks``."""

    text: str
    blocks: tuple[Block, ...]

    def block_dicts(self) -> list[dict[str, Any]]:
        return [block.to_dict() for block in self.blocks]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.block_dicts()}


def validated_message(text: str, blocks: Sequence[Block], *, max_blocks: int = MESSAGE_MAX_BLOCKS) -> RenderedMessage:
    """A ``RenderedMessage`` after the checks Slack would make; raises ``SlackObjectFormationError``."""
    if not text.strip():
        raise SlackObjectFormationError("a message needs fallback text for notifications and screen readers")
    if slack_len(text) > FALLBACK_TEXT_MAX:
        raise SlackObjectFormationError(f"fallback text is longer than {FALLBACK_TEXT_MAX} characters")
    if not blocks or len(blocks) > max_blocks:
        raise SlackObjectFormationError(f"a message holds 1 to {max_blocks} blocks, not {len(blocks)}")
    for block in blocks:
        block.validate_json()
        # to_dict validates every nested element and text object, which validate_json alone does not.
        block.to_dict()
    return RenderedMessage(text=text, blocks=tuple(blocks))
