"""Lexical sparse vectors for text search, with no model and no download.

Qdrant Edge's ``Bm25`` encoder tokenizes (code-aware: ``TerminateInstances`` gives ``terminate``,
``instances`` and the whole word), stems, drops stop words and hashes each term to a sparse index with a
BM25 term-frequency weight. The collection's sparse vector is configured with the IDF modifier, so Qdrant
supplies the inverse document frequency and the score is BM25. The same vectors go to both backends.

Command words get one more treatment. ``terminate-instances`` is tokenized into ``terminate`` and
``instances``, which alone would make a search for it find every ``describe-instances`` too. So documents
also carry each such compound word whole (``terminateinstances``), and a query word written as a compound
(``terminate-instances``, ``TerminateInstances``) is looked up whole, while a plain query word
(``terminate``) still matches the parts. Path-like words are compounds piece by piece
too: ``s3://my-bucket/logs`` is found by ``my-bucket``, and a run of parts inside a compound is one as well:
``create-access-key`` is found by ``access-key``.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from qdrant_edge import Bm25, Bm25Config, TokenizerType

_JOINED = re.compile(r"[A-Za-z0-9][-_.:/=@]+[A-Za-z0-9]")
_CAMEL = re.compile(r"^[A-Z]?[a-z0-9]+(?:[A-Z][a-z0-9]+)+$")
_PIECE_SEPARATORS = re.compile(r"[/:=,@]+")
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]+")
_WORD_JOINERS = re.compile(r"[-_.]+|(?<=[a-z0-9])(?=[A-Z])")
_MAX_PARTS = 6

# The average indexed text (prompt, summary, a few commands) is a few dozen tokens; BM25's length
# normalisation is relative to this. Changing it changes the weights of new documents only.
_AVERAGE_LENGTH = 48.0


@dataclass(frozen=True, slots=True)
class SparseVector:
    indices: list[int]
    values: list[float]

    def __bool__(self) -> bool:
        return bool(self.indices)


class LexicalEncoder:
    """Record text and query text to sparse vectors; tens of microseconds, fine on the event loop."""

    def __init__(self) -> None:
        self._bm25 = Bm25(Bm25Config(tokenizer=TokenizerType.Code, avg_len=_AVERAGE_LENGTH))

    def document(self, text: str) -> SparseVector:
        compounds = [joined for word in text.split() for joined in _document_compounds(word)]
        vector = self._bm25.embed_document(text + "\n" + " ".join(compounds))
        return SparseVector(list(vector.indices), [float(v) for v in vector.values])

    def query(self, text: str) -> SparseVector:
        vector = self._bm25.embed_query(query_terms(text))
        return SparseVector(list(vector.indices), [float(v) for v in vector.values])


def query_terms(text: str) -> str:
    """The query as the encoder sees it: compound words joined so that they match only whole."""
    words = []
    for word in text.split():
        cleaned = _clean(word)
        if not cleaned:
            continue
        pieces = [p.strip("-_.") for p in _PIECE_SEPARATORS.split(cleaned)]
        pieces = [p for p in pieces if p]
        # A path or ARN is looked up whole (exact matches rank first) and piece by piece, as documents index it.
        for candidate in [cleaned, *pieces] if len(pieces) > 1 else [cleaned]:
            words.append(_join(candidate) if _is_compound(candidate) else candidate)
    return " ".join(words)


def _document_compounds(word: str) -> list[str]:
    cleaned = _clean(word)
    if not cleaned:
        return []
    pieces = [p.strip("-_.") for p in _PIECE_SEPARATORS.split(cleaned)]
    pieces = [p for p in pieces if p]
    candidates = [cleaned, *pieces] if len(pieces) > 1 else [cleaned]
    compounds = [_join(c) for c in candidates if _is_compound(c)]
    for piece in pieces:
        compounds.extend(_inner_runs(piece))
    return compounds


def _inner_runs(piece: str) -> list[str]:
    """``create-access-key`` is also found as ``access-key`` and ``create-access``: every shorter run of
    two or more of its parts (the whole is already there). Long names keep only the whole."""
    parts = [p for p in _WORD_JOINERS.split(piece) if p]
    if not 3 <= len(parts) <= _MAX_PARTS:
        return []
    return [
        "".join(parts[i:j]).lower()
        for i in range(len(parts))
        for j in range(i + 2, len(parts) + 1)
        if j - i < len(parts)
    ]


def _clean(word: str) -> str:
    return word.strip(string.punctuation)


def _is_compound(word: str) -> bool:
    return bool(_JOINED.search(word) or _CAMEL.fullmatch(word))


def _join(word: str) -> str:
    return _NON_ALNUM.sub("", word).lower()
