"""Slack's Block Kit limits that the renderers plan around.

Slack refuses a whole message when one field is over its limit, so every renderer sizes its text to these
numbers before building blocks instead of relying on the API to complain.
"""

from __future__ import annotations

MESSAGE_MAX_BLOCKS = 50
MODAL_MAX_BLOCKS = 100
SECTION_TEXT_MAX = 3_000
SECTION_FIELDS_MAX = 10
SECTION_FIELD_TEXT_MAX = 2_000
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2_000
CONFIRM_TITLE_MAX = 100
CONFIRM_TEXT_MAX = 300
CONFIRM_BUTTON_MAX = 30
CONTEXT_ELEMENTS_MAX = 10
# Slack documents no separate limit for context text; the section field limit keeps it short enough to read.
CONTEXT_TEXT_MAX = 2_000
MODAL_TITLE_MAX = 24
PRIVATE_METADATA_MAX = 3_000
PLAIN_TEXT_INPUT_MAX = 3_000
INPUT_LABEL_MAX = 2_000
VIEW_MAX_BYTES = 250_000
# Slack truncates message text at 40,000 characters; a notification needs far less.
FALLBACK_TEXT_MAX = 3_000
