"""Daily report: yesterday's pull requests per repository, to Slack and as an event.

The schedule and time zone are read from config/github.yaml when the step loads, so a change
to `report.cron` takes effect at the next restart.
"""

from agents.github import services
from agents.github.events import TOPIC_REPORT

_schedule = services.settings().report

config = {
    "type": "cron",
    "name": "GithubDailyReport",
    "description": "Opened, reviewed, average score and merged per repository",
    "flows": ["github"],
    "cron": _schedule.cron,
    "timezone": _schedule.timezone,
    "emits": [TOPIC_REPORT, "notify.send"],
}


async def handler(ctx):
    from agents.github.notes import report_note
    from agents.github.report import build_report
    from agents.notify import Notification, fan_out

    settings = services.settings()
    if not settings.report.enabled:
        return
    report = await build_report(ctx.state, timezone=settings.report.timezone)
    await ctx.emit(TOPIC_REPORT, report.as_dict(), key=f"report:{report.day}")
    note = Notification(**report_note(report, settings))
    for payload in fan_out(note, services.notifiers(), push=settings.slack.push):
        await ctx.emit(
            "notify.send", payload, key=f"github:report:{report.day}:{payload['provider']}"
        )
