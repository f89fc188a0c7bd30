"""HTML mail reduced to the text a reader sees, its links, and what it hides.

Spam hides words from the reader (invisible or microscopic text meant for filters) and sends
pictures instead of text, so besides the visible text this counts hidden and tiny characters
and images. The parser is the stdlib's tolerant `HTMLParser`: broken markup never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from agents.gmail.message import Link

__all__ = ["HtmlText", "html_to_text", "read_html"]

_BLOCK_TAGS = frozenset(
    [
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
    ]
)
_VOID_TAGS = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "wbr",
    ]
)
_SKIP_TAGS = frozenset({"script", "style", "head"})
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:\.\d+)?\s*(?:px|pt|em)?\s*(?:;|$)",
    re.IGNORECASE,
)
_TINY_STYLE = re.compile(r"font-size\s*:\s*(?:[0-3](?:\.\d+)?)\s*(?:px|pt)\b", re.IGNORECASE)
_COLOR_STYLE = re.compile(r"(?:^|;|\s)(?:background-)?color\s*:", re.IGNORECASE)
_MAX_DEPTH = 200  # deeper nesting is counted as flat: bounds the stack on hostile markup


@dataclass
class HtmlText:
    text: str
    links: list[Link]
    images: int = 0
    hidden_chars: int = 0
    tiny_chars: int = 0
    tags: int = 0
    fonts: int = 0
    colored: int = 0
    tables: int = 0
    comments: int = 0
    centers: int = 0


@dataclass
class _Frame:
    tag: str
    hidden: bool
    tiny: bool


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[Link] = []
        self.images = 0
        self.hidden_chars = 0
        self.tiny_chars = 0
        self.tags = self.fonts = self.colored = self.tables = self.comments = self.centers = 0
        self._skip = 0
        self._href: str | None = None
        self._anchor: list[str] = []
        self._stack: list[_Frame] = []

    def _flags(self) -> tuple[bool, bool]:
        top = self._stack[-1] if self._stack else None
        return (top.hidden, top.tiny) if top else (False, False)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self._count(tag, values)
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "a":
            self._href = values.get("href") or None
            self._anchor = []
        elif tag == "img":
            self.images += 1
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")
        if tag in _VOID_TAGS or len(self._stack) >= _MAX_DEPTH:
            return
        hidden, tiny = self._flags()
        style = values.get("style", "")
        hidden = hidden or bool(_HIDDEN_STYLE.search(style)) or "hidden" in values
        size = values.get("size", "").strip() if tag == "font" else ""
        tiny = tiny or bool(_TINY_STYLE.search(style)) or size in ("0", "1", "-2", "-3")
        self._stack.append(_Frame(tag, hidden, tiny))

    def _count(self, tag: str, values: dict[str, str]) -> None:
        self.tags += 1
        self.fonts += tag == "font"
        self.tables += tag == "table"
        self.centers += tag == "center"
        style = values.get("style", "")
        self.colored += bool("color" in values or "bgcolor" in values or _COLOR_STYLE.search(style))

    def handle_comment(self, data: str) -> None:
        if not self._skip:
            self.comments += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS and self._skip:
            self._skip -= 1
        elif tag == "a" and self._href is not None:
            self.links.append(Link(href=self._href, text=" ".join("".join(self._anchor).split())))
            self._href = None
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i].tag == tag:  # close it and whatever was left open inside it
                del self._stack[i:]
                break

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        hidden, tiny = self._flags()
        visible = len(data.strip())
        if hidden:
            self.hidden_chars += visible
            return
        if tiny:
            self.tiny_chars += visible
        self.parts.append(data)
        if self._href is not None:
            self._anchor.append(data)


def read_html(html: str) -> HtmlText:
    """Visible text (scripts, styles and hidden elements dropped, blocks on their own lines),
    the anchors, the counts of images, hidden and tiny characters, and of the markup."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    lines = (" ".join(line.split()) for line in "".join(reader.parts).split("\n"))
    text = "\n".join(line for line in lines if line)
    r = reader
    return HtmlText(
        text,
        r.links,
        r.images,
        r.hidden_chars,
        r.tiny_chars,
        r.tags,
        r.fonts,
        r.colored,
        r.tables,
        r.comments,
        r.centers,
    )


def html_to_text(html: str) -> tuple[str, list[Link]]:
    """Visible text and the anchors of an HTML body."""
    out = read_html(html)
    return out.text, out.links
