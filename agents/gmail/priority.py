"""Is a mail urgent? Urgent keywords as whole words, and VIP senders.

Whole-word, case-insensitive: the keyword `urgent` matches "URGENT:", "Urgent!" and
"(urgent)", but not "urgently" or "nonurgent" — inflected forms are separate keywords, so
"urgently needed" alerts only if `urgently` is listed. Multi-word keywords match across any
run of whitespace ("action  required" matches "action required").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from agents.gmail.parse import ParsedEmail

__all__ = ["PriorityResult", "classify_priority", "find_keywords", "is_vip", "normalise_vip"]


@dataclass
class PriorityResult:
    priority: str = "normal"  # "high" | "normal"
    reasons: list[str] = field(default_factory=list)
    vip: bool = False

    @property
    def high(self) -> bool:
        return self.priority == "high"


@lru_cache(maxsize=256)
def _keyword_re(keyword: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in keyword.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def find_keywords(text: str, keywords: Iterable[str]) -> list[str]:
    """The keywords present in `text` as whole words, in the order given."""
    return [k for k in keywords if k.strip() and _keyword_re(k.strip()).search(text)]


def normalise_vip(entry: str) -> str:
    return entry.strip().lower()


def is_vip(address: str, vips: Iterable[str]) -> str | None:
    """The VIP entry that `address` matches (exact address or `*@domain`), or None."""
    address = address.strip().lower()
    domain = address.rpartition("@")[2]
    for raw in vips:
        entry = normalise_vip(raw)
        if entry == address or (entry.startswith("*@") and entry[2:] == domain):
            return entry
    return None


def classify_priority(
    mail: ParsedEmail, keywords: Iterable[str], vips: Iterable[str]
) -> PriorityResult:
    """High when an urgent keyword appears or the sender is a VIP.

    A VIP match counts unless the mail failed SPF/DKIM/DMARC: a forged VIP address must not
    reach the user's phone. Mail without any authentication results (such as mail fed through
    `/webhooks/email`) keeps its VIP status.
    """
    out = PriorityResult()
    found = find_keywords(f"{mail.subject}\n{mail.text}", keywords)
    if found:
        out.reasons.append("urgent keyword: " + ", ".join(found))
    entry = is_vip(mail.from_address, vips)
    if entry is not None:
        if mail.auth.failed:
            out.reasons.append(
                f"sender matches VIP {entry} but failed {'/'.join(mail.auth.failed).upper()}"
            )
        else:
            out.vip = True
            out.reasons.insert(0, f"VIP sender ({entry})")
    if found or out.vip:
        out.priority = "high"
    return out
