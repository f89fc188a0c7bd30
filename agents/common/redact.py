"""Masking for what the flows send out (LLM prompts, Slack, pushes): app/redact.py's one table
of secret formats, shown as [REDACTED] so the LLM and readers see that something was removed.

`redact` suits code and PR text: only a recognised format, a credential in a URL or a bearer
header, or a literal assigned to a secret-named name is masked, so code keeps its shape.
`redact_mail` also masks the labelled values mail carries ("password: ...", "your code is ...").
"""

from __future__ import annotations

import re

from app.redact import SecretHit, find_secrets, mask_text

__all__ = ["MASK", "SecretHit", "find_secrets", "redact", "redact_mail"]

MASK = "[REDACTED]"


def redact(text: str) -> str:
    """`text` with every secret replaced by [REDACTED]; a private key block loses its body too."""
    return mask_text(text, MASK)


def redact_mail(text: str) -> str:
    """`redact(text)`, and the value after a label such as "password:" or "code is" too."""
    return _LABELLED.sub(lambda m: m.group(1) + MASK, mask_text(text, MASK, config=True))


# "password: hunter22", "verification code is 483920": keep the label, mask the value. Without
# ":", "=" or "is" the next word is masked only if it has a digit, so the prose around a label
# ("your password expires", "token critical") stays readable for the classifiers.
_LABELLED = re.compile(
    r"(?i)\b((?:password|passcode|pin|one[- ]time code|verification code|security code|"
    r"login code|api key|token)\b(?:\s*[:=]\s*|\s+is\s+|\s+(?=[^\s,;]*\d)))([^\s,;]{4,})"
)
