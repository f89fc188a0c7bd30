"""Hand-written spam signals: authentication failures, sender tricks, links and wording.

Each rule that fires contributes a weight; the weights combine as independent evidence
(`1 - prod(1 - w)`), so two strong signals outweigh one and no number of hits exceeds 1.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from agents.gmail.parse import ParsedEmail

__all__ = ["RuleResult", "score_rules"]

_PHRASES = [
    "verify your account",
    "confirm your password",
    "your account will be suspended",
    "you have won",
    "you've won",
    "claim your prize",
    "lottery",
    "wire transfer",
    "western union",
    "bitcoin",
    "crypto investment",
    "act now",
    "limited time offer",
    "100% free",
    "risk-free",
    "click here",
    "dear customer",
    "dear beneficiary",
    "inheritance",
    "million dollars",
    "urgent reply needed",
    "gift card",
    "no prescription",
]
_PHRASE_RE = [re.compile(r"(?<!\w)" + re.escape(p) + r"(?!\w)", re.IGNORECASE) for p in _PHRASES]
_SHORTENERS = {"bit.ly", "tinyurl.com", "goo.gl", "t.co", "ow.ly", "is.gd", "buff.ly", "cutt.ly"}
_DOMAIN_IN_TEXT = re.compile(r"\b((?:[a-z0-9-]+\.)+[a-z]{2,})\b", re.IGNORECASE)


@dataclass
class RuleResult:
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)

    def add(self, weight: float, reason: str) -> None:
        self.score = 1 - (1 - self.score) * (1 - weight)
        self.reasons.append(reason)


def _base_domain(host: str) -> str:
    parts = host.lower().strip(".").split(".")
    return ".".join(parts[-2:]) if len(parts) >= 2 else host.lower()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _auth_rules(mail: ParsedEmail, out: RuleResult) -> None:
    weights = {
        "spf": {"fail": 0.45, "softfail": 0.2, "permerror": 0.2},
        "dkim": {"fail": 0.35, "permerror": 0.2},
        "dmarc": {"fail": 0.55, "permerror": 0.2},
    }
    for method, table in weights.items():
        verdict = getattr(mail.auth, method)
        if verdict in table:
            out.add(table[verdict], f"{method.upper()} {verdict}")


def _sender_rules(mail: ParsedEmail, out: RuleResult) -> None:
    reply_domain = mail.reply_to.rpartition("@")[2]
    if (
        reply_domain
        and mail.from_domain
        and _base_domain(reply_domain) != _base_domain(mail.from_domain)
    ):
        out.add(0.3, f"Reply-To ({mail.reply_to}) differs from sender domain")
    shown = re.search(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", mail.from_name)
    if shown and shown.group(0).lower() != mail.from_address:
        out.add(0.4, f"display name shows {shown.group(0)} but mail is from {mail.from_address}")
    if re.match(r"^(re|fwd?):", mail.subject, re.IGNORECASE) and not mail.in_reply_to:
        out.add(0.2, "subject says reply/forward but the mail answers nothing")


def _link_rules(mail: ParsedEmail, out: RuleResult) -> None:
    ip_links = shorteners = mismatched = 0
    for link in mail.links:
        host = (urlsplit(link.href).hostname or "").lower()
        if not host:
            continue
        if _is_ip(host):
            ip_links += 1
        if host in _SHORTENERS:
            shorteners += 1
        shown = _DOMAIN_IN_TEXT.search(link.text)
        if shown and _base_domain(shown.group(1)) != _base_domain(host):
            mismatched += 1
    if ip_links:
        out.add(0.35, "link to a bare IP address")
    if mismatched:
        out.add(0.45, "link text shows a different domain than it opens")
    if shorteners:
        out.add(0.15, "link through a URL shortener")
    if len(mail.links) > 15:
        out.add(0.1, f"{len(mail.links)} links")


def _wording_rules(mail: ParsedEmail, out: RuleResult) -> None:
    haystack = f"{mail.subject}\n{mail.text}"
    hits = [p for p, rx in zip(_PHRASES, _PHRASE_RE, strict=True) if rx.search(haystack)]
    for phrase in hits[:4]:
        out.add(0.2, f"wording: {phrase!r}")
    letters = [c for c in mail.subject if c.isalpha()]
    if len(letters) >= 8 and all(c.isupper() for c in letters):
        out.add(0.15, "subject in capitals")
    if mail.subject.count("!") >= 3 or "$$$" in haystack:
        out.add(0.15, "excessive punctuation")


def score_rules(mail: ParsedEmail) -> RuleResult:
    """Run every rule; the score is in [0, 1) and each reason says which rule fired."""
    out = RuleResult()
    _auth_rules(mail, out)
    _sender_rules(mail, out)
    _link_rules(mail, out)
    _wording_rules(mail, out)
    out.score = round(out.score, 4)
    return out
