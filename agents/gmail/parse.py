"""Turn a mail into `ParsedEmail`, from raw RFC 822 bytes (`.eml`, Gmail `format=raw`) or from
Gmail's `format=full` JSON, without ever raising.

Real spam breaks parsers: the stdlib's modern header parser raises on some malformed headers
(an `IndexError` on a broken `Message-ID`), charsets lie, parts are truncated. Every mail that
arrives must still be triaged, so each header the modern parser refuses is read from its raw
text, a message it cannot walk is read again with the `compat32` policy, and as a last resort
the bytes are split into headers and body by hand (at once for a MIME tree too deep to parse
in reasonable time). A multipart mail whose boundary is not in
its body is read as one plain text part. What could not be read is listed in
`ParsedEmail.problems`, never raised.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import re
from collections.abc import Callable, Iterable
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr
from typing import Any

from agents.gmail.html import html_to_text, read_html
from agents.gmail.message import AuthResults, Link, ParsedEmail, Structure

__all__ = [
    "AuthResults",
    "Link",
    "ParsedEmail",
    "Structure",
    "b64url_decode",
    "html_to_text",
    "parse_auth_results",
    "parse_gmail_full",
    "parse_raw",
    "with_gmail_fields",
]

MAX_TEXT = 50_000  # characters of body text kept; enough for any classifier, bounds event size
_MAX_RECEIVED = 12
_MAX_HEADER = 1_000
_HEADER_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,59}")  # RFC 5322 allows more; mail uses these
_MAX_HEADER_NAMES = 60
_URL = re.compile(r"https?://[^\s<>\"')\]]+", re.IGNORECASE)
_RESULT = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)
_FOLD = re.compile(r"\r?\n[ \t]+")
# Real mail nests a few MIME containers; the stdlib parsers recurse per level and take seconds
# of CPU (holding the GIL) on a tree a thousand deep before they fail, so past this many
# containers the mail is read as raw text without trying them.
MAX_CONTAINERS = 200
_CONTAINER = re.compile(
    rb"^content-type:[ \t]*(?:multipart|message)/", re.IGNORECASE | re.MULTILINE
)

Getter = Callable[[str], str | None]


def _text_links(text: str) -> list[Link]:
    return [Link(href=m.group(0).rstrip(".,;")) for m in _URL.finditer(text)]


def b64url_decode(data: str) -> bytes:
    """Gmail's base64url without padding, tolerant of padding and whitespace."""
    data = "".join(data.split())
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def parse_auth_results(header: str | None, received_spf: str | None = None) -> AuthResults:
    """Read SPF/DKIM/DMARC verdicts from one Authentication-Results header.

    Only the topmost header is trusted: the receiving server adds it above anything the sender
    wrote, and a forged header lower down must not whitelist a spoofed sender.
    """
    found: dict[str, str] = {}
    for method, verdict in _RESULT.findall(header or ""):
        found.setdefault(method.lower(), verdict.lower())
    if "spf" not in found and received_spf:
        word = received_spf.strip().split(None, 1)
        if word:
            found["spf"] = word[0].lower()
    return AuthResults(**found)


def _decode_words(value: str) -> str:
    """Undo RFC 2047 encoded words (`=?utf-8?b?...?=`) left in a raw or compat32 header."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, UnicodeError, ValueError, binascii.Error):
        return value


def _clean(value: str) -> str:
    # surrogateescape'd bytes (compat32 keeps undecodable octets that way) cannot be stored
    return value.encode("utf-8", "replace").decode("utf-8")[:_MAX_HEADER]


class _Headers:
    """Header access that never raises: a value the modern parser refuses is read raw."""

    def __init__(self, msg: Message, problems: list[str]) -> None:
        self.msg, self.problems = msg, problems

    def raw_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [
            _clean(_FOLD.sub(" ", str(v)).strip())
            for k, v in self.msg.raw_items()
            if k.lower() == wanted
        ]

    def get(self, name: str) -> str | None:
        try:
            value = self.msg.get(name)
            return None if value is None else _clean(_decode_words(str(value)))
        except Exception as exc:  # the header parser raises anything on junk
            self.problems.append(
                f"{name} header unreadable by the mail parser ({exc.__class__.__name__}); "
                "read as raw text"
            )
        raw = self.raw_all(name)
        return _decode_words(raw[0]) if raw else None


def _addr(value: str | None) -> tuple[str, str]:
    try:
        name, address = parseaddr(str(value or ""))
    except (IndexError, ValueError, TypeError):
        return "", ""
    return name, address.lower()


def _recipients(value: str | None) -> list[str]:
    try:
        return [a.lower() for _, a in getaddresses([str(value or "")]) if a][:100]
    except (IndexError, ValueError, TypeError):
        return []


def _first_word(value: str | None) -> str:
    words = str(value or "").lower().split()
    return words[0].strip("\"'();,")[:20] if words else ""


def _header_names(names: Iterable[Any]) -> list[str]:
    """The distinct header names present, lowercased; junk that is no header name is left out."""
    found = {str(n).strip().lower() for n in names if n}
    return sorted(n for n in found if _HEADER_NAME.fullmatch(n))[:_MAX_HEADER_NAMES]


def _from_headers(
    get: Getter, text: str, links: list[Link], received: list[str], problems: list[str]
) -> dict[str, Any]:
    from_name, from_address = _addr(get("From"))
    return {
        "from_address": from_address,
        "from_name": from_name,
        "reply_to": _addr(get("Reply-To"))[1],
        "to": _recipients(get("To")),
        "subject": " ".join(str(get("Subject") or "").split()),
        "date": str(get("Date") or ""),
        "message_id": str(get("Message-ID") or "").strip(),
        "in_reply_to": str(get("In-Reply-To") or get("References") or "").strip(),
        "text": text,
        "links": links,
        "auth": parse_auth_results(get("Authentication-Results"), get("Received-SPF")),
        "list_unsubscribe": bool(get("List-Unsubscribe")),
        "mailer": str(get("X-Mailer") or get("User-Agent") or "")[:200],
        "received": received[:_MAX_RECEIVED],
        "return_path": _addr(get("Return-Path"))[1][:200],
        "precedence": _first_word(get("Precedence")),
        "priority": _first_word(get("X-Priority"))[:1],
        "problems": problems,
    }


def _decode_payload(payload: bytes, charset: str, out: Structure, problems: list[str]) -> str:
    """The part's text. Read in another charset than the one declared, the text is a guess
    (it may read wrong), so that is named in `problems` like an unknown charset is."""
    try:
        return payload.decode(charset)
    except LookupError:
        why = f"unknown charset {charset[:40]!r}"
    except UnicodeDecodeError:
        out.charset_mismatch = True  # the declared charset is a lie (or the part is damaged)
        why = f"text not in its declared charset {charset[:40]!r}"
    try:
        text = payload.decode("utf-8")
        problems.append(f"{why}; part read as UTF-8")
    except UnicodeDecodeError:
        text = payload.decode("cp1252", errors="replace")
        lost = text.count("\ufffd")
        problems.append(f"{why}; part read as cp1252{f', {lost} bytes unreadable' if lost else ''}")
    return text


def _read_part(part: Message, out: Structure, problems: list[str]) -> tuple[str, str] | None:
    """(content type, text) of a text part, or None for anything else (counted in `out`)."""
    ctype = part.get_content_type()
    disposition = part.get_content_disposition()
    if ctype.startswith("image/"):
        out.images += 1
    if disposition == "attachment" or part.get_filename():
        out.attachments += 1
        return None
    if ctype.startswith("multipart/") and not part.is_multipart():
        # the declared boundary is not in the body (spam tools get it wrong): the parts
        # cannot be split, but the body is still what the reader sees
        problems.append("MIME boundary not found; the body was read as plain text")
        ctype = "text/plain"
    if ctype not in ("text/plain", "text/html"):
        return None
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return None
    charset = (part.get_content_charset() or "us-ascii").lower()
    out.charsets = sorted({*out.charsets, charset[:40]})[:10]
    text = _decode_payload(payload, charset, out, problems)
    cte = _first_word(str(part.get("Content-Transfer-Encoding", "")))
    out.encodings = sorted({*out.encodings, cte or "none"})[:5]
    if cte == "base64" and ctype == "text/plain" and text.isascii():
        out.base64_text = True  # plain ASCII needs no base64: a filter dodge
    return ctype, text


def _read_message(msg: Message, problems: list[str]) -> ParsedEmail:
    out = Structure()
    plain: list[str] = []
    html: list[str] = []
    for n, part in enumerate(msg.walk()):
        if part.is_multipart():
            continue
        try:
            read = _read_part(part, out, problems)
        except Exception as exc:  # one damaged part must not lose the mail
            problems.append(f"MIME part {n} skipped ({exc.__class__.__name__})")
            continue
        if read is not None:
            (plain if read[0] == "text/plain" else html).append(read[1])
    out.text_parts, out.html_parts = len(plain), len(html)
    links: list[Link] = []
    html_text = ""
    if html:
        seen = read_html("\n".join(html))
        html_text, links = seen.text, seen.links
        out.images += seen.images
        out.hidden_chars, out.tiny_font_chars = seen.hidden_chars, seen.tiny_chars
        out.html_chars = len(seen.text)
        out.html_tags, out.font_tags, out.colored_tags = seen.tags, seen.fonts, seen.colored
        out.tables, out.comments, out.center_tags = seen.tables, seen.comments, seen.centers
    text = "\n".join(plain).replace("\r\n", "\n").strip() or html_text
    if not links:
        links = _text_links(text)
    headers = _Headers(msg, problems)
    fields = _from_headers(
        headers.get, text[:MAX_TEXT], links, headers.raw_all("Received"), problems
    )
    fields["header_names"] = _header_names(k for k, _ in msg.raw_items())
    return ParsedEmail(**fields, content_type=msg.get_content_type(), structure=out)


def _read_raw_text(raw: bytes, problems: list[str]) -> ParsedEmail:
    """The last resort: headers and body split by hand, the body taken as text."""
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    found: dict[str, list[str]] = {}
    for line in _FOLD.sub(" ", head).split("\n"):
        name, colon, value = line.partition(":")
        if colon and name and " " not in name:
            found.setdefault(name.strip().lower(), []).append(_clean(value.strip()))

    def get(name: str) -> str | None:
        values = found.get(name.lower())
        return _decode_words(values[0]) if values else None

    body = body.strip()[:MAX_TEXT]
    fields = _from_headers(get, body, _text_links(body), found.get("received", []), problems)
    fields["header_names"] = _header_names(found)
    return ParsedEmail(**fields)


def parse_raw(raw: bytes) -> ParsedEmail:
    """Parse RFC 822 bytes (an `.eml` file or Gmail's decoded `raw`). Never raises."""
    problems: list[str] = []
    containers = len(_CONTAINER.findall(raw))
    if containers > MAX_CONTAINERS:
        problems.append(
            f"{containers} nested MIME parts (more than {MAX_CONTAINERS}): read as raw text"
        )
        return _read_raw_text(raw, problems)
    readers = (("modern", email.policy.default), ("compat32", email.policy.compat32))
    for name, policy in readers:
        try:
            mail = _read_message(email.message_from_bytes(raw, policy=policy), problems)
        except Exception as exc:  # any failure means: try the next reader
            problems.append(f"the {name} mail parser failed ({exc.__class__.__name__})")
            continue
        mail.problems = list(dict.fromkeys(problems))  # a retry may report a part twice
        return mail
    problems.append("read as raw text")
    return _read_raw_text(raw, list(dict.fromkeys(problems)))


def _walk_payload(
    part: dict[str, Any], plain: list[str], html: list[str], problems: list[str]
) -> None:
    mime = str(part.get("mimeType", ""))
    for sub in part.get("parts") or []:
        if isinstance(sub, dict):
            _walk_payload(sub, plain, html, problems)
    data = (part.get("body") or {}).get("data")
    if not data or part.get("filename"):
        return
    headers = _named(part.get("headers"))
    charset = "utf-8"
    match = re.search(r'charset="?([\w.-]+)', headers.get("content-type", ""), re.IGNORECASE)
    if match:
        charset = match.group(1)
    try:
        raw = b64url_decode(str(data))
    except (binascii.Error, ValueError):
        problems.append(f"{mime[:40] or 'a'} part is not base64; skipped")
        return
    try:
        decoded = raw.decode(charset)
    except (LookupError, UnicodeDecodeError):
        decoded = raw.decode("utf-8", errors="replace")
    if mime == "text/plain":
        plain.append(decoded)
    elif mime == "text/html":
        html.append(decoded)


def _named(headers: Any) -> dict[str, str]:
    """Gmail's [{name, value}] headers, first of each name; entries without a name skipped."""
    found: dict[str, str] = {}
    for h in headers if isinstance(headers, list) else []:
        if isinstance(h, dict) and h.get("name"):
            found.setdefault(str(h["name"]).lower(), _clean(str(h.get("value") or "")))
    return found


def parse_gmail_full(message: dict[str, Any]) -> ParsedEmail:
    """Parse a Gmail API message fetched with `format=full` (bodies already MIME-decoded).
    Never raises: a body that is not base64 is skipped and named in `problems`."""
    payload = message.get("payload") or {}
    listed = payload.get("headers")
    headers: list[Any] = listed if isinstance(listed, list) else []
    first = {k: _decode_words(v) for k, v in _named(headers).items()}
    received = [
        _clean(str(h.get("value") or ""))
        for h in headers
        if isinstance(h, dict) and str(h.get("name") or "").lower() == "received"
    ]
    plain: list[str] = []
    html: list[str] = []
    problems: list[str] = []
    _walk_payload(payload, plain, html, problems)
    links: list[Link] = []
    html_text = ""
    if html:
        html_text, links = html_to_text("\n".join(html))
    text = ("\n".join(plain).replace("\r\n", "\n").strip() or html_text)[:MAX_TEXT]
    if not links:
        links = _text_links(text)
    fields = _from_headers(lambda name: first.get(name.lower()), text, links, received, problems)
    fields["header_names"] = _header_names(h.get("name") for h in headers if isinstance(h, dict))
    structure = Structure(text_parts=len(plain), html_parts=len(html))
    ctype = str(payload.get("mimeType", ""))
    parsed = ParsedEmail(**fields, content_type=ctype, structure=structure)
    return with_gmail_fields(parsed, message)


def with_gmail_fields(parsed: ParsedEmail, message: dict[str, Any]) -> ParsedEmail:
    """Add the ids, labels and arrival time Gmail keeps beside the message itself."""
    internal = str(message.get("internalDate") or "")
    return parsed.model_copy(
        update={
            "id": message.get("id", ""),
            "thread_id": message.get("threadId", ""),
            "label_ids": list(message.get("labelIds") or []),
            "internal_date_ms": int(internal) if internal.isdigit() else None,
        }
    )
