"""POST /webhooks/email: feed a mail from any source into the same flow (bearer token)."""

from pydantic import ValidationError

from agents.gmail import services
from agents.gmail.topics import TOPIC_NEW

config = {
    "type": "api",
    "name": "EmailWebhook",
    "description": "Accepts {messageId, from, subject, body} JSON with a bearer token",
    "flows": ["gmail"],
    "path": "/webhooks/email",
    "method": "POST",
    "emits": [TOPIC_NEW],
}


async def handler(req, ctx):
    from agents.gmail import flow
    from agents.gmail.inbound import InboundEmail, bearer_ok

    token = services.webhook_token()
    if token is None:
        # Not a 5xx: nothing is wrong with the server, and no request can authenticate until a
        # token is set, so a sender must not keep retrying.
        error = "this endpoint is off: set GMAIL_WEBHOOK_TOKEN to turn it on"
        return {"status": 403, "body": {"error": error}}
    if not bearer_ok(req.headers.get("authorization"), token):
        return {
            "status": 401,
            "body": {"error": "missing or wrong bearer token"},
            "headers": {"WWW-Authenticate": "Bearer"},
        }
    try:
        mail = InboundEmail.model_validate(req.body)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return {"status": 422, "body": {"error": reasons}}
    event = flow.inbound_event(mail.message_id, mail.sender, mail.subject, mail.body)
    await ctx.emit(TOPIC_NEW, event, key=flow.message_key(mail.message_id, "webhook"))
    return {"status": 202, "body": {"status": "accepted", "messageId": mail.message_id}}
