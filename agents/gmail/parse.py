"""Turn a mail into `ParsedEmail`: from raw RFC 822 bytes (`.eml`, Gmail `format=raw`) or from
Gmail's `format=full` JSON. Bodies are decoded (base64, quoted-printable, base64url for Gmail
JSON) in their declared charset; HTML is reduced to text, keeping its links for the spam rules.
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "AuthResults",
    "Link",
    "ParsedEmail",
    "b64url_decode",
    "html_to_text",
    "parse_auth_results",
    "parse_gmail_full",
    "parse_raw",
    "with_gmail_fields",
]

MAX_TEXT = 50_000  # characters of body text kept; enough for any classifier, bounds event size

_BLOCK_TAGS = {
    "p",
    "div",
    "br",
    "li",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "ul",
    "ol",
    "blockquote",
    "section",
    "article",
    "header",
    "footer",
    "hr",
    "title",
}


class Link(BaseModel):
    href: str
    text: str = ""


class AuthResults(BaseModel):
    """The receiving server's verdicts; `None` when the mail carries no result for a method."""

    spf: str | None = None
    dkim: str | None = None
    dmarc: str | None = None

    @property
    def failed(self) -> list[str]:
        bad = {"fail", "softfail", "permerror"}
        return [m for m in ("spf", "dkim", "dmarc") if getattr(self, m) in bad]

    @property
    def passed(self) -> bool:
        """Authenticated: DMARC passed, or SPF and DKIM both passed, and nothing failed."""
        if self.failed:
            return False
        return self.dmarc == "pass" or (self.spf == "pass" and self.dkim == "pass")


class ParsedEmail(BaseModel):
    id: str = ""
    thread_id: str = ""
    source: str = "gmail"
    from_address: str = ""
    from_name: str = ""
    reply_to: str = ""
    to: list[str] = Field(default_factory=list)
    subject: str = ""
    date: str = ""
    message_id: str = ""
    in_reply_to: str = ""
    text: str = ""
    links: list[Link] = Field(default_factory=list)
    auth: AuthResults = Field(default_factory=AuthResults)
    label_ids: list[str] = Field(default_factory=list)
    internal_date_ms: int | None = None
    list_unsubscribe: bool = False

    @property
    def from_domain(self) -> str:
        return self.from_address.rpartition("@")[2]

    def metadata(self) -> dict[str, Any]:
        """What is kept in state: everything but the body."""
        return self.model_dump(mode="json", exclude={"text", "links"})


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[Link] = []
        self._skip = 0
        self._href: str | None = None
        self._anchor: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag == "a":
            self._href = dict(attrs).get("href") or None
            self._anchor = []
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head") and self._skip:
            self._skip -= 1
        elif tag == "a" and self._href is not None:
            self.links.append(Link(href=self._href, text=" ".join("".join(self._anchor).split())))
            self._href = None
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.parts.append(data)
        if self._href is not None:
            self._anchor.append(data)


def html_to_text(html: str) -> tuple[str, list[Link]]:
    """Visible text (scripts and styles dropped, blocks on their own lines) and the anchors."""
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    text = "\n".join(line for line in lines if line)
    return text, parser.links


_URL = re.compile(r"https?://[^\s<>\"')\]]+", re.IGNORECASE)


def _text_links(text: str) -> list[Link]:
    return [Link(href=m.group(0).rstrip(".,;")) for m in _URL.finditer(text)]


def b64url_decode(data: str) -> bytes:
    """Gmail's base64url without padding, tolerant of padding and whitespace."""
    data = "".join(data.split())
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


_RESULT = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)


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


def _decode_part(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, UnicodeDecodeError):
        # an unknown or lying charset: decode the bytes leniently rather than drop the body
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", errors="replace")
    return content if isinstance(content, str) else ""


def _bodies(msg: EmailMessage) -> tuple[str, list[Link]]:
    plain: list[str] = []
    html: list[str] = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain":
            plain.append(_decode_part(part))
        elif ctype == "text/html":
            html.append(_decode_part(part))
    links: list[Link] = []
    html_text = ""
    if html:
        html_text, links = html_to_text("\n".join(html))
    text = "\n".join(plain).replace("\r\n", "\n").strip() or html_text
    if not links:
        links = _text_links(text)
    return text[:MAX_TEXT], links


def _addr(value: str | None) -> tuple[str, str]:
    name, address = parseaddr(str(value or ""))
    return name, address.lower()


def _from_headers(get: Any, text: str, links: list[Link]) -> ParsedEmail:
    from_name, from_address = _addr(get("From"))
    auth_headers = get("Authentication-Results")
    return ParsedEmail(
        from_address=from_address,
        from_name=from_name,
        reply_to=_addr(get("Reply-To"))[1],
        to=[a.lower() for _, a in getaddresses([str(get("To") or "")]) if a],
        subject=" ".join(str(get("Subject") or "").split()),
        date=str(get("Date") or ""),
        message_id=str(get("Message-ID") or "").strip(),
        in_reply_to=str(get("In-Reply-To") or get("References") or "").strip(),
        text=text,
        links=links,
        auth=parse_auth_results(auth_headers, get("Received-SPF")),
        list_unsubscribe=bool(get("List-Unsubscribe")),
    )


def parse_raw(raw: bytes) -> ParsedEmail:
    """Parse RFC 822 bytes (an `.eml` file or Gmail's decoded `raw`)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    text, links = _bodies(msg)
    return _from_headers(msg.get, text, links)


def _decode_words(value: str) -> str:
    """Undo RFC 2047 encoded words (`=?utf-8?b?...?=`) that may be left in Gmail's JSON."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, UnicodeDecodeError, ValueError):
        return value


def _walk_payload(part: dict[str, Any], plain: list[str], html: list[str]) -> None:
    mime = part.get("mimeType", "")
    for sub in part.get("parts") or []:
        _walk_payload(sub, plain, html)
    data = (part.get("body") or {}).get("data")
    if not data or part.get("filename"):
        return
    headers = {h["name"].lower(): h["value"] for h in part.get("headers") or []}
    charset = "utf-8"
    match = re.search(r'charset="?([\w.-]+)', headers.get("content-type", ""), re.IGNORECASE)
    if match:
        charset = match.group(1)
    raw = b64url_decode(data)
    try:
        decoded = raw.decode(charset)
    except (LookupError, UnicodeDecodeError):
        decoded = raw.decode("utf-8", errors="replace")
    if mime == "text/plain":
        plain.append(decoded)
    elif mime == "text/html":
        html.append(decoded)


def parse_gmail_full(message: dict[str, Any]) -> ParsedEmail:
    """Parse a Gmail API message fetched with `format=full` (bodies already MIME-decoded)."""
    payload = message.get("payload") or {}
    first: dict[str, str] = {}
    for h in payload.get("headers") or []:
        first.setdefault(h["name"].lower(), _decode_words(h["value"]))
    plain: list[str] = []
    html: list[str] = []
    _walk_payload(payload, plain, html)
    links: list[Link] = []
    html_text = ""
    if html:
        html_text, links = html_to_text("\n".join(html))
    text = ("\n".join(plain).replace("\r\n", "\n").strip() or html_text)[:MAX_TEXT]
    if not links:
        links = _text_links(text)
    parsed = _from_headers(lambda name: first.get(name.lower()), text, links)
    return with_gmail_fields(parsed, message)


def with_gmail_fields(parsed: ParsedEmail, message: dict[str, Any]) -> ParsedEmail:
    """Add the ids, labels and arrival time Gmail keeps beside the message itself."""
    internal = message.get("internalDate")
    return parsed.model_copy(
        update={
            "id": message.get("id", ""),
            "thread_id": message.get("threadId", ""),
            "label_ids": list(message.get("labelIds") or []),
            "internal_date_ms": int(internal) if internal else None,
        }
    )
