"""A loopback stand-in for the Slack Web API (`chat.postMessage`, `auth.test`).

Like Slack, it answers HTTP 200 with `{"ok": false, "error": ...}` for API errors, HTTP 429
with `Retry-After` when rate limited (script it with `inject`), resolves channels by name or
id, and refuses public channels the bot has not joined unless the app has
`chat:write.public`. Clients use `base_url=f"{server_url}/api/"`.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.common import FakeRequest, FakeService, Reply

__all__ = ["FakeSlack", "SlackChannel"]


@dataclass
class SlackChannel:
    id: str
    name: str
    private: bool = False
    bot_is_member: bool = True
    messages: list[dict[str, Any]] = field(default_factory=list)


class FakeSlack(FakeService):
    def __init__(
        self,
        token: str = "xoxb-test-fake-token",
        *,
        scopes: tuple[str, ...] = ("chat:write", "chat:write.public"),
    ) -> None:
        super().__init__()
        self.token = token
        self.scopes = set(scopes)
        self.channels: dict[str, SlackChannel] = {}
        self._ts = itertools.count(1)
        self.add_channel("C0ALERTS", "alerts")
        self.route("POST", r"/api/chat\.postMessage", self.post_message)
        self.route("POST", r"/api/auth\.test", self.auth_test)

    def add_channel(self, id: str, name: str, **kw: Any) -> SlackChannel:
        channel = SlackChannel(id=id, name=name, **kw)
        self.channels[id] = channel
        return channel

    @staticmethod
    def rate_limited(retry_after: str = "1") -> Reply:
        return Reply.json(
            {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": retry_after}
        )

    def posted(self) -> list[dict[str, Any]]:
        """Every message accepted so far, across channels, in order."""
        with self.lock:
            all_messages = [m for c in self.channels.values() for m in c.messages]
        return sorted(all_messages, key=lambda m: float(m["ts"]))

    # -- API -------------------------------------------------------------------------------

    def not_found(self, req: FakeRequest) -> Reply:
        return Reply.json({"ok": False, "error": "unknown_method"}, status=404)

    def _args(self, req: FakeRequest) -> dict[str, Any]:
        if req.headers.get("content-type", "").startswith("application/json"):
            data = req.json()
            return data if isinstance(data, dict) else {}
        return dict(req.form())

    def _authed(self, req: FakeRequest, args: dict[str, Any]) -> Reply | None:
        sent = req.headers.get("authorization", "").removeprefix("Bearer ") or args.get("token")
        if not sent:
            return self._fail("not_authed")
        if sent != self.token:
            return self._fail("invalid_auth")
        return None

    def _fail(self, error: str, **extra: Any) -> Reply:
        return Reply.json({"ok": False, "error": error, **extra}, headers=self._scope_headers())

    def _scope_headers(self) -> dict[str, str]:
        return {"x-oauth-scopes": ",".join(sorted(self.scopes))}

    def _resolve(self, ref: str) -> SlackChannel | None:
        if ref in self.channels:
            return self.channels[ref]
        name = ref.removeprefix("#")
        return next((c for c in self.channels.values() if c.name == name), None)

    def auth_test(self, req: FakeRequest) -> Reply:
        args = self._args(req)
        denied = self._authed(req, args)
        if denied:
            return denied
        body = {"ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "stepline"}
        return Reply.json(body, headers=self._scope_headers())

    def post_message(self, req: FakeRequest) -> Reply:
        args = self._args(req)
        denied = self._authed(req, args)
        if denied:
            return denied
        if "chat:write" not in self.scopes:
            return self._fail("missing_scope", needed="chat:write", provided=",".join(self.scopes))
        channel = self._resolve(str(args.get("channel", "")))
        if channel is None or (channel.private and not channel.bot_is_member):
            return self._fail("channel_not_found")
        if not channel.bot_is_member and "chat:write.public" not in self.scopes:
            return self._fail("not_in_channel")
        blocks = args.get("blocks")
        if isinstance(blocks, str):  # form-encoded calls send blocks as a JSON string
            blocks = json.loads(blocks)
        if not args.get("text") and not blocks:
            return self._fail("no_text")
        problem = _check_blocks(blocks) if blocks else None
        if problem:
            return self._fail("invalid_blocks", errors=[problem])
        with self.lock:
            ts = f"1700000000.{next(self._ts):06d}"
            message = {
                "channel": channel.id,
                "ts": ts,
                "text": args.get("text"),
                "blocks": blocks,
                "thread_ts": args.get("thread_ts"),
                "reply_broadcast": args.get("reply_broadcast"),
            }
            channel.messages.append(message)
        reply = {"ok": True, "channel": channel.id, "ts": ts, "message": {"text": args.get("text")}}
        return Reply.json(reply, headers=self._scope_headers())


def _check_blocks(blocks: Any) -> str | None:
    """Enough of Slack's block validation to catch what a renderer gets wrong."""
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "must be a list of at most 50 blocks"
    for i, block in enumerate(blocks):
        kind = block.get("type")
        text = block.get("text") or {}
        if kind == "header" and (text.get("type") != "plain_text" or len(text["text"]) > 150):
            return f"[{i}] header text must be plain_text of at most 150 characters"
        if kind == "section":
            if text and len(text.get("text", "")) > 3000:
                return f"[{i}] section text must be at most 3000 characters"
            if len(block.get("fields", [])) > 10:
                return f"[{i}] a section has at most 10 fields"
            if not text and not block.get("fields"):
                return f"[{i}] a section needs text or fields"
        if kind not in {"header", "section", "context", "divider", "actions"}:
            return f"[{i}] unknown block type {kind!r}"
    return None
