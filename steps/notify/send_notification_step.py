"""Send one notification through one provider.

Flows emit one `notify.send` event per provider (see `agents.notify.fan_out`), so when Slack
is down only the Slack message is retried (with backoff, then dead-lettered for replay) and
the phone push that already went out is not sent twice.
"""

from agents.notify import NotifyRequest

config = {
    "type": "event",
    "name": "SendNotification",
    "description": "Deliver a notification via Slack, ntfy, Pushover, a webhook, or the log",
    "flows": ["github", "gmail"],
    "subscribes": ["notify.send"],
    "emits": [],
    "input": NotifyRequest,
    "retries": 6,
    "timeout": 60,
    "concurrency": 4,
}


async def handler(data: NotifyRequest, ctx) -> None:
    from agents.notify import Notification, Notifiers

    # Cheap to build; per delivery so it always reflects the process's current environment.
    notifiers = Notifiers()
    note = Notification.model_validate(data.model_dump(exclude={"provider"}))
    sent_id = await notifiers.send(data.provider, note, ctx.state)
    if data.provider == "log":
        # Shown in the Workbench, so flows are visible end to end with nothing configured.
        ctx.logger.info(
            f"notification: {note.title}",
            text=note.text,
            url=note.url,
            priority=note.priority,
            fields=note.fields,
        )
    else:
        ctx.logger.info(
            "notification sent",
            provider=data.provider,
            id=sent_id,
            title=note.title,
            attempt=ctx.attempt,
        )
