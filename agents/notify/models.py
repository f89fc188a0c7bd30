"""What a flow asks to send, and the one error a send can raise."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app import Permanent

__all__ = ["Notification", "NotifyError", "NotifyRequest", "PermanentNotifyError", "Priority"]

Priority = Literal["low", "normal", "high", "urgent"]


class Notification(BaseModel):
    """One message, rendered by each provider in its own way."""

    title: str
    text: str
    url: str | None = None
    priority: Priority = "normal"
    fields: dict[str, str] = Field(default_factory=dict)
    # Messages sharing a key thread under the first Slack message with it (e.g. "pr:owner/repo#7").
    thread_key: str | None = None
    # Slack channel name or id; None means SLACK_DEFAULT_CHANNEL.
    channel: str | None = None


class NotifyRequest(Notification):
    """The data of a `notify.send` event: a notification and the one provider to send it by."""

    provider: str = "log"


class NotifyError(Exception):
    """A provider did not take the message; the text says what to fix and never holds a secret.

    `permanent` is True when trying again cannot help until the configuration changes; such an
    error is also an `app.Permanent`, so the runtime dead-letters it at once instead of retrying.
    """

    def __new__(cls, message: str, *, provider: str, permanent: bool = False) -> NotifyError:
        if permanent and cls is NotifyError:
            cls = PermanentNotifyError
        return super().__new__(cls, message)

    def __init__(self, message: str, *, provider: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.provider = provider
        self.permanent = permanent


class PermanentNotifyError(NotifyError, Permanent):
    """A NotifyError with `permanent` True (made by `NotifyError(..., permanent=True)`)."""
