"""Offline token estimate and budget trimming.

tiktoken would fetch its encodings from the internet on first use, which fails on air-gapped
hosts and in CI, so we estimate instead. The estimate follows how BPE tokenizers split text
(short words are one token, long words and digit runs split, punctuation mostly stands alone)
and leans high: a budget computed from it keeps a request under the model's real limit.
"""

from __future__ import annotations

import re

__all__ = ["TRIM_MARKER", "count_tokens", "trim_to_tokens"]

TRIM_MARKER = "\n[... trimmed to fit the LLM input budget ...]"

_PIECES = re.compile(r"[A-Za-z]+|[0-9]+|[ \t]+|\n+|[^\x00-\x7f]|\S|\s")


def _cost(piece: str) -> int:
    first = piece[0]
    if first.isascii() and first.isalpha():
        return (len(piece) + 3) // 4
    if first.isascii() and first.isdigit():
        return (len(piece) + 2) // 3
    if first in " \t":
        # A single space is folded into the next word by BPE; indentation runs cost one.
        return 0 if len(piece) == 1 else 1
    return 1


def count_tokens(text: str) -> int:
    """Estimated token count of `text` (an upper-leaning estimate, no downloads)."""
    return sum(_cost(m.group()) for m in _PIECES.finditer(text))


def trim_to_tokens(text: str, max_tokens: int) -> str:
    """`text` cut to at most `max_tokens` (marker included), preferring a line boundary."""
    if count_tokens(text) <= max_tokens:
        return text
    room = max_tokens - count_tokens(TRIM_MARKER)
    if room <= 0:
        return ""
    used = 0
    cut = 0
    for match in _PIECES.finditer(text):
        cost = _cost(match.group())
        if used + cost > room:
            break
        used += cost
        cut = match.end()
    kept = text[:cut]
    # Cutting mid-line leaves half a statement; back up to a newline unless that loses half.
    newline = kept.rfind("\n")
    if newline > len(kept) // 2:
        kept = kept[:newline]
    return kept + TRIM_MARKER
