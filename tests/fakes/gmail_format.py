"""How the loopback Gmail renders what it stores: a `users.messages` resource in each
format, the `full` MIME payload and Google's error body. Apart from the server so each stays
under 400 lines; the shapes are Gmail's documented ones."""

from __future__ import annotations

import base64
import email
import email.policy
from email.message import Message
from typing import TYPE_CHECKING, Any

from tests.fakes.common import Reply

if TYPE_CHECKING:
    from tests.fakes.gmail_server import StoredMessage

__all__ = ["b64url", "full_payload", "gmail_error", "message_resource"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def gmail_error(status: int, message: str, reason: str, state: str) -> Reply:
    body = {
        "error": {
            "code": status,
            "message": message,
            "status": state,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }
    }
    return Reply.json(body, status=status)


def message_resource(msg: StoredMessage, fmt: str, wanted: set[str]) -> dict[str, Any] | None:
    """`users.messages.get` in format `fmt` (`full`, `metadata` with the `wanted` headers, or
    `raw`); None for a format Gmail does not know."""
    body: dict[str, Any] = {
        "id": msg.id,
        "threadId": msg.thread_id,
        "labelIds": msg.label_ids,
        "snippet": "",
        "historyId": str(msg.history_id),
        "internalDate": str(msg.internal_date_ms),
        "sizeEstimate": len(msg.raw),
    }
    if fmt == "raw":  # as stored: Gmail serves any bytes it accepted, parseable or not
        body["raw"] = b64url(msg.raw)
        return body
    parsed = email.message_from_bytes(msg.raw, policy=email.policy.compat32)
    if fmt == "metadata":
        headers = [
            {"name": k, "value": str(v)}
            for k, v in parsed.items()
            if not wanted or k.lower() in wanted
        ]
        body["payload"] = {"mimeType": parsed.get_content_type(), "headers": headers}
    elif fmt == "full":
        body["payload"] = full_payload(parsed, "")
    else:
        return None
    return body


def full_payload(part: Message, part_id: str) -> dict[str, Any]:
    """Gmail's `full` payload: a MIME tree with bodies decoded then base64url-encoded."""
    node: dict[str, Any] = {
        "partId": part_id,
        "mimeType": part.get_content_type(),
        "filename": part.get_filename() or "",
        "headers": [{"name": k, "value": str(v)} for k, v in part.items()],
    }
    if part.is_multipart():
        subparts = part.get_payload()
        assert isinstance(subparts, list)
        node["body"] = {"size": 0}
        node["parts"] = [
            full_payload(p, f"{part_id}.{i}" if part_id else str(i)) for i, p in enumerate(subparts)
        ]
    else:
        decoded = part.get_payload(decode=True)  # bytes for a leaf part (None when empty)
        data = decoded if isinstance(decoded, bytes) else b""
        node["body"] = {"size": len(data), "data": b64url(data)}
    return node
