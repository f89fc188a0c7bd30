"""POST /webhooks/gmail: a Pub/Sub push from Gmail. Verify its OIDC token, then queue a sync."""

import asyncio

from agents.gmail import services
from agents.gmail.errors import PushRejected
from agents.gmail.pubsub import parse_push, verify_push_token
from agents.gmail.topics import TOPIC_SYNC

config = {
    "type": "api",
    "name": "GmailPushWebhook",
    "description": "Receives Gmail notifications pushed by Google Pub/Sub (push mode)",
    "flows": ["gmail"],
    "path": "/webhooks/gmail",
    "method": "POST",
    "emits": [TOPIC_SYNC],
}


async def handler(req, ctx):
    settings = services.settings()
    push = settings.push
    try:
        # verify before parsing anything the sender controls; in a thread, as fetching Google's
        # signing keys (on a cold or expired cache) is blocking HTTP
        await asyncio.to_thread(
            verify_push_token,
            req.headers.get("authorization"),
            audience=push.audience,
            keys=services.push_keys(),
            service_account=push.service_account,
        )
    except PushRejected as exc:
        ctx.logger.warning("gmail push rejected", reason=str(exc))
        return {"status": 403 if "audience" in str(exc) else 401, "body": {"error": str(exc)}}
    try:
        notice = parse_push(req.body)
    except ValueError as exc:
        return {"status": 400, "body": {"error": str(exc)}}
    if not settings.enabled:
        return {"status": 200, "body": {"status": "ignored", "reason": "gmail flow disabled"}}
    await ctx.emit(
        TOPIC_SYNC,
        {"history_id": notice.history_id},
        key=f"push:{notice.message_id or notice.history_id}",
    )
    return {"status": 200, "body": {"status": "accepted"}}
