"""Mask secrets a mail may carry (API keys, tokens, one-time codes, passwords) before its text
goes to the LLM or to Slack."""

from __future__ import annotations

import re

__all__ = ["MASK", "redact"]

MASK = "[REDACTED]"

_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}\b"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    re.compile(r"\bya29\.[0-9A-Za-z_-]{20,}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b"),
)
# "password: hunter22", "verification code is 483920": keep the label, mask the value
_LABELLED = re.compile(
    r"(?i)\b((?:password|passcode|pin|one[- ]time code|verification code|security code|"
    r"login code|api key|token)\b\s*(?:is|:|=)?\s*)([^\s,;]{4,})"
)


def redact(text: str) -> str:
    """`text` with every secret-looking value replaced by `[REDACTED]`."""
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    return _LABELLED.sub(lambda m: m.group(1) + MASK, text)
