"""Push mode: a Pub/Sub notice said the mailbox changed; read the history since our id.

While Google refuses the grant, notices are acknowledged and skipped (agents/gmail/grant.py):
the next notice after `stepline gmail connect` reads everything since the stored id."""

from agents.gmail import services
from agents.gmail.topics import TOPIC_CURSOR, TOPIC_LABELS, TOPIC_NEW, TOPIC_SYNC

config = {
    "type": "event",
    "name": "GmailSync",
    "description": "Fetch new Gmail messages after a push notification",
    "flows": ["gmail"],
    "subscribes": [TOPIC_SYNC],
    "emits": [TOPIC_NEW, TOPIC_LABELS, TOPIC_CURSOR],
    "concurrency": 1,  # one reader of the history at a time
    "timeout": 120,
}


async def handler(data, ctx):
    from agents.gmail import grant

    settings = services.settings()
    if not settings.enabled:
        return
    await grant.sync(ctx, settings)
