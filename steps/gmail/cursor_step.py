"""Move the stored Gmail history id forward, once the messages before it were queued."""

from agents.gmail.topics import TOPIC_CURSOR

config = {
    "type": "event",
    "name": "GmailAdvanceCursor",
    "description": "Store the newest Gmail history id (never moving backwards)",
    "flows": ["gmail"],
    "subscribes": [TOPIC_CURSOR],
    "emits": [],
}


async def handler(data, ctx):
    from agents.gmail import flow

    stored = await flow.advance_cursor(ctx.state, str(data["history_id"]))
    ctx.logger.debug("gmail history id stored", history_id=stored)
