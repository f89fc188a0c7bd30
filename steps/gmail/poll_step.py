"""Polling mode: every minute, read the mailbox history since the stored id."""

from agents.gmail import flow, services
from agents.gmail.errors import GmailAuthRevoked, GmailNotConnected
from agents.gmail.topics import TOPIC_CURSOR, TOPIC_LABELS, TOPIC_NEW

config = {
    "type": "cron",
    "name": "GmailPoll",
    "description": "Fetch new Gmail messages via users.history.list (polling mode)",
    "flows": ["gmail"],
    "cron": "* * * * *",
    "emits": [TOPIC_NEW, TOPIC_LABELS, TOPIC_CURSOR],
    "retries": 1,  # the next minute's run is the retry
    "timeout": 120,
}


async def handler(ctx):
    settings = services.settings()
    if not settings.enabled or settings.mode != "polling":
        return
    try:
        api = services.gmail()
    except (GmailNotConnected, GmailAuthRevoked) as exc:
        ctx.logger.warning(str(exc))
        return
    result = await flow.emit_sync(ctx, api, settings)
    if result.ids:
        ctx.logger.info("new Gmail messages", count=len(result.ids))
