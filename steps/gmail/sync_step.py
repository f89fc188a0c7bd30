"""Push mode: a Pub/Sub notice said the mailbox changed; read the history since our id."""

from agents.gmail import flow, services
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
    settings = services.settings()
    if not settings.enabled:
        return
    await flow.emit_sync(ctx, services.gmail(), settings)
