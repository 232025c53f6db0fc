"""Which trigger words a line holds, in one pass: most lines of real output hold none, and a rule whose words
are absent is never run.

One Aho-Corasick automaton (``pyahocorasick``, the matcher ``detect-secrets`` itself uses for word lists)
holds the lowercase triggers of every rule; looking a line up costs about a microsecond, where a regular
expression alternation of the same words costs several.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import ahocorasick

_lock = threading.Lock()
_words: set[str] = set()
_automaton: ahocorasick.Automaton | None = None


def add_triggers(words: Iterable[str]) -> None:
    """Make ``words`` (lowercase) findable; the automaton is rebuilt on the next lookup."""
    global _automaton
    with _lock:
        new = {word for word in words if word} - _words
        if new:
            _words.update(new)
            _automaton = None


def _built() -> ahocorasick.Automaton:
    global _automaton
    with _lock:
        if _automaton is None:
            automaton = ahocorasick.Automaton()
            for word in _words:
                automaton.add_word(word, word)
            automaton.make_automaton()
            _automaton = automaton
        return _automaton


def triggers_in(low: str) -> frozenset[str]:
    """The trigger words in ``low`` (a lowercased line)."""
    automaton = _built()
    if not low or not len(automaton):
        return frozenset()
    return frozenset(word for _, word in automaton.iter(low))
