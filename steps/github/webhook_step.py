"""POST /webhooks/github: verify, acknowledge at once, and hand the work to events."""

from agents.github import services
from agents.github.events import (
    TOPIC_MERGE_CHECK,
    TOPIC_MERGED,
    TOPIC_OPENED,
    TOPIC_REVIEW_REQUESTED,
)

config = {
    "type": "api",
    "name": "GithubWebhook",
    "description": "Receives GitHub webhooks (pull requests, comments, checks, statuses, reviews)",
    "flows": ["github"],
    "path": "/webhooks/github",
    "method": "POST",
    "emits": [TOPIC_OPENED, TOPIC_REVIEW_REQUESTED, TOPIC_MERGED, TOPIC_MERGE_CHECK],
}


async def handler(req, ctx):
    from agents.github.webhook import receive

    secret = services.webhook_secret()
    dev = ctx.mode == "dev"  # chosen by the command; the uvicorn factory alone is production
    if secret is None and dev:
        ctx.logger.warning("GITHUB_WEBHOOK_SECRET is not set: accepting an UNSIGNED webhook")
    try:
        decision, key = receive(req.headers, req.raw, services.settings(), secret, dev=dev)
    except Exception as exc:  # a payload we did not foresee is still GitHub's, not a 500
        ctx.logger.error("webhook not understood", error=exc.__class__.__name__)
        return {"status": 202, "body": {"status": "accepted", "reason": "not understood"}}
    ctx.logger.info(
        "github webhook",
        gh_event=req.headers.get("x-github-event"),
        delivery=key,
        status=decision.status,
        reason=decision.reason,
    )
    for topic, data in decision.emits:
        await ctx.emit(topic, data, key=f"delivery:{key}")
    return {"status": decision.status, "body": decision.body}
