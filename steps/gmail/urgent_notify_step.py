"""Alert on a high-priority mail: phone push and Slack, each provider its own event."""

from agents.gmail import services
from agents.gmail.topics import TOPIC_HIGH, TOPIC_NOTIFY

config = {
    "type": "event",
    "name": "GmailUrgentNotification",
    "description": "Push and Slack alert with sender, subject and reason",
    "flows": ["gmail"],
    "subscribes": [TOPIC_HIGH],
    "emits": [TOPIC_NOTIFY],
}


async def handler(data, ctx):
    from agents.gmail import flow
    from agents.notify import fan_out

    settings = services.settings()
    note = flow.alert_for(data, data.get("reasons", []), settings)
    payloads = fan_out(
        note, services.notifiers(), push=settings.notify.push, slack=settings.notify.slack
    )
    key = flow.message_key(data.get("id", ""), data.get("source", "gmail"))
    for payload in payloads:
        # keyed per message and provider: a re-delivered alert is sent once
        await ctx.emit(TOPIC_NOTIFY, payload, key=f"alert:{key}:{payload['provider']}")
