"""Count opened, reviewed and merged pull requests per day and repository for the report."""

from agents.github import services
from agents.github.events import TOPIC_MERGED, TOPIC_OPENED, TOPIC_REVIEWED

config = {
    "type": "event",
    "name": "CountPullRequestActivity",
    "description": "Idempotent per-day counters read by the daily report",
    "flows": ["github"],
    "subscribes": [TOPIC_OPENED, TOPIC_REVIEWED, TOPIC_MERGED],
    "emits": [],
}

_KIND = {TOPIC_OPENED: "opened", TOPIC_REVIEWED: "reviewed", TOPIC_MERGED: "merged"}


async def handler(data, ctx):
    from agents.github.report import record

    zone = services.settings().report.timezone
    item = str(data["number"])
    if ctx.topic == TOPIC_REVIEWED:
        item += f"@{data['head_sha']}:{data.get('trigger', 'auto')}"
    await record(
        ctx.state, _KIND[ctx.topic], data["repo"], item, timezone=zone, score=data.get("score")
    )
