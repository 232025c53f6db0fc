"""Slack's request signature, checked in HTTP mode before Bolt sees anything of the request.

Bolt verifies signatures too, but only after it has parsed the body (a malformed payload is a 500 with a
traceback, for anyone who can reach the port), it turns a non-numeric timestamp or a non-ASCII signature
into a 500 as well, and it logs every refused request's body at INFO: whatever a stranger posts, or the text
of a replayed Slack request, would end up in the logs. Here a request that is not Slack's gets a 401 and one
log line that says why, never what it carried.

Bolt's own check stays on behind this one. It can only refuse what passed here by the clock moving past
the five minutes between the two checks; ``quiet_bolt_refusals`` keeps the body out of its log line then.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

from slack_bolt.middleware.request_verification import RequestVerification

TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
# Slack's window: anything signed longer ago (or further ahead) is taken for a replay.
MAX_AGE_SECONDS = 5 * 60

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


def signature_problem(
    signing_secret: str, body: bytes, timestamp: str | None, signature: str | None, *, now: float
) -> str | None:
    """Why a request was not signed by Slack with ``signing_secret`` at most five minutes from ``now``, or None.

    The reason names only what was wrong, never a header's value or the body.
    """
    if not signing_secret:
        return "no signing secret is configured"
    if timestamp is None or signature is None:
        return "the signature headers are missing"
    if _TIMESTAMP.fullmatch(timestamp) is None:
        return "the timestamp is not a number of seconds"
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return "the timestamp is more than five minutes away"
    if _SIGNATURE.fullmatch(signature) is None:
        return "the signature is malformed"
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "the signature does not match"
    return None


class _WithoutRequestDetails(logging.Filter):
    """Bolt's refusal line lists the signature, timestamp and body; only the fact is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Invalid request signature detected"):
            record.msg, record.args = "Invalid request signature detected", None
        return True


def quiet_bolt_refusals() -> None:
    """Keep request bodies out of Bolt's request verification log (idempotent)."""
    logger = logging.getLogger(f"slack_bolt.{RequestVerification.__name__}")
    if not any(isinstance(existing, _WithoutRequestDetails) for existing in logger.filters):
        logger.addFilter(_WithoutRequestDetails())
