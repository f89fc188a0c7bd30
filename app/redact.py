"""Masks values that look like secrets before they reach logs, traces or the Workbench."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MASK", "looks_secret_key", "redact", "redact_text"]

MASK = "***"
_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|authorization|api[_-]?key|private[_-]?key|cookie|signature)",
    re.IGNORECASE,
)
# Token formats of the services Stepline talks to, plus PEM private keys.
_SECRET_VALUE = re.compile(
    r"(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|sk-[A-Za-z0-9_-]{16,}|ya29\.[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$))"
)


def looks_secret_key(name: str) -> bool:
    return bool(_SECRET_KEY.search(name))


# Secrets written inline in free text: URL credentials, bearer tokens, password=... pairs.
_INLINE = re.compile(
    r"(?P<pre>://[^/\s:@]+:)[^/\s@]+(?=@)"
    r"|(?P<bearer>\b[Bb]earer\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|(?P<pair>\b(?:password|passwd|secret|token|api[_-]?key)\s*[=:]\s*)[^\s,;&\"']{6,}",
    re.IGNORECASE,
)


def _inline(match: re.Match[str]) -> str:
    return (match.group("pre") or match.group("bearer") or match.group("pair") or "") + MASK


def redact_text(text: str) -> str:
    return _INLINE.sub(_inline, _SECRET_VALUE.sub(MASK, text))


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of `value` with secret-named keys and secret-looking strings masked."""
    if _depth > 20:
        return MASK  # too deep to inspect: hide rather than show unchecked
    if isinstance(value, dict):
        return {k: MASK if isinstance(k, str) and looks_secret_key(k) and v not in (None, "")
                else redact(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, _depth + 1) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
