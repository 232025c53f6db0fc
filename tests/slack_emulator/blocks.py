"""Block Kit validation as Slack applies it to messages and views.

The limits Slack documents are checked explicitly so the error points at the offending field the way
Slack's `response_metadata.messages` do; everything else is left to `slack_sdk.models`, whose block and
view classes carry the rest of Slack's rules.
"""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MESSAGE_MAX_BLOCKS = 50
SURFACE_MAX_BLOCKS = 100
MESSAGE_TEXT_MAX = 40_000
SECTION_TEXT_MAX = 3_000
SECTION_FIELDS_MAX = 10
SECTION_FIELD_TEXT_MAX = 2_000
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2_000
BUTTON_URL_MAX = 3_000
IDENTIFIER_MAX = 255
MODAL_TITLE_MAX = 24
VIEW_MAX_BYTES = 250_000

_TEXT_OBJECT_TYPES = {"plain_text", "mrkdwn"}


def _error(detail: str, pointer: str) -> str:
    return f"[ERROR] {detail} [json-pointer:{pointer}]"


def _too_long(limit: int, pointer: str) -> str:
    return _error(f"must be less than {limit + 1} characters", pointer)


def _text_object_errors(value: Any, pointer: str, *, limit: int, plain_only: bool = False) -> list[str]:
    if not isinstance(value, dict) or value.get("type") not in _TEXT_OBJECT_TYPES:
        return [_error("must provide an object with a type of plain_text or mrkdwn", pointer)]
    if plain_only and value["type"] != "plain_text":
        return [_error("must be a plain_text text object", pointer)]
    text = value.get("text")
    if not isinstance(text, str) or not text:
        return [_error("must be a non-empty string", f"{pointer}/text")]
    if len(text) > limit:
        return [_too_long(limit, f"{pointer}/text")]
    return []


def _element_errors(node: Any, pointer: str) -> list[str]:
    """Limits on interactive elements wherever they sit: accessories, actions, inputs, context."""
    errors: list[str] = []
    if isinstance(node, list):
        for index, item in enumerate(node):
            errors += _element_errors(item, f"{pointer}/{index}")
        return errors
    if not isinstance(node, dict):
        return errors
    action_id = node.get("action_id")
    if isinstance(action_id, str) and len(action_id) > IDENTIFIER_MAX:
        errors.append(_too_long(IDENTIFIER_MAX, f"{pointer}/action_id"))
    if node.get("type") == "button":
        errors += _text_object_errors(node.get("text"), f"{pointer}/text", limit=BUTTON_TEXT_MAX, plain_only=True)
        value = node.get("value")
        if isinstance(value, str) and len(value) > BUTTON_VALUE_MAX:
            errors.append(_too_long(BUTTON_VALUE_MAX, f"{pointer}/value"))
        url = node.get("url")
        if isinstance(url, str) and len(url) > BUTTON_URL_MAX:
            errors.append(_too_long(BUTTON_URL_MAX, f"{pointer}/url"))
    for key, child in node.items():
        if key != "text" and isinstance(child, dict | list):
            errors += _element_errors(child, f"{pointer}/{key}")
    return errors


def _documented_limit_errors(block: dict[str, Any], pointer: str) -> list[str]:
    errors: list[str] = []
    block_id = block.get("block_id")
    if block_id is not None and (not isinstance(block_id, str) or len(block_id) > IDENTIFIER_MAX):
        errors.append(_too_long(IDENTIFIER_MAX, f"{pointer}/block_id"))
    kind = block.get("type")
    if kind == "section":
        if "text" not in block and "fields" not in block:
            errors.append(_error("must provide either text or fields", pointer))
        if "text" in block:
            errors += _text_object_errors(block["text"], f"{pointer}/text", limit=SECTION_TEXT_MAX)
        fields = block.get("fields")
        if fields is not None:
            if not isinstance(fields, list) or len(fields) > SECTION_FIELDS_MAX:
                errors.append(_error(f"must provide no more than {SECTION_FIELDS_MAX} items", f"{pointer}/fields"))
            else:
                for index, field in enumerate(fields):
                    errors += _text_object_errors(field, f"{pointer}/fields/{index}", limit=SECTION_FIELD_TEXT_MAX)
    elif kind == "header":
        errors += _text_object_errors(block.get("text"), f"{pointer}/text", limit=HEADER_TEXT_MAX, plain_only=True)
    for key in ("accessory", "elements", "element"):
        if key in block:
            errors += _element_errors(block[key], f"{pointer}/{key}")
    return errors


def _sdk_errors(block: dict[str, Any], pointer: str) -> list[str]:
    try:
        parsed = Block.parse(dict(block))
        if parsed is None:
            return [_error(f"unsupported type: {block.get('type')}", f"{pointer}/type")]
        parsed.validate_json()
        # to_dict() validates every nested element and text object too.
        parsed.to_dict()
    except SlackObjectFormationError as exc:
        return [_error(str(exc), pointer)]
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        return [_error(f"invalid block: {exc}", pointer)]
    return []


def block_errors(blocks: Any, *, max_blocks: int = MESSAGE_MAX_BLOCKS, pointer: str = "/blocks") -> list[str]:
    """Everything wrong with a blocks array, as Slack words it; an empty list means the blocks are valid."""
    if not isinstance(blocks, list):
        return [_error("must provide an array", pointer)]
    if len(blocks) > max_blocks:
        return [_error(f"no more than {max_blocks} items allowed", pointer)]
    errors: list[str] = []
    for index, block in enumerate(blocks):
        block_pointer = f"{pointer}/{index}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(_error("missing required field: type", block_pointer))
            continue
        documented = _documented_limit_errors(block, block_pointer)
        errors += documented or _sdk_errors(block, block_pointer)
    return errors


def view_too_large(view: Any) -> bool:
    return len(json.dumps(view, separators=(",", ":")).encode()) > VIEW_MAX_BYTES


def view_errors(view: Any, *, expected_type: str | None = None) -> list[str]:
    """Everything wrong with a modal or Home tab view; an empty list means the view is valid."""
    if not isinstance(view, dict):
        return [_error("must provide an object", "/view")]
    kind = view.get("type")
    if kind not in ("modal", "home"):
        return [_error("must be one of modal, home", "/view/type")]
    if expected_type and kind != expected_type:
        return [_error(f"must be {expected_type}", "/view/type")]
    errors: list[str] = []
    if kind == "modal":
        errors += _text_object_errors(view.get("title"), "/view/title", limit=MODAL_TITLE_MAX, plain_only=True)
        for key in ("submit", "close"):
            if key in view:
                errors += _text_object_errors(view[key], f"/view/{key}", limit=MODAL_TITLE_MAX, plain_only=True)
    errors += block_errors(view.get("blocks", []), max_blocks=SURFACE_MAX_BLOCKS, pointer="/view/blocks")
    if errors:
        return errors
    try:
        View(**view).validate_json()
        View(**view).to_dict()
    except SlackObjectFormationError as exc:
        return [_error(str(exc), "/view")]
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        return [_error(f"invalid view: {exc}", "/view")]
    return []
