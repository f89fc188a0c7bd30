"""Phone push: ntfy, Pushover, and a generic JSON webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
from email.header import Header
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from agents.llm.state import StateLike
from agents.notify.models import Notification, NotifyError
from agents.notify.retrying import post_with_retries
from agents.notify.settings import NotifySettings

if TYPE_CHECKING:
    import httpx

__all__ = ["NtfyNotifier", "PushoverNotifier", "WebhookNotifier"]

_NTFY_PRIORITY = {"low": "2", "normal": "3", "high": "4", "urgent": "5"}
_NTFY_TAGS = {"low": "", "normal": "", "high": "warning", "urgent": "rotating_light"}
_PUSHOVER_PRIORITY = {"low": "-1", "normal": "0", "high": "1", "urgent": "2"}


def _body(note: Notification) -> str:
    lines = [note.text] + [f"{k}: {v}" for k, v in note.fields.items()]
    return "\n".join(line for line in lines if line)


def _header_value(text: str) -> str:
    """HTTP headers are latin-1; ntfy decodes RFC 2047 words, so emoji titles survive."""
    text = " ".join(text.split())
    return text if text.isascii() else Header(text, "utf-8").encode()


def _host(url: str) -> str:
    return urlsplit(url).hostname or "the configured URL"


def _reason(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(data, dict):
        detail = data.get("error") or data.get("errors") or data.get("message")
        if detail:
            return f"HTTP {response.status_code}: {str(detail)[:200]}"
    return f"HTTP {response.status_code}"


def _json_field(response: httpx.Response, name: str) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    value = data.get(name) if isinstance(data, dict) else None
    return str(value) if value else None


class NtfyNotifier:
    """POST {NTFY_URL}/{topic} with the text as body and the rest as headers."""

    name = "ntfy"

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    async def send(self, note: Notification, state: StateLike | None = None) -> str | None:
        s = self.settings
        headers = {"Title": _header_value(note.title), "Priority": _NTFY_PRIORITY[note.priority]}
        if _NTFY_TAGS[note.priority]:
            headers["Tags"] = _NTFY_TAGS[note.priority]
        if note.url:
            # Header values must be ASCII: percent-encode any other characters of the link.
            headers["Click"] = quote(note.url, safe=":/?#[]@!$&'()*+,;=%~")
        if s.ntfy_token is not None:
            headers["Authorization"] = f"Bearer {s.ntfy_token.get_secret_value()}"
        url = f"{s.ntfy_url.rstrip('/')}/{s.ntfy_topic}"
        response = await post_with_retries(
            "ntfy",
            _host(s.ntfy_url),
            url,
            retries=s.http_retries,
            timeout=s.timeout,
            content=_body(note).encode("utf-8"),
            headers=headers,
        )
        if response.status_code in (401, 403):
            raise NotifyError(
                f"ntfy refused the topic ({response.status_code}): check NTFY_TOKEN and the "
                "topic's access rights",
                provider="ntfy",
                permanent=True,
            )
        if response.status_code >= 400:
            raise NotifyError(
                f"ntfy did not take the message: {_reason(response)}", provider="ntfy"
            )
        return _json_field(response, "id")


class PushoverNotifier:
    """POST a form to {PUSHOVER_API_URL}/1/messages.json."""

    name = "pushover"

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    async def send(self, note: Notification, state: StateLike | None = None) -> str | None:
        s = self.settings
        assert s.pushover_token is not None and s.pushover_user is not None
        form = {
            "token": s.pushover_token.get_secret_value(),
            "user": s.pushover_user.get_secret_value(),
            "title": note.title[:250],
            "message": _body(note)[:1024] or note.title[:1024],
            "priority": _PUSHOVER_PRIORITY[note.priority],
        }
        if note.url:
            form["url"] = note.url[:512]
        if note.priority == "urgent":
            # Emergency priority must say how often and how long to repeat until acknowledged.
            form.update({"retry": "60", "expire": "3600"})
        url = f"{s.pushover_api_url.rstrip('/')}/1/messages.json"
        response = await post_with_retries(
            "pushover",
            _host(s.pushover_api_url),
            url,
            retries=s.http_retries,
            timeout=s.timeout,
            data=form,
        )
        if 400 <= response.status_code < 500:
            # Pushover names the bad field ("application token is invalid", "user key is invalid").
            raise NotifyError(
                f"Pushover rejected the message: {_reason(response)}: check PUSHOVER_TOKEN and "
                "PUSHOVER_USER",
                provider="pushover",
                permanent=response.status_code != 429,
            )
        if response.status_code >= 500:
            raise NotifyError(f"Pushover is failing: {_reason(response)}", provider="pushover")
        return _json_field(response, "request")


class WebhookNotifier:
    """POST the notification as JSON; signed with HMAC-SHA256 when a secret is set."""

    name = "webhook"

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    async def send(self, note: Notification, state: StateLike | None = None) -> str | None:
        s = self.settings
        assert s.push_webhook_url is not None
        url = s.push_webhook_url.get_secret_value()
        body = json.dumps(note.model_dump(), separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "stepline-notify"}
        if s.push_webhook_secret is not None:
            key = s.push_webhook_secret.get_secret_value().encode("utf-8")
            digest = hmac.new(key, body, hashlib.sha256).hexdigest()
            headers["X-Stepline-Signature"] = f"sha256={digest}"
        response = await post_with_retries(
            "webhook",
            _host(url),
            url,
            retries=s.http_retries,
            timeout=s.timeout,
            content=body,
            headers=headers,
        )
        if response.status_code >= 400:
            raise NotifyError(
                f"the push webhook at {_host(url)} answered HTTP {response.status_code}: "
                "check PUSH_WEBHOOK_URL",
                provider="webhook",
                permanent=response.status_code in (401, 403, 404, 410),
            )
        return None
