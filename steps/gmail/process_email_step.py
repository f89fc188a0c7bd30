"""Fetch and parse one message, keep its metadata, count it, and pass it on."""

from agents.gmail import services
from agents.gmail.topics import TOPIC_NEW, TOPIC_RECEIVED

config = {
    "type": "event",
    "name": "GmailProcessEmail",
    "description": "Parse a new message (headers, multipart bodies, charsets, HTML)",
    "flows": ["gmail"],
    "subscribes": [TOPIC_NEW],
    "emits": [TOPIC_RECEIVED],
    "retries": 5,
    "timeout": 60,
    "concurrency": 4,
}


async def handler(data, ctx):
    from agents.gmail import flow

    settings = services.settings()
    api = services.gmail() if data.get("source", "gmail") == "gmail" else None
    mail = await flow.load_email(data, api)
    await flow.record_received(ctx.state, mail, settings)
    ctx.logger.info("email received", id=mail.id, sender=mail.from_address)
    await ctx.emit(
        TOPIC_RECEIVED, flow.received_event(mail), key=flow.message_key(mail.id, mail.source)
    )
