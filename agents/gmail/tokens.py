"""The features the Bayes model learns from one mail: words, and tokens for what the headers say.

Words alone miss much of what gives spam away: who sent it, where its links go, whether the
sender authenticated, which program wrote it, how it is built. Those become tokens with a
prefix (`from:`, `url:`, `auth:`, `mailer:`, `type:`...), so they are learned like words.
A link also gives the words of its path and query (`urlpath:`): tracking scripts, affiliate
ids and `remove.cgi` say much about a mail (in 4-fold cross-validation on the train half of
the SpamAssassin corpus: wanted mail flagged 0.24 % instead of 0.29 %, spam caught 96.5 %
instead of 96.7 %, and more spam caught at 0.1 % and 0.5 % flagged). The recipients' domains
(`to:*@...`, the first 5) and every word of the mailer with its version (`mailer:2.50`)
caught 945 of 969 spam instead of 938 there at the cut flagging 0.3 % (937 instead of 935 at
0.8, 5 of 2,086 wanted mails flagged either way). Each token counts once per mail: how often
a spammer repeats a word says little.

The parser also reads Return-Path, Precedence, X-Priority, each text part's
Content-Transfer-Encoding and how the HTML is built (fonts, colours, tables, centring,
comments, pictures against text). As tokens none passed cross-validation (spam caught of 969
at 0.8 / wanted mails flagged of 2,086 / spam caught at the cut flagging 0.3 %; without
them 937 / 5 / 945; 938 / 5 / 945 in the HTML runs): HTML layout 942 / 8 / 935, pictures
against text 939 / 6 / 944, comments and tiny text 939 / 6 / 944, Return-Path against From
937 / 5 / 942, encodings 938 / 6 / 944, X-Priority 937 / 5 / 945, all of them 942 / 10 /
932: the wanted commercial newsletters are built like the spam beside them.
The names of the header lines a mail has (`hdr-names`: `hdr:list-id`, `hdr:x-mailer`, as
SpamBayes mines them; `hdr-sent` without those the receiving side adds; `hdr-count`) did
not pass either: 935 / 3 / 939 against 943 / 4 / 950 without (940 / 5 / 948 for the count):
the wanted newsletters lack the list headers the rest of the wanted mail has.
They stay `OPTIONAL`, off.

How long the mail took by its Date header against its arrival (ahead, minutes, hours, days,
older) is a token: a spam tool stamps a time of its own. Alone it moved no more than the
noise there (940 / 5 / 945); with `bayes.MIN_SHARED` and `training.relearn_mistakes` it is
part of what is kept (see `bayes.py`).

The model file keeps its tokens in clear (it stays inspectable), so a secret a mail carries
must not become one: the text, the subject and each link's path are masked with
`redact_mail` first (a password, a one-time code, an API key become `[REDACTED]`), the
digits of a link piece become `#` (`/reset/#` keeps the shape, not the code), and words
longer than 12 letters (most keys and tokens) were only ever kept as their first letter and
length. Masking costs about 0.5 ms a mail and changed no figure in cross-validation. What
it cannot see, a bare secret with no label ("hunter22" alone on a line), can still become a
word token: hashing tokens would hide it but make the model unreadable, and a short
secret's hash is found by hashing the words it could be, so it would protect little.
"""

from __future__ import annotations

import datetime as dt
import re
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from agents.common.redact import redact_mail
from agents.gmail.message import ParsedEmail
from agents.gmail.rules_headers import arrival

__all__ = ["GROUPS", "OPTIONAL", "tokens"]

# Token families cross-validation on the train half did not keep (see the module docstring):
# off in the flow, switched on by `bench/gmail_tune.py --cv --with NAME` to measure them again
OPTIONAL = frozenset(
    {
        "rpath",
        "cte",
        "precedence",
        "priority",
        "html-layout",
        "html-tricks",
        "html-images",
        "hdr-names",
        "hdr-sent",
        "hdr-count",
    }
)
GROUPS: set[str] = set()
# headers every mail has, or that the receiving side (or the corpus's mail reader) adds
_NOT_SENT = frozenset(
    {"date", "from", "message-id", "subject", "to", "received", "return-path", "delivered-to"}
    | {"delivery-date", "x-keywords", "x-status", "x-uid", "status", "x-original-date"}
)

_SPLIT = re.compile(r"\s+")
_STRIP = "\"'.,;:!?()[]{}<>*=_-|/\\`~"
_MAX_WORD = 12
_MAX_TEXT = 20_000  # the first 20,000 characters carry what a filter needs
_MAILER_WORD = re.compile(r"[a-z][a-z0-9]+")
_MAILER_PIECE = re.compile(r"[a-z0-9.]+")
_MAX_RECIPIENTS = 5
_IPV4 = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.\d{1,3}\b")
_HOSTNAME = re.compile(r"\b[a-z][a-z0-9-]*(?:\.[a-z0-9-]+)+\b")
_RELAY_WORDS = ("esmtp", "smtp", "localhost", "unknown", "helo")
# Chinese, Japanese and Korean are written without spaces: pairs of characters are the words
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]{2,}")
_MAX_CJK_PAIRS = 300
_URL_PIECES = re.compile(r"[/?&=.\-_]+")
_MAX_URL_PIECE = 20  # longer pieces are ids or hashes, new in every mail
_DIGITS = re.compile(r"\d+")


def _word_tokens(text: str, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for raw in _SPLIT.split(text[:_MAX_TEXT]):
        word = raw.strip(_STRIP).lower()
        if len(word) < 3:
            continue
        if "@" in word and "." in word.rpartition("@")[2]:
            out.add(f"{prefix}email:{word.rpartition('@')[2]}")
        elif word.startswith(("http:", "https:", "www.")):
            continue  # links are read from `links`, host by host
        elif len(word) <= _MAX_WORD:
            out.add(prefix + word)
        else:
            # a long run is rarely the same twice; its first letter and length still tell
            out.add(f"{prefix}skip:{word[0]}{len(word) // 10 * 10}")
    return out


def _cjk_tokens(text: str) -> set[str]:
    out: set[str] = set()
    for run in _CJK.findall(text[:_MAX_TEXT]):
        out |= {"cjk:" + run[i : i + 2] for i in range(len(run) - 1)}
        if len(out) >= _MAX_CJK_PAIRS:
            break
    return out


def _host_tokens(host: str) -> set[str]:
    parts = host.lower().strip(".").split(".")
    out = {f"url:{host.lower()}"}
    if len(parts) >= 2:
        out.add(f"url:*.{'.'.join(parts[-2:])}")
    return out


def _link_tokens(href: str) -> set[str]:
    try:
        parts = urlsplit(href)
        host = parts.hostname
    except ValueError:  # a malformed URL (bad IPv6 bracket) says nothing about its host
        return set()
    out = _host_tokens(host) if host else set()
    for piece in _URL_PIECES.split(redact_mail(f"{parts.path}?{parts.query}")):
        if 2 < len(piece) <= _MAX_URL_PIECE:
            out.add("urlpath:" + _DIGITS.sub("#", piece.lower()))
    return out


def _relay_tokens(received: list[str]) -> set[str]:
    """Networks and domains of the nearest relays: where mail enters says who sent it."""
    out: set[str] = set()
    for line in received[:6]:
        hop = line.lower().split(";")[0]
        for a, b, c in _IPV4.findall(hop):
            out |= {f"relay:ip:{a}.{b}", f"relay:ip:{a}.{b}.{c}"}
        for host in _HOSTNAME.findall(hop):
            out.add("relay:host:" + ".".join(host.split(".")[-2:]))
        out |= {f"relay:word:{w}" for w in _RELAY_WORDS if w in hop}
    return out


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip("<> \t\"'").lower()


def _bucket(n: int) -> str:
    return "0" if n == 0 else "1" if n == 1 else "few" if n <= 5 else "many"


def _envelope_tokens(mail: ParsedEmail) -> set[str]:
    """Values bulk tools set that a person's mail program does not, or sets differently."""
    out: set[str] = set()
    if "rpath" in GROUPS:
        if not mail.return_path:
            out.add("rpath:none")
        elif mail.return_path == mail.from_address:
            out.add("rpath:same")
        elif _domain(mail.return_path) == mail.from_domain:
            out.add("rpath:same-domain")
        else:
            out.add("rpath:other")  # a bounce address elsewhere: a mailing service, or a forger
    if "cte" in GROUPS:
        out |= {f"cte:{e}" for e in mail.structure.encodings}
    if "precedence" in GROUPS:
        out.add(f"precedence:{mail.precedence or 'none'}")
    if "priority" in GROUPS:
        out.add(f"priority:{mail.priority or 'none'}")
    if "hdr-names" in GROUPS:  # which headers, not what they say: each tool has its own set
        out |= {f"hdr:{name}" for name in mail.header_names}
    if "hdr-sent" in GROUPS:  # only what the sender's side wrote
        out |= {f"hdr:{name}" for name in set(mail.header_names) - _NOT_SENT}
    if "hdr-count" in GROUPS:
        out.add(f"hdrs:{min(len(mail.header_names) // 5 * 5, 40)}")
    return out


def _html_tokens(mail: ParsedEmail) -> set[str]:
    """How the HTML is built: colours, fonts, tables, comments, pictures against text."""
    s = mail.structure
    if not s.html_parts:
        return set()
    out: set[str] = set()
    if "html-layout" in GROUPS:
        out |= {
            f"html:fonts:{_bucket(s.font_tags)}",
            f"html:colored:{_bucket(s.colored_tags)}",
            f"html:tables:{_bucket(s.tables)}",
        }
        if s.center_tags:
            out.add("html:center")
    if "html-tricks" in GROUPS:
        if s.comments:
            out.add("html:comments")
        if s.tiny_font_chars:
            out.add("html:tiny-text")
    if "html-images" in GROUPS and s.images:
        per_image = s.html_chars // s.images
        ratio = "none" if per_image < 50 else "low" if per_image < 400 else "high"
        out.add("html:img-text:" + ratio)
    return out


def _date_token(mail: ParsedEmail) -> str:
    """How long the mail took by its Date header: a mail program stamps the moment it sends,
    a spam tool often a time of its own choosing (ahead of the arrival, or days old)."""
    if not mail.date:
        return "date:none"
    try:
        sent = parsedate_to_datetime(mail.date)
    except (TypeError, ValueError, IndexError):
        return "date:unreadable"
    arrived = arrival(mail)
    if arrived is None:
        return "date:no-arrival"
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=dt.UTC)  # as the rules read it
    hours = (arrived - sent).total_seconds() / 3600
    for limit, name in ((-1, "ahead"), (0.25, "minutes"), (3, "hours"), (48, "days")):
        if hours < limit:
            return f"date:{name}"
    return "date:old"


def _header_tokens(mail: ParsedEmail) -> set[str]:
    out: set[str] = set()
    if mail.from_address:
        out.add(f"from:{mail.from_address}")
        out.add(f"from:*@{mail.from_domain}")
    else:
        out.add("from:none")
    if mail.from_name:
        out |= _word_tokens(mail.from_name, "fromname:")
    if mail.reply_to:
        same = mail.reply_to.rpartition("@")[2] == mail.from_domain
        out.add("replyto:same-domain" if same else f"replyto:*@{mail.reply_to.rpartition('@')[2]}")
    out.add(f"to:{_bucket(len(mail.to))}")
    # whom it was sent to: your own addresses' domains, or a list, or a spammer's guesses
    out |= {"to:*@" + _domain(a) for a in mail.to[:_MAX_RECIPIENTS] if _domain(a)}
    for method in ("spf", "dkim", "dmarc"):
        out.add(f"auth:{method}={getattr(mail.auth, method) or 'none'}")
    words = _MAILER_WORD.findall(mail.mailer.lower())
    out.add(f"mailer:{words[0] if words else 'none'}")
    # and its version and platform: bulk-mail programs give themselves away in them
    out |= {"mailer:" + w for w in _MAILER_PIECE.findall(mail.mailer.lower())[:4]}
    out.add(f"type:{mail.content_type or 'none'}")
    for charset in mail.structure.charsets:
        out.add(f"charset:{charset}")
    s = mail.structure
    out.add(f"images:{_bucket(s.images)}")
    out.add(f"attachments:{_bucket(s.attachments)}")
    out.add(f"received:{_bucket(len(mail.received))}")
    if s.html_only:
        out.add("shape:html-only")
    if s.hidden_chars:
        out.add("shape:hidden-text")
    if s.base64_text:
        out.add("shape:base64-text")
    if mail.in_reply_to:
        out.add("thread:reply")
    if mail.list_unsubscribe:
        out.add("list:unsubscribe")
    if not mail.message_id:
        out.add("msgid:none")
    else:
        out.add(f"msgid:@{mail.message_id.rpartition('@')[2].strip('<> ').lower()[:60]}")
    out.add(_date_token(mail))
    return out


def tokens(mail: ParsedEmail) -> list[str]:
    """The features of one mail, sorted (so a model built from them is repeatable)."""
    text, subject = redact_mail(mail.text[:_MAX_TEXT]), redact_mail(mail.subject)
    found = _word_tokens(text) | _word_tokens(subject, "subject:")
    found |= _cjk_tokens(f"{subject}\n{text}")
    found |= _header_tokens(mail) | _relay_tokens(mail.received)
    found |= _envelope_tokens(mail) | _html_tokens(mail)
    for link in mail.links[:50]:
        found |= _link_tokens(link.href)
    return sorted(found)
