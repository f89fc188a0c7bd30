"""Block Kit rendering of a Notification, with the plain-text fallback Slack shows in alerts."""

from __future__ import annotations

from typing import Any

from agents.notify.models import Notification

__all__ = ["fallback_text", "render_blocks"]

_MARK = {"low": "", "normal": "", "high": ":warning: ", "urgent": ":rotating_light: "}
# Slack's limits: header text 150 chars, section text 3000, at most 10 fields of 2000 each.
_HEADER_MAX = 150
_SECTION_MAX = 3000
_FIELDS_MAX = 10
_FIELD_MAX = 2000


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fallback_text(note: Notification) -> str:
    """What notifications, screen readers and old clients show instead of the blocks."""
    parts = [f"{_MARK[note.priority]}{note.title}", note.text]
    if note.url:
        parts.append(note.url)
    return _cut("\n".join(p for p in parts if p), 4000)


def render_blocks(note: Notification) -> list[dict[str, Any]]:
    title = _cut(f"{_MARK[note.priority]}{note.title}", _HEADER_MAX)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}}
    ]
    if note.text:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _cut(escape(note.text), _SECTION_MAX)},
            }
        )
    if note.fields:
        fields = [
            {"type": "mrkdwn", "text": _cut(f"*{escape(k)}*\n{escape(v)}", _FIELD_MAX)}
            for k, v in list(note.fields.items())[:_FIELDS_MAX]
        ]
        blocks.append({"type": "section", "fields": fields})
    if note.url:
        # A link in a context block needs no interactivity endpoint, unlike a button.
        link = f"<{escape(note.url)}|Open>"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": link}]})
    return blocks
