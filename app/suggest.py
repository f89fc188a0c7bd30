""" "Did you mean ...?" for misspelt keys, shared by step configs and the flows' YAML files.

A misspelt required key shows up twice in pydantic's errors (the unknown key and the missing
one); naming the likely intended key turns two puzzling lines into one fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean", "unknown_key_message"]


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest of `choices` to `word`, or None when nothing is close enough."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_key_message(key: str, choices: Iterable[str]) -> str:
    """`unknown key `treshold`, did you mean `threshold`?` (or the list of known keys)."""
    options = sorted(set(choices))
    guess = did_you_mean(key, options)
    if guess is not None:
        return f"unknown key `{key}`, did you mean `{guess}`?"
    return f"unknown key `{key}`; known keys: {', '.join(options)}"
