"""Post the day's Gmail summary to Slack after the cleanup."""

from agents.gmail import services
from agents.gmail.topics import TOPIC_CLEANUP, TOPIC_NOTIFY

config = {
    "type": "event",
    "name": "GmailDailyReport",
    "description": "Slack summary: received, spam, urgent, cleaned",
    "flows": ["gmail"],
    "subscribes": [TOPIC_CLEANUP],
    "emits": [TOPIC_NOTIFY],
}


async def handler(data, ctx):
    from agents.gmail import flow
    from agents.notify import fan_out

    settings = services.settings()
    if not settings.report.enabled:
        return
    note = flow.report_for(data["day"], data["counts"], data, settings)
    for payload in fan_out(note, services.notifiers(), push=False, slack=True):
        await ctx.emit(
            TOPIC_NOTIFY, payload, key=f"gmail-report:{data['day']}:{payload['provider']}"
        )
