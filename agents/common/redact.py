"""Find and mask secrets in text before it reaches the LLM, Slack or a log line.

Both flows use one list of token formats. `redact` suits code and PR text (GitHub): only a value
in a recognised format, or a quoted literal assigned to a secret-named variable, is masked.
`redact_mail` also masks the labelled values mail carries ("password: ...", "your code is ...").

Kept apart from app/redact.py on purpose: that one masks runtime logs with "***" and its own
thresholds; this one decides what an LLM or a Slack channel may see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MASK", "SECRET_PATTERNS", "SecretHit", "find_secrets", "redact", "redact_mail"]

MASK = "[REDACTED]"

# (label, pattern). Each pattern matches the secret itself so only that part is masked.
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private key", re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{40,})\b")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),
    ("OpenAI key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}\b")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("Google OAuth token", re.compile(r"\bya29\.[0-9A-Za-z_-]{20,}\b")),
    ("Stripe key", re.compile(r"\b[sr]k_live_[0-9A-Za-z]{16,}\b")),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b")),
    (
        "hard-coded secret",
        re.compile(
            r"""(?ix)
            (?<![a-z0-9_])(?:password|passwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token
              |client[_-]?secret|private[_-]?key)[a-z0-9_]*
            \s*[:=]\s*
            (?P<q>["'])(?P<value>[^"'\s]{8,})(?P=q)
            """
        ),
    ),
)


@dataclass(frozen=True)
class SecretHit:
    label: str
    start: int
    end: int


def find_secrets(text: str) -> list[SecretHit]:
    hits: list[SecretHit] = []
    for label, pattern in SECRET_PATTERNS:
        for match in pattern.finditer(text):
            if "value" in pattern.groupindex:
                value = match.group("value")
                if _looks_like_placeholder(value):
                    continue
                hits.append(SecretHit(label, match.start("value"), match.end("value")))
            else:
                hits.append(SecretHit(label, match.start(), match.end()))
    return hits


def redact(text: str) -> str:
    """`text` with every secret replaced by [REDACTED]; a private key block loses its body too."""
    text = _PEM_BLOCK.sub(f"-----BEGIN PRIVATE KEY-----{MASK}-----END PRIVATE KEY-----", text)
    hits = sorted(find_secrets(text), key=lambda h: h.start, reverse=True)
    last_start = len(text) + 1
    for hit in hits:
        if hit.label == "private key":
            continue  # its block was masked whole above
        if hit.end > last_start:
            continue  # overlaps a hit already masked
        text = text[: hit.start] + MASK + text[hit.end :]
        last_start = hit.start
    return text


def redact_mail(text: str) -> str:
    """`redact(text)`, and the value after a label such as "password:" or "code is" too."""
    return _LABELLED.sub(lambda m: m.group(1) + MASK, redact(text))


_PEM_BLOCK = re.compile(
    r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END (?:[A-Z]+ )*PRIVATE KEY"
    r"(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)

# "password: hunter22", "verification code is 483920": keep the label, mask the value. Without
# ":", "=" or "is" the next word is masked only if it has a digit, so the prose around a label
# ("your password expires", "token critical") stays readable for the classifiers.
_LABELLED = re.compile(
    r"(?i)\b((?:password|passcode|pin|one[- ]time code|verification code|security code|"
    r"login code|api key|token)\b(?:\s*[:=]\s*|\s+is\s+|\s+(?=[^\s,;]*\d)))([^\s,;]{4,})"
)

_PLACEHOLDERS = ("changeme", "example", "xxxxxxxx", "your", "placeholder", "dummy", "redacted")


def _looks_like_placeholder(value: str) -> bool:
    lowered = value.lower()
    if lowered.startswith(("${", "{{", "<", "%(")) or MASK.lower() in lowered:
        return True
    return any(word in lowered for word in _PLACEHOLDERS)
