"""Loopback stand-ins for the phone-push services: ntfy, Pushover, and a JSON webhook receiver.

- `FakeNtfy`: `POST /{topic}`, message in the body, `Title`/`Priority`/`Tags`/`Click` headers
  (RFC 2047 encoded words decoded as ntfy does), optional `Authorization: Bearer <token>`;
  answers the message JSON ntfy publishes (`id`, `time`, `event`, `topic`, ...).
- `FakePushover`: `POST /1/messages.json` as a form; checks token, user, message and the
  emergency-priority rules, answering `{"status": 1, "request": ...}` or Pushover's errors.
- `FakeWebhook`: `POST /hooks/<name>` taking JSON, checking an HMAC signature when given one.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from email.header import decode_header, make_header
from typing import Any

from tests.fakes.common import FakeRequest, FakeService, Reply

__all__ = ["FakeNtfy", "FakePushover", "FakeWebhook"]

_ids = itertools.count(1)


class FakeNtfy(FakeService):
    def __init__(self, token: str | None = None) -> None:
        super().__init__()
        self.token = token
        self.published: list[dict[str, Any]] = []
        self.route("POST", r"/(?P<topic>[-_A-Za-z0-9]{1,64})", self.publish)
        self.route("PUT", r"/(?P<topic>[-_A-Za-z0-9]{1,64})", self.publish)

    def not_found(self, req: FakeRequest) -> Reply:
        return Reply.json({"code": 40401, "http": 404, "error": "page not found"}, status=404)

    def publish(self, req: FakeRequest, topic: str) -> Reply:
        sent = req.headers.get("authorization")
        if self.token is not None and sent != f"Bearer {self.token}":
            # Like ntfy: a token it does not know is 401; no token on a protected topic is 403.
            if sent:
                return Reply.json({"code": 40101, "http": 401, "error": "unauthorized"}, 401)
            body = {"code": 40301, "http": 403, "error": "forbidden"}
            return Reply.json(body, status=403)
        priority = req.headers.get("priority", "3")
        if priority not in {
            "1",
            "2",
            "3",
            "4",
            "5",
            "min",
            "low",
            "default",
            "high",
            "max",
            "urgent",
        }:
            body = {"code": 40007, "http": 400, "error": "invalid priority"}
            return Reply.json(body, status=400)
        title = req.headers.get("title")
        message = {
            "id": f"ntfy{next(_ids):08d}",
            "time": 1_700_000_000,
            "event": "message",
            "topic": topic,
            "message": req.text or "triggered",
            "title": str(make_header(decode_header(title))) if title else None,
            "priority": int(priority) if priority.isdigit() else priority,
            "tags": [t for t in req.headers.get("tags", "").split(",") if t] or None,
            "click": req.headers.get("click"),
        }
        with self.lock:
            self.published.append(message)
        return Reply.json({k: v for k, v in message.items() if v is not None})


class FakePushover(FakeService):
    def __init__(
        self,
        token: str = "apptokenfake0000000000000000000",
        user: str = "userkeyfake0000000000000000000",
    ):
        super().__init__()
        self.token = token
        self.user = user
        self.messages: list[dict[str, str]] = []
        self.route("POST", r"/1/messages\.json", self.messages_json)

    def _error(self, status: int, errors: list[str], **fields: str) -> Reply:
        body = {**fields, "errors": errors, "status": 0, "request": f"req-{next(_ids)}"}
        return Reply.json(body, status=status)

    def messages_json(self, req: FakeRequest) -> Reply:
        form = req.form()
        if form.get("token") != self.token:
            return self._error(400, ["application token is invalid"], token="invalid")
        if form.get("user") != self.user:
            return self._error(400, ["user identifier is not a valid user"], user="invalid")
        if not form.get("message"):
            return self._error(400, ["message cannot be blank"], message="cannot be blank")
        if len(form["message"]) > 1024 or len(form.get("title", "")) > 250:
            return self._error(400, ["message or title is too long"])
        priority = form.get("priority", "0")
        if priority not in {"-2", "-1", "0", "1", "2"}:
            return self._error(400, ["priority is invalid"], priority="invalid")
        if priority == "2" and not (form.get("retry") and form.get("expire")):
            return self._error(400, ["retry and expire are required for emergency priority"])
        with self.lock:
            self.messages.append(form)
        return Reply.json({"status": 1, "request": f"req-{next(_ids)}"})


class FakeWebhook(FakeService):
    def __init__(self, secret: str | None = None) -> None:
        super().__init__()
        self.secret = secret
        self.received: list[Any] = []
        self.route("POST", r"/hooks/(?P<name>[^/]+)", self.hook)

    def hook(self, req: FakeRequest, name: str) -> Reply:
        if self.secret is not None:
            expected = (
                "sha256=" + hmac.new(self.secret.encode(), req.body, hashlib.sha256).hexdigest()
            )
            if not hmac.compare_digest(req.headers.get("x-stepline-signature", ""), expected):
                return Reply.json({"error": "bad signature"}, status=401)
        try:
            payload = req.json()
        except ValueError:
            return Reply.json({"error": "body is not JSON"}, status=400)
        with self.lock:
            self.received.append(payload)
        return Reply(status=204)
