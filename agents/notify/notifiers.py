"""The configured set of providers, sending one at a time or all together.

Every notification is masked here, once, before any provider sees it: whatever a flow puts in
a title, text or field, a secret in it (by format, or by value for the app's own) never
reaches Slack or a phone."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from agents.common.redact import redact
from agents.llm.state import StateLike
from agents.notify.models import Notification, NotifyError, NotifyRequest
from agents.notify.push import NtfyNotifier, PushoverNotifier, WebhookNotifier
from agents.notify.settings import NotifySettings
from agents.notify.slack import SlackNotifier
from app.metrics import count_notification

__all__ = ["PUSH_PROVIDERS", "Notifier", "Notifiers", "fan_out"]

logger = logging.getLogger("agents.notify")

PUSH_PROVIDERS = ("ntfy", "pushover", "webhook")
_unconfigured_reported = False


class Notifier(Protocol):
    name: str

    async def send(self, note: Notification, state: StateLike | None = None) -> str | None: ...


class LogNotifier:
    """Where messages go when nothing is configured, so flows still run end to end."""

    name = "log"

    async def send(self, note: Notification, state: StateLike | None = None) -> str | None:
        extras = "".join(f" | {k}: {v}" for k, v in note.fields.items())
        link = f" <{note.url}>" if note.url else ""
        logger.info(
            "notification [%s] %s: %s%s%s", note.priority, note.title, note.text, extras, link
        )
        return None


class Notifiers:
    """Providers switched on by settings; `providers()` is empty when none are."""

    def __init__(self, settings: NotifySettings | None = None) -> None:
        self.settings = settings if settings is not None else NotifySettings()
        s = self.settings
        self._notifiers: dict[str, Notifier] = {}
        if s.slack_on:
            self._notifiers["slack"] = SlackNotifier(s)
        if s.ntfy_on:
            self._notifiers["ntfy"] = NtfyNotifier(s)
        if s.pushover_on:
            self._notifiers["pushover"] = PushoverNotifier(s)
        if s.webhook_on:
            self._notifiers["webhook"] = WebhookNotifier(s)
        self._log = LogNotifier()

    @classmethod
    def from_env(cls) -> Notifiers:
        """Providers from the environment; says once per process when none is configured."""
        global _unconfigured_reported
        notifiers = cls(NotifySettings())
        if not notifiers.providers() and not _unconfigured_reported:
            _unconfigured_reported = True
            logger.warning(
                "no notifier configured (SLACK_BOT_TOKEN, NTFY_TOPIC, PUSHOVER_TOKEN+PUSHOVER_USER "
                "or PUSH_WEBHOOK_URL): notifications go to the log"
            )
        return notifiers

    def providers(self) -> list[str]:
        return list(self._notifiers)

    def selected(self, *, push: bool = True, slack: bool = True) -> list[str]:
        """Configured providers of the kinds asked for, or ["log"] when none is."""
        chosen = [
            name
            for name in self._notifiers
            if (name == "slack" and slack) or (name in PUSH_PROVIDERS and push)
        ]
        return chosen or ["log"]

    async def send(
        self, provider: str, note: Notification, state: StateLike | None = None
    ) -> str | None:
        """Send through one provider; "log" always works. Raises NotifyError on failure."""
        note = _masked(note)
        if provider == "log":
            return await self._log.send(note, state)
        notifier = self._notifiers.get(provider)
        if notifier is None:
            known = ", ".join(self.providers()) or "none"
            raise NotifyError(
                f"notification provider {provider!r} is not configured (configured: {known})",
                provider=provider,
                permanent=True,
            )
        try:
            result = await notifier.send(note, state)
        except NotifyError as exc:
            count_notification(provider, "refused" if exc.permanent else "failed")
            raise
        except Exception:
            count_notification(provider, "failed")
            raise
        count_notification(provider, "ok")
        logger.info("notification sent via %s: %s", provider, note.title)
        return result

    async def send_all(
        self,
        note: Notification,
        state: StateLike | None = None,
        *,
        push: bool = True,
        slack: bool = True,
    ) -> dict[str, str | None]:
        """Try every selected provider; raise one NotifyError naming those that failed."""
        results: dict[str, str | None] = {}
        failures: list[NotifyError] = []
        for provider in self.selected(push=push, slack=slack):
            try:
                results[provider] = await self.send(provider, note, state)
            except NotifyError as exc:
                failures.append(exc)
        if failures:
            raise NotifyError(
                "; ".join(f"{f.provider}: {f}" for f in failures),
                provider=",".join(f.provider for f in failures),
                permanent=all(f.permanent for f in failures),
            )
        return results


def _masked(note: Notification) -> Notification:
    return note.model_copy(
        update={
            "title": redact(note.title),
            "text": redact(note.text),
            "url": redact(note.url) if note.url else note.url,
            "fields": {k: redact(v) for k, v in note.fields.items()},
        }
    )


def fan_out(
    note: Notification, notifiers: Notifiers, push: bool = True, slack: bool = True
) -> list[dict[str, Any]]:
    """One `notify.send` payload per provider, so a failed provider's retry repeats only it.

    A flow step does `for payload in fan_out(note, notifiers): await ctx.emit("notify.send",
    payload)`; with nothing configured the single payload names the "log" provider.
    """
    base = note.model_dump()
    return [
        NotifyRequest(**base, provider=p).model_dump()
        for p in notifiers.selected(push=push, slack=slack)
    ]
