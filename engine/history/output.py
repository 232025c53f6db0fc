"""Capping command output kept in the history, so that nothing is cut without saying so.

The history keeps the head and the tail of a long output: the head shows what the command was working on
(the first resources, the column headers), the tail shows how it ended (the error, the summary line). A
quarter of the cap goes to the head, the rest to the tail, with a marker line between them naming how much
was left out. The full output's length in bytes and its SHA-256 are stored beside it, so a copy kept
elsewhere (a Slack file, a terminal log) can be matched to the record.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict

DEFAULT_OUTPUT_CAP_BYTES = 64 * 1024
MIN_OUTPUT_CAP_BYTES = 1024
_HEAD_SHARE = 4  # one part in four goes to the head


class CappedOutput(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    output_bytes: int
    output_sha256: str
    output_truncated: bool


def cap_output(output: str, cap_bytes: int = DEFAULT_OUTPUT_CAP_BYTES) -> CappedOutput:
    """The output as the history keeps it: whole when it fits in ``cap_bytes`` of UTF-8, else head + tail."""
    if cap_bytes < MIN_OUTPUT_CAP_BYTES:
        raise ValueError(f"output cap must be at least {MIN_OUTPUT_CAP_BYTES} bytes")
    data = output.encode("utf-8", errors="surrogatepass")
    digest = hashlib.sha256(data).hexdigest()
    if len(data) <= cap_bytes:
        return CappedOutput(text=output, output_bytes=len(data), output_sha256=digest, output_truncated=False)

    # The marker's own length depends on the number it prints; size it for the worst case first.
    marker_room = len(_marker(len(data)).encode())
    room = cap_bytes - marker_room
    head_room = room // _HEAD_SHARE
    head = _cut_utf8(data[:head_room], keep="start")
    tail = _cut_utf8(data[len(data) - (room - head_room) :], keep="end")
    omitted = len(data) - len(head) - len(tail)
    text = head.decode("utf-8", errors="replace") + _marker(omitted) + tail.decode("utf-8", errors="replace")
    return CappedOutput(text=text, output_bytes=len(data), output_sha256=digest, output_truncated=True)


def _marker(omitted: int) -> str:
    return f"\n[... {omitted} bytes of output not kept in the history ...]\n"


def _cut_utf8(chunk: bytes, *, keep: str) -> bytes:
    """Drop the partial UTF-8 character a byte cut may have left at the inner edge of ``chunk``."""
    if keep == "start":
        end = len(chunk)
        # Walk back over continuation bytes to the lead byte, and drop the character if it is incomplete.
        back = 0
        while back < min(4, end) and (chunk[end - 1 - back] & 0xC0) == 0x80:
            back += 1
        if back < end:
            lead = chunk[end - 1 - back]
            need = 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4
            if need != back + 1:
                return chunk[: end - 1 - back]
        return chunk
    start = 0
    while start < min(4, len(chunk)) and (chunk[start] & 0xC0) == 0x80:
        start += 1
    return chunk[start:]
