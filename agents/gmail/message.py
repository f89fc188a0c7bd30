"""What the flow knows about one mail once it is parsed: `ParsedEmail` and its parts.

Kept apart from the parser so that the classifiers, the steps and the events share one
shape without importing the MIME machinery. Everything here is plain data that survives a
JSON round trip through an event.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["AuthResults", "Link", "ParsedEmail", "Structure"]


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


class Structure(BaseModel):
    """How the mail is built, as the rules need it (counts, not content)."""

    text_parts: int = 0
    html_parts: int = 0
    images: int = 0  # <img> tags plus image attachments
    attachments: int = 0
    base64_text: bool = False  # a text part sent base64 although it is plain text
    hidden_chars: int = 0  # characters of HTML text styled invisible
    tiny_font_chars: int = 0  # characters of HTML text in a font too small to read
    html_chars: int = 0  # visible characters of the HTML parts
    charsets: list[str] = Field(default_factory=list)
    charset_mismatch: bool = False  # a declared charset the bytes do not decode in
    encodings: list[str] = Field(default_factory=list)  # Content-Transfer-Encoding of text parts
    # How the HTML is built: bulk senders and spam tools leave their marks in the markup
    html_tags: int = 0
    font_tags: int = 0  # <font> elements: hand-coloured, hand-sized text
    colored_tags: int = 0  # elements setting a text or background colour
    tables: int = 0
    comments: int = 0  # <!-- --> inside the text: splits words for the reader's eye only
    center_tags: int = 0

    @property
    def html_only(self) -> bool:
        return self.html_parts > 0 and self.text_parts == 0


# The body and what only the classifiers read stay out of state and events
_NOT_KEPT = {
    "text",
    "links",
    "received",
    "structure",
    "return_path",
    "precedence",
    "priority",
    "header_names",
}


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
    mailer: str = ""  # X-Mailer or User-Agent
    content_type: str = ""  # of the whole message, e.g. multipart/alternative
    received: list[str] = Field(default_factory=list)  # Received headers, newest first
    return_path: str = ""  # the envelope sender, as the receiving server recorded it
    precedence: str = ""  # bulk, list, junk: what the sender says the mail is
    priority: str = ""  # X-Priority's leading digit: spam tools set 1 ("highest")
    # which headers the mail has (names only, lowercased): mailers and list servers each
    # write their own set
    header_names: list[str] = Field(default_factory=list)
    structure: Structure = Field(default_factory=Structure)
    # What could not be read: a header the modern parser refused, an undecodable part.
    problems: list[str] = Field(default_factory=list)

    @property
    def from_domain(self) -> str:
        return self.from_address.rpartition("@")[2]

    def metadata(self) -> dict[str, Any]:
        """What is kept in state: everything but the body and the raw header chains."""
        return self.model_dump(mode="json", exclude=_NOT_KEPT)
