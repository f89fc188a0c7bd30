"""Slack through slack-sdk's WebClient: Block Kit, threading by key, 429 retries, clear errors.

The async client in slack-sdk needs aiohttp, which Stepline does not depend on, so the
blocking WebClient runs in a worker thread; its retry handlers sleep there, not on the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from agents.llm.state import StateLike
from agents.notify.models import Notification, NotifyError
from agents.notify.settings import NotifySettings
from agents.notify.slack_blocks import fallback_text, render_blocks

if TYPE_CHECKING:
    from slack_sdk.errors import SlackApiError

__all__ = ["THREADS_GROUP", "SlackNotifier"]

THREADS_GROUP = "notify.slack.threads"

logger = logging.getLogger("agents.notify")

_AUTH_ERRORS = {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
# Remembered threads when no state is given (tests, scripts); old ones fall out first.
_LOCAL_THREADS_MAX = 1024


class SlackNotifier:
    name = "slack"

    def __init__(self, settings: NotifySettings) -> None:
        if settings.slack_bot_token is None:
            raise NotifyError("SLACK_BOT_TOKEN is not set", provider="slack", permanent=True)
        self.settings = settings
        # slack-sdk is imported only once a Slack notifier is made, not when the steps load.
        from slack_sdk import WebClient
        from slack_sdk.http_retry.builtin_handlers import (
            ConnectionErrorRetryHandler,
            RateLimitErrorRetryHandler,
        )

        base_url = (
            settings.slack_api_url
            if settings.slack_api_url.endswith("/")
            else (settings.slack_api_url + "/")
        )
        self._client = WebClient(
            token=settings.slack_bot_token.get_secret_value(),
            base_url=base_url,
            timeout=int(max(1, settings.timeout)),
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=1),
                RateLimitErrorRetryHandler(max_retry_count=settings.slack_rate_limit_retries),
            ],
        )
        self._local_threads: OrderedDict[str, dict[str, str]] = OrderedDict()

    async def send(self, note: Notification, state: StateLike | None = None) -> str:
        """Post `note`; returns the message's `ts`. A known `thread_key` posts as a reply."""
        channel = note.channel or self.settings.slack_default_channel
        if not channel:
            raise NotifyError(
                "no Slack channel: set SLACK_DEFAULT_CHANNEL or give the notification a channel",
                provider="slack",
                permanent=True,
            )
        thread_id = f"{channel}|{note.thread_key}" if note.thread_key else None
        thread = await self._thread(thread_id, state) if thread_id else None
        args: dict[str, Any] = {
            "channel": thread["channel"] if thread else channel,
            "text": fallback_text(note),
            "blocks": render_blocks(note),
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread:
            args["thread_ts"] = thread["ts"]
            # An urgent follow-up should not hide inside a collapsed thread.
            args["reply_broadcast"] = note.priority == "urgent"
        response = await asyncio.to_thread(self._post, channel, args)
        ts = str(response["ts"])
        if thread_id and not thread:
            await self._remember(thread_id, {"channel": str(response["channel"]), "ts": ts}, state)
        return ts

    def _post(self, channel: str, args: dict[str, Any]) -> Any:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            return self._client.chat_postMessage(**args)
        except SlackApiError as exc:
            raise _api_error(exc, channel) from None
        except SlackClientError as exc:
            raise NotifyError(
                f"could not reach Slack at {self.settings.slack_api_url}: {type(exc).__name__}",
                provider="slack",
            ) from None
        except OSError as exc:
            raise NotifyError(
                f"could not reach Slack at {self.settings.slack_api_url}: {exc.__class__.__name__}",
                provider="slack",
            ) from None

    async def _thread(self, thread_id: str, state: StateLike | None) -> dict[str, str] | None:
        if state is None:
            return self._local_threads.get(thread_id)
        found = await state.get(THREADS_GROUP, thread_id)
        return found if isinstance(found, dict) and "ts" in found else None

    async def _remember(
        self, thread_id: str, thread: dict[str, str], state: StateLike | None
    ) -> None:
        if state is None:
            self._local_threads[thread_id] = thread
            while len(self._local_threads) > _LOCAL_THREADS_MAX:
                self._local_threads.popitem(last=False)
            return
        await state.set(THREADS_GROUP, thread_id, thread, ttl=self.settings.thread_ttl)


def _api_error(exc: SlackApiError, channel: str) -> NotifyError:
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    code = str(data.get("error") or f"HTTP {exc.response.status_code}")
    if code == "channel_not_found":
        message = (
            f"Slack channel {channel!r} not found (channel_not_found): check the channel name "
            "or id, and for a private channel invite the bot with /invite @<bot name>"
        )
        return NotifyError(message, provider="slack", permanent=True)
    if code == "not_in_channel":
        message = (
            f"the Slack bot is not in channel {channel!r} (not_in_channel): invite it with "
            "/invite @<bot name>, or add the chat:write.public scope and reinstall the app"
        )
        return NotifyError(message, provider="slack", permanent=True)
    if code in _AUTH_ERRORS:
        return NotifyError(
            f"Slack rejected SLACK_BOT_TOKEN ({code}): copy the app's Bot User OAuth Token "
            "(xoxb-...) again from OAuth & Permissions",
            provider="slack",
            permanent=True,
        )
    if code == "missing_scope":
        needed = data.get("needed") or "chat:write"
        return NotifyError(
            f"the Slack app lacks the scope {needed} (missing_scope): add it under OAuth & "
            "Permissions and reinstall the app",
            provider="slack",
            permanent=True,
        )
    if code == "ratelimited" or exc.response.status_code == 429:
        return NotifyError("Slack kept answering 429 rate limited after retries", provider="slack")
    status = exc.response.status_code
    return NotifyError(
        f"Slack chat.postMessage failed (HTTP {status}): {code[:200]}", provider="slack"
    )
