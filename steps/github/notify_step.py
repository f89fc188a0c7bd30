"""Slack (and optional push) messages for opened, reviewed and merged, threaded per PR."""

from agents.github import services
from agents.github.events import TOPIC_MERGED, TOPIC_OPENED, TOPIC_REVIEWED

config = {
    "type": "event",
    "name": "NotifyPullRequest",
    "description": "Turns pull request events into notify.send messages",
    "flows": ["github"],
    "subscribes": [TOPIC_OPENED, TOPIC_REVIEWED, TOPIC_MERGED],
    "emits": ["notify.send"],
}


async def handler(data, ctx):
    from agents.github.notes import note_for
    from agents.notify import Notification, fan_out

    settings = services.settings()
    fields = note_for(ctx.topic, data, settings)
    if fields is None:
        return
    note = Notification(**fields)
    # The key makes a merge reported by both the webhook and the merge step one message.
    what = ctx.topic.rsplit(".", 1)[-1]
    if ctx.topic == TOPIC_REVIEWED:
        what += f"@{data['head_sha']}:{data.get('trigger', 'auto')}"
    for payload in fan_out(note, services.notifiers(), push=settings.slack.push):
        key = f"github:{data['repo']}#{data['number']}:{what}:{payload['provider']}"
        await ctx.emit("notify.send", payload, key=key)
