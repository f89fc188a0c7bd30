"""What the Gmail steps do, kept out of the step files so each reads in a glance.

Blocking Gmail calls run in a worker thread. Every function tolerates a second run for the
same input: emits carry keys, label changes are idempotent, counts go through claims.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import asdict, dataclass, field
from email.utils import parseaddr
from typing import Any

from agents.common.redact import MASK, redact, redact_mail
from agents.gmail.api import GmailAPI, LabelChange
from agents.gmail.counters import count_once, increment, today
from agents.gmail.errors import HistoryExpired
from agents.gmail.learning import worth_learning
from agents.gmail.oauth import has_full_scope
from agents.gmail.parse import ParsedEmail, html_to_text
from agents.gmail.settings import GmailSettings
from agents.gmail.topics import (
    MAILBOX_GROUP,
    MESSAGES_GROUP,
    TOPIC_CURSOR,
    TOPIC_LABELS,
    TOPIC_NEW,
)
from agents.notify import Notification

__all__ = [
    "CleanupResult",
    "SyncResult",
    "advance_cursor",
    "alert_for",
    "apply_spam_action",
    "apply_unsure_label",
    "cleanup_spam",
    "emit_sync",
    "inbound_event",
    "load_email",
    "message_key",
    "received_event",
    "record_received",
    "report_for",
    "sync_mailbox",
    "webhook_email",
]

_METADATA_TTL = 30 * 24 * 3600.0


def message_key(mail_id: str, source: str = "gmail") -> str:
    """The emit key of one message: the same message is processed once per dedup window."""
    return f"{source}:{mail_id}"


@dataclass
class SyncResult:
    ids: list[str]
    history_id: str | None
    fallback: bool = False
    label_changes: list[LabelChange] = field(default_factory=list)


async def sync_mailbox(api: GmailAPI, state: Any, settings: GmailSettings) -> SyncResult:
    """New INBOX messages since the stored history id.

    The first run only records where the mailbox stands (old mail is not alerted on). When
    Gmail no longer has the stored history (404), the recent INBOX messages are listed
    instead; those already processed are dropped by their emit keys.
    """
    stored = await state.get(MAILBOX_GROUP, "history_id")
    if stored is None:
        profile = await asyncio.to_thread(api.profile)
        return SyncResult([], str(profile["historyId"]))
    try:
        page = await asyncio.to_thread(api.history_since, str(stored))
        return SyncResult(page.added, page.latest, label_changes=page.label_changes)
    except HistoryExpired:
        profile = await asyncio.to_thread(api.profile)
        ids = await asyncio.to_thread(
            api.list_ids, label_ids=["INBOX"], q="newer_than:2d", limit=settings.recent_limit
        )
        return SyncResult(list(reversed(ids)), str(profile["historyId"]), fallback=True)


async def emit_sync(ctx: Any, api: GmailAPI, settings: GmailSettings) -> SyncResult:
    """Sync and emit: one `gmail.message.new` per message, then the cursor move, which is
    applied only after these emits commit (so a crash cannot skip messages)."""
    result = await sync_mailbox(api, ctx.state, settings)
    for mid in result.ids:
        await ctx.emit(TOPIC_NEW, {"id": mid, "source": "gmail"}, key=message_key(mid))
    for change in result.label_changes:
        if worth_learning(change):
            await ctx.emit(
                TOPIC_LABELS,
                asdict(change),
                key=f"labels:{change.record_id}:{change.message_id}",
            )
    if result.history_id is not None:
        await ctx.emit(TOPIC_CURSOR, {"history_id": result.history_id})
    if result.fallback:
        ctx.logger.warning(
            "stored Gmail history id expired; listed recent messages instead", found=len(result.ids)
        )
    return result


async def advance_cursor(state: Any, history_id: str) -> int:
    """Store the history id, never moving it backwards (two syncs may finish out of order)."""

    def newer(old: Any) -> int:
        return max(int(old or 0), int(history_id))

    return int(await state.update(MAILBOX_GROUP, "history_id", newer, None))


def webhook_email(data: dict[str, Any]) -> ParsedEmail:
    """A mail handed to `/webhooks/email`: no headers, so no authentication results.

    `inbound_event` has already reduced HTML to text (`links` present); an event queued before
    it did still carries the raw body.
    """
    name, address = parseaddr(str(data.get("from") or ""))
    body = str(data.get("body") or "")
    links: list[Any] = list(data.get("links") or [])
    if "links" not in data and re.search(r"<(html|body|p|div|a|br)\b", body, re.IGNORECASE):
        body, links = html_to_text(body)
    return ParsedEmail(
        id=str(data["id"]),
        source="webhook",
        from_address=address.lower(),
        from_name=name,
        subject=str(data.get("subject") or ""),
        text=body,
        links=links,
    )


# Events are stored and shown in the Workbench, so mail text goes in them only through here.
def _safe_text(text: str) -> str:
    return redact_mail(text)


def _links(mail: ParsedEmail) -> list[dict[str, str]]:
    # brackets in a link's host part make urlsplit raise (read as IPv6): the mask is bare there
    bare = MASK.strip("[]")
    return [{"href": redact(x.href).replace(MASK, bare), "text": _safe_text(x.text)}
            for x in mail.links]  # fmt: skip


def received_event(mail: ParsedEmail) -> dict[str, Any]:
    """`gmail.email.received` data: the whole parsed mail, its subject, text and links with
    secrets masked (the classifiers read the masked mail; a code or password decides neither
    spam nor urgency, and a masked `user:password@host` link still shows its '@')."""
    data = {**mail.model_dump(mode="json"), "text": _safe_text(mail.text), "links": _links(mail)}
    return {**data, "subject": _safe_text(mail.subject)}


def inbound_event(message_id: str, sender: str, subject: str, body: str) -> dict[str, Any]:
    """`gmail.message.new` data for a `/webhooks/email` mail: HTML reduced to text first (so
    masking cannot cut through a tag, and links keep their real targets), then masked."""
    mail = webhook_email({"id": message_id, "from": sender, "subject": subject, "body": body})
    return {
        "source": "webhook",
        "id": message_id,
        "from": sender,
        "subject": _safe_text(subject),
        "body": _safe_text(mail.text),
        "links": _links(mail),
    }


async def load_email(data: dict[str, Any], api: GmailAPI | None) -> ParsedEmail:
    if data.get("source") == "webhook":
        return webhook_email(data)
    assert api is not None
    return await asyncio.to_thread(api.get_parsed, str(data["id"]))


async def record_received(state: Any, mail: ParsedEmail, settings: GmailSettings) -> None:
    await state.set(MESSAGES_GROUP, mail.id, mail.metadata(), ttl=_METADATA_TTL)
    await count_once(state, today(settings.timezone), "received", mail.id)


async def apply_spam_action(
    api: GmailAPI | None, mail: ParsedEmail, settings: GmailSettings
) -> str:
    """Move to Spam, add the configured label, or do nothing; idempotent."""
    action = settings.spam.action
    if action == "none" or mail.source != "gmail" or api is None:
        return "none"
    if action == "move":
        await asyncio.to_thread(api.modify, mail.id, ["SPAM"], ["INBOX"])
    else:
        label = await asyncio.to_thread(api.ensure_label, settings.spam.label)
        await asyncio.to_thread(api.modify, mail.id, [label], [])
    return action


async def apply_unsure_label(
    api: GmailAPI | None, mail: ParsedEmail, settings: GmailSettings
) -> bool:
    """Label an unsure mail (`spam.unsure_label`) and leave it where it is; idempotent.
    Nothing is labelled under `spam.action: none`."""
    if settings.spam.action == "none" or mail.source != "gmail" or api is None:
        return False
    label = await asyncio.to_thread(api.ensure_label, settings.spam.unsure_label)
    await asyncio.to_thread(api.modify, mail.id, [label], [])
    return True


@dataclass
class CleanupResult:
    cleaned: int
    mode: str  # "trash" | "delete"
    note: str = ""


async def cleanup_spam(
    api: GmailAPI, state: Any, settings: GmailSettings, day: str | None = None
) -> CleanupResult:
    """Trash (or delete, when configured and the full scope was granted) old spam, counted as
    cleaned on `day` (default today): the day the caller reports, which a run that passes
    midnight while trashing would otherwise count on the next."""
    days = settings.cleanup.retention_days
    ids = await asyncio.to_thread(
        api.list_ids, q=f"older_than:{days}d", label_ids=["SPAM"], include_spam_trash=True
    )
    note = ""
    delete = settings.cleanup.delete
    if delete and not has_full_scope(api.credentials):
        delete = False
        note = (
            "cleanup.delete is on but the token lacks the full mail scope, so spam was trashed; "
            "run `stepline gmail connect` again to grant it"
        )
    if delete:
        await asyncio.to_thread(api.batch_delete, ids)
    else:
        for mid in ids:
            await asyncio.to_thread(api.trash, mid)
    if ids:
        await increment(state, day or today(settings.timezone), "cleaned", len(ids))
    return CleanupResult(len(ids), "delete" if delete else "trash", note)


def _gmail_url(mail: dict[str, Any]) -> str | None:
    if mail.get("source", "gmail") != "gmail" or not mail.get("id"):
        return None
    return f"https://mail.google.com/mail/u/0/#inbox/{mail['id']}"


def alert_for(mail: dict[str, Any], reasons: list[str], settings: GmailSettings) -> Notification:
    """The phone/Slack alert for a high-priority mail (secrets in the subject masked)."""
    sender = mail.get("from_name") or mail.get("from_address") or "unknown sender"
    subject = redact_mail(mail.get("subject") or "(no subject)")
    reason = "; ".join(reasons)
    return Notification(
        title=f"Urgent mail from {sender}",
        text=f"{subject}\n{reason}",
        url=_gmail_url(mail),
        priority="high",
        fields={"From": str(mail.get("from_address", "")), "Subject": subject, "Reason": reason},
        thread_key=None,
        channel=settings.notify.slack_channel,
    )


def report_for(
    day: str, counts: dict[str, int], result: dict[str, Any], settings: GmailSettings
) -> Notification:
    how = "deleted" if result.get("mode") == "delete" else "trashed"
    text = (
        f"Received {counts['received']}, spam {counts['spam']}, urgent {counts['urgent']}, "
        f"cleaned {counts['cleaned']} (old spam {how})."
    )
    if result.get("note"):
        text += f"\n{result['note']}"
    return Notification(
        title=f"Gmail daily report {day}",
        text=text,
        priority="low",
        fields={k.capitalize(): str(v) for k, v in counts.items()},
        channel=settings.report.slack_channel or settings.notify.slack_channel,
    )
