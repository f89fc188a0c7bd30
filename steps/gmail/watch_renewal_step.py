"""Push mode: renew the Gmail watch daily (a watch lapses after 7 days)."""

from agents.gmail import services
from agents.gmail.topics import MAILBOX_GROUP

config = {
    "type": "cron",
    "name": "GmailRenewWatch",
    "description": "Call users.watch so Gmail keeps publishing to the Pub/Sub topic",
    "flows": ["gmail"],
    "cron": "17 5 * * *",
    "emits": [],
}


async def handler(ctx):
    import asyncio

    settings = services.settings()
    if not settings.enabled or settings.mode != "push":
        return
    if not settings.push.topic:
        ctx.logger.error("push mode needs push.topic in config/gmail.yaml; watch not renewed")
        return
    reply = await asyncio.to_thread(
        services.gmail().watch, settings.push.topic, settings.push.label_ids
    )
    await ctx.state.set(MAILBOX_GROUP, "watch_expiration", reply.get("expiration"))
    if await ctx.state.get(MAILBOX_GROUP, "history_id") is None:
        await ctx.state.set(MAILBOX_GROUP, "history_id", int(reply["historyId"]))
    ctx.logger.info("gmail watch renewed", expiration=reply.get("expiration"))
