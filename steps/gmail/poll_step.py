"""Polling mode: every minute, read the mailbox history since the stored id.

While Google refuses the grant, the poll skips quietly (see agents/gmail/grant.py) instead
of asking Google every minute; it resumes by itself after `stepline gmail connect`."""

from agents.gmail import services
from agents.gmail.errors import GmailNotConnected
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
    from agents.gmail import grant

    settings = services.settings()
    if not settings.enabled or settings.mode != "polling":
        return
    try:
        result = await grant.sync(ctx, settings)
    except GmailNotConnected as exc:
        ctx.logger.warning(str(exc))
        return
    if result is not None and result.ids:
        ctx.logger.info("new Gmail messages", count=len(result.ids))
