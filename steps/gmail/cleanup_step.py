"""Daily: trash (or delete) spam older than the retention, then publish the day's counts."""

from agents.gmail import services
from agents.gmail.topics import TOPIC_CLEANUP

# The schedule is read when the step loads: editing cleanup.schedule needs a restart, every
# other cleanup setting applies at the next run.
config = {
    "type": "cron",
    "name": "GmailCleanup",
    "description": "Remove old spam and report the day's counts",
    "flows": ["gmail"],
    "cron": services.settings().cleanup.schedule,
    "timezone": services.settings().timezone,
    "emits": [TOPIC_CLEANUP],
    "timeout": 300,
}


async def handler(ctx):
    from agents.gmail import flow
    from agents.gmail.counters import day_counts, today

    settings = services.settings()
    if not settings.enabled:
        return
    day = today(settings.timezone)
    result = flow.CleanupResult(0, "trash", "cleanup disabled")
    if settings.cleanup.enabled:
        result = await flow.cleanup_spam(services.gmail(), ctx.state, settings, day)
    if result.note:
        ctx.logger.warning(result.note)
    counts = await day_counts(ctx.state, day)
    ctx.logger.info("gmail cleanup done", cleaned=result.cleaned, mode=result.mode)
    await ctx.emit(
        TOPIC_CLEANUP,
        {
            "day": day,
            "counts": counts,
            "cleaned_now": result.cleaned,
            "mode": result.mode,
            "note": result.note,
        },
    )
