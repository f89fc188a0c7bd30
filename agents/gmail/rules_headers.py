"""Spam signs in the envelope: authentication, forged or inconsistent headers, relays, encoding.

Each check takes the mail and returns the names of the signs it found with a reason, as
`{rule name: reason}`. Weights live in `rules.py`, so what is detected and how much it
counts stay apart.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from email.utils import parsedate_to_datetime

from agents.gmail.message import ParsedEmail

__all__ = ["FREEMAIL", "arrival", "base_domain", "header_signs"]

Signs = dict[str, str]

_ADDRESS_IN_NAME = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MSGID = re.compile(r"^<[^<>@\s]+@[^<>@\s]+>$")
_REPLY_PREFIX = re.compile(r"^(re|fwd?|aw|wg)\s*:", re.IGNORECASE)
_TRACKING_TAIL = re.compile(r"(?:\s{2,}|\s[#(\[-]?)[a-z]{0,4}\d{3,}[a-z\d-]*[\])]?\s*$", re.I)
_YEAR = re.compile(r"\s*\(?(19|20)\d\d\)?\s*")
_DIGITS_LOCAL = re.compile(r"\d{4,}")
# a hop as the receiving server writes it: "from HELO (rdns [ip])" or "from HELO ([ip])"
_HOP = re.compile(
    r"from\s+(?P<helo>\S+)\s+\((?P<rdns>[^\s\[\)]*)\s*\[(?P<ip>[\d.]+)\]", re.IGNORECASE
)
_BY = re.compile(r"\bby\s+(?P<by>[\w.\-\[\]]+)", re.IGNORECASE)
# a hop stamped this much later than the hop above it (which received the mail after it):
# beyond a server clock set in the wrong time zone, a forged hop (train half: 3.7 % of spam,
# 0.3 % of wanted mail, none of the hard ham; at 6 h 0.4 % and 0.8 % of hard ham)
_BACKWARDS_HOURS = 12
_PRIVATE = re.compile(r"^(10\.|127\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)")
_BULK_FREEMAIL = ("hotmail.com", "yahoo.com", "aol.com", "msn.com", "gmail.com")
# free mailbox providers: a person writes from one, a business selling something does not
FREEMAIL = frozenset(
    {*_BULK_FREEMAIL, "excite.com", "juno.com", "netscape.net", "lycos.com", "mail.com",
     "usa.net", "email.com", "earthlink.net", "outlook.com", "live.com", "yandex.ru",
     "mail.ru", "gmx.net", "gmx.de", "web.de", "proton.me", "icloud.com"}
)  # fmt: skip


def base_domain(host: str) -> str:
    """The registrable part, roughly: the last two labels (three under a two-letter ccTLD
    second level such as co.uk)."""
    parts = host.lower().strip(".[]").split(".")
    if len(parts) >= 3 and len(parts[-1]) == 2 and parts[-2] in ("co", "com", "org", "net", "ac"):
        return ".".join(parts[-3:])
    return ".".join(parts[-2:]) if len(parts) >= 2 else host.lower()


def _auth(mail: ParsedEmail, out: Signs) -> None:
    for method in ("spf", "dkim", "dmarc"):
        verdict = getattr(mail.auth, method)
        if verdict == "fail" or (method == "spf" and verdict == "softfail"):
            out[f"{method}_{verdict}"] = f"{method.upper()} {verdict}"
        elif verdict == "permerror":
            out["auth_permerror"] = f"{method.upper()} permerror"


def _sender(mail: ParsedEmail, out: Signs) -> None:
    if not mail.from_address:
        out["from_missing"] = "no readable From address"
        return
    reply_domain = mail.reply_to.rpartition("@")[2]
    if reply_domain and base_domain(reply_domain) != base_domain(mail.from_domain):
        out["reply_to_elsewhere"] = f"Reply-To ({mail.reply_to}) differs from sender domain"
    shown = _ADDRESS_IN_NAME.search(mail.from_name)
    if shown and shown.group(0).lower() != mail.from_address:
        out["name_shows_other_address"] = (
            f"display name shows {shown.group(0)} but mail is from {mail.from_address}"
        )
    if _DIGITS_LOCAL.search(mail.from_address.partition("@")[0]):
        out["from_digits"] = "sender address is a run of digits"
    if not mail.to:
        out["to_missing"] = "no recipient address (undisclosed or missing To)"
    elif len(mail.to) >= 5:
        out["many_recipients"] = f"sent to {len(mail.to)} visible addresses at once"
    if not mail.from_name.strip():
        out["from_no_name"] = "sender gives no name"


def _dates(mail: ParsedEmail, out: Signs) -> None:
    if not mail.date:
        out["date_missing"] = "no Date header"
        return
    try:
        sent = parsedate_to_datetime(mail.date)
    except (TypeError, ValueError, IndexError):
        out["date_malformed"] = f"Date header unreadable ({mail.date[:40]})"
        return
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=dt.UTC)
    arrived = arrival(mail)
    if arrived is None:
        return
    hours = (sent - arrived).total_seconds() / 3600
    if hours > 24:
        out["date_future"] = f"Date is {hours / 24:.0f} days after the mail arrived"
    elif hours < -24 * 4:
        out["date_past"] = f"Date is {-hours / 24:.0f} days before the mail arrived"


def arrival(mail: ParsedEmail) -> dt.datetime | None:
    """When the mail arrived: Gmail's own time, else the receiving servers' stamps."""
    if mail.internal_date_ms:
        return dt.datetime.fromtimestamp(mail.internal_date_ms / 1000, dt.UTC)
    for line in mail.received[:3]:  # the receiving servers' own stamps, after the ';'
        _, sep, stamp = line.rpartition(";")
        if not sep:
            continue
        try:
            when = parsedate_to_datetime(stamp.strip())
        except (TypeError, ValueError, IndexError):
            continue
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return None


def _message_id(mail: ParsedEmail, out: Signs) -> None:
    mid = mail.message_id.strip()
    if not mid:
        out["msgid_missing"] = "no Message-ID"
    elif not _MSGID.match(mid):
        out["msgid_malformed"] = f"malformed Message-ID {mid[:60]!r}"


def _relays(mail: ParsedEmail, out: Signs) -> None:
    """The first hop from outside: what the sending host claims against what it is."""
    for line in mail.received[:5]:
        hop = _HOP.search(line)
        if hop is None or _PRIVATE.match(hop["ip"]):
            continue
        helo, rdns = hop["helo"].lower().strip("[]"), hop["rdns"].lower()
        if not rdns or rdns == "unknown":
            out["relay_no_rdns"] = f"sending host {hop['ip']} has no reverse DNS name"
        elif re.fullmatch(r"[\d.]+", helo):
            out["relay_helo_ip"] = f"sending host greets with a bare IP ({helo})"
        elif base_domain(helo) != base_domain(rdns):
            out["relay_helo_mismatch"] = f"sending host calls itself {helo} but is {rdns}"
        if base_domain(helo) in _BULK_FREEMAIL and base_domain(rdns) != base_domain(helo):
            out["relay_forged_freemail"] = f"claims to be {helo} from {rdns or hop['ip']}"
        return


def _hop_stamp(line: str) -> dt.datetime | None:
    _, sep, stamp = line.rpartition(";")
    try:
        when = parsedate_to_datetime(stamp.strip()) if sep else None
    except (TypeError, ValueError, IndexError):
        return None
    return when if when is None or when.tzinfo else when.replace(tzinfo=dt.UTC)


def _local_host(host: str) -> bool:
    return "." not in host or host == "localhost" or bool(_PRIVATE.match(host))


def _chain(mail: ParsedEmail, out: Signs) -> None:
    """The hops against each other. A spam tool writes Received lines of its own below the
    real ones: the first hop from outside names the host that really connected, and the
    hop below it, which that host claims to have written, should be `by` that host; the
    stamps, newest first, should not go forward in time going down the chain."""
    hops = mail.received[:12]
    for i, line in enumerate(hops[:5]):
        hop = _HOP.search(line)
        if hop is None or _PRIVATE.match(hop["ip"]):
            continue
        below = next((b for b in hops[i + 1 : i + 4] if _BY.search(b)), None)
        by_match = _BY.search(below) if below else None
        by = by_match["by"].lower().strip("[]") if by_match else ""
        if by and not _local_host(by):
            claimed = {hop["helo"].lower().strip("[]"), hop["rdns"].lower()} - {"", "unknown"}
            if by != hop["ip"] and base_domain(by) not in {base_domain(h) for h in claimed}:
                out["relay_chain_break"] = (
                    f"a relay line says it was written by {by}, but the host that sent it "
                    f"was {hop['rdns'] or hop['helo']} [{hop['ip']}]"
                )
        break
    stamps = [_hop_stamp(line) for line in hops]
    for newer, older in itertools.pairwise(stamps):
        if newer and older and (older - newer).total_seconds() > _BACKWARDS_HOURS * 3600:
            hours = (older - newer).total_seconds() / 3600
            out["relay_time_backwards"] = f"a relay is stamped {hours:.0f} h after the next one"
            break


def _subject(mail: ParsedEmail, out: Signs) -> None:
    subject = mail.subject
    if _REPLY_PREFIX.match(subject) and not mail.in_reply_to:
        out["fake_reply"] = "subject says reply/forward but the mail answers nothing"
    letters = [c for c in subject if c.isalpha()]
    if len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) > 0.9:
        out["subject_caps"] = "subject in capitals"
    if subject.count("!") >= 2 or "$$" in subject:
        out["subject_exclaims"] = "subject shouts (!! or $$)"
    if "$" in subject or re.search(r"\b\d+%", subject):
        out["subject_money"] = "money or a percentage in the subject"
    if not subject.strip():
        out["subject_empty"] = "no subject"
    tail = _TRACKING_TAIL.search(subject)
    if tail and not _YEAR.fullmatch(tail.group(0)):
        out["subject_tracking_tag"] = f"subject ends in a tracking code ({tail.group(0).strip()})"
    if re.match(r"^\s*adv\s*[:\-]", subject, re.IGNORECASE):
        out["subject_adv"] = "subject marked ADV (advertising)"


def _encoding(mail: ParsedEmail, out: Signs) -> None:
    if mail.structure.base64_text:
        out["base64_plain_text"] = "plain ASCII text sent base64-encoded"
    if mail.structure.charset_mismatch:
        out["charset_mismatch"] = "text does not decode in its declared charset"


def _thread(mail: ParsedEmail, out: Signs) -> None:
    """A reply in a conversation, quoting it: spam seldom takes that trouble."""
    quoted = sum(1 for line in mail.text.split("\n")[:400] if line.startswith(">"))
    if mail.in_reply_to and _REPLY_PREFIX.match(mail.subject) and quoted >= 2:
        out["thread_reply"] = "a reply quoting its thread"


def header_signs(mail: ParsedEmail) -> Signs:
    out: Signs = {}
    for check in (
        _auth,
        _sender,
        _dates,
        _message_id,
        _relays,
        _chain,
        _subject,
        _encoding,
        _thread,
    ):
        check(mail, out)
    return out
