"""One step's output: every line for the file attached when it ends, and its last lines for the live message.

Lines arrive already redacted. The file copy keeps them byte for byte (each followed by a newline), in memory
up to ``spill_bytes`` and in an anonymous temporary file beyond that, so a command printing gigabytes does
not hold them in the bot's memory. The tail kept for the message is bounded by characters, not lines: only
what the message can show is worth keeping.
"""

from __future__ import annotations

import io
import tempfile
from collections import deque
from dataclasses import dataclass
from typing import IO

from bot.slack.blocks.mrkdwn import ELLIPSIS


@dataclass(frozen=True)
class TailEntry:
    """A line as the message shows it (cut when very long), or a note the sink put between lines."""

    text: str
    note: bool = False


def cut_line(line: str, limit: int) -> tuple[str, bool]:
    """``line`` cut to ``limit`` characters with a visible count of the rest; True when it was cut."""
    if len(line) <= limit:
        return line, False
    return f"{line[:limit]} {ELLIPSIS} (+{len(line) - limit:,} chars)", True


class OutputBuffer:
    """All lines of one command (or rollback step), plus the bounded tail its message shows."""

    def __init__(
        self,
        *,
        keep_chars: int,
        line_chars: int,
        spill_bytes: int,
        max_file_bytes: int | None = None,
    ) -> None:
        """``keep_chars``: how much of the tail to keep (at least what the message can show); ``line_chars``:
        where a long line is cut in the message; ``max_file_bytes``: the most the attached file holds (lines
        beyond it are counted and the file says so)."""
        if keep_chars < 1 or line_chars < 1 or spill_bytes < 0:
            raise ValueError("keep_chars and line_chars must be positive and spill_bytes not negative")
        self._keep_chars = keep_chars
        self._line_chars = line_chars
        self._spill_bytes = spill_bytes
        self._max_file_bytes = max_file_bytes
        self._file: IO[bytes] = io.BytesIO()
        self._spilled = False
        self._tail: deque[TailEntry] = deque()
        self._tail_chars = 0
        self.lines = 0
        self.cut_lines = 0
        self.file_bytes = 0
        self.dropped_lines = 0
        self.dropped_bytes = 0
        self._closed = False

    # ------------------------------------------------------------------ taking lines

    def add(self, line: str) -> None:
        self.lines += 1
        self._store(line)
        shown, cut = cut_line(line, self._line_chars)
        if cut:
            self.cut_lines += 1
        self._keep(TailEntry(shown))

    def note(self, text: str) -> None:
        """A marker for the message only (a retry starting): never in the file, never counted as a line."""
        self._keep(TailEntry(text, note=True))

    def _store(self, line: str) -> None:
        if self._closed:
            return
        data = line.encode("utf-8", errors="replace") + b"\n"
        if self._max_file_bytes is not None and self.file_bytes + len(data) > self._max_file_bytes:
            self.dropped_lines += 1
            self.dropped_bytes += len(data)
            return
        self._file.write(data)
        self.file_bytes += len(data)
        if not self._spilled and self.file_bytes > self._spill_bytes:
            self._spill()

    def _spill(self) -> None:
        # From here on the lines live on disk; the file has no name and goes away when closed.
        memory = self._file
        assert isinstance(memory, io.BytesIO)
        disk = tempfile.TemporaryFile(prefix="cloudops-output-")  # noqa: SIM115 (kept open until close())
        disk.write(memory.getbuffer())
        self._file = disk
        self._spilled = True
        memory.close()

    def _keep(self, entry: TailEntry) -> None:
        self._tail.append(entry)
        self._tail_chars += len(entry.text) + 1
        # Escaping only ever lengthens text, so raw characters at least ``keep_chars`` long always fill the
        # message; anything older can never be shown again.
        while len(self._tail) > 1 and self._tail_chars - (len(self._tail[0].text) + 1) >= self._keep_chars:
            self._tail_chars -= len(self._tail.popleft().text) + 1

    # ------------------------------------------------------------------ reading

    @property
    def spilled(self) -> bool:
        """True once the lines no longer fit in memory and went to a temporary file."""
        return self._spilled

    def tail(self) -> list[TailEntry]:
        return list(self._tail)

    def read_all(self) -> bytes:
        """Every line kept, each followed by a newline, and a closing note if some did not fit the limit."""
        if self._closed:
            raise ValueError("the output buffer is closed")
        self._file.flush()
        self._file.seek(0)
        data = self._file.read()
        self._file.seek(0, io.SEEK_END)
        if self.dropped_lines:
            data += (
                f"{ELLIPSIS} {self.dropped_lines:,} more lines ({self.dropped_bytes:,} bytes) not kept: the output "
                f"passed the {self._max_file_bytes:,}-byte limit of this file\n"
            ).encode()
        return data

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._file.close()
            self._tail.clear()
