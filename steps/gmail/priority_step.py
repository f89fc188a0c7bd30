"""Urgent keywords and VIP senders (config plus the `gmail.vip` state group) make a mail
high priority."""

from agents.gmail import services
from agents.gmail.topics import TOPIC_CHECKED, TOPIC_HIGH

config = {
    "type": "event",
    "name": "GmailPriorityClassifier",
    "description": "Whole-word urgent keywords and VIP senders mark a mail high priority",
    "flows": ["gmail"],
    "subscribes": [TOPIC_CHECKED],
    "emits": [TOPIC_HIGH],
}


async def handler(data, ctx):
    from agents.gmail import classify, flow
    from agents.gmail.counters import count_once, today
    from agents.gmail.parse import ParsedEmail

    settings = services.settings()  # read per message: a config edit applies to the next one
    mail = ParsedEmail.model_validate(data)
    vips = classify.all_vips(settings, await classify.state_vips(ctx.state))
    result = classify.assess_priority(mail, settings, vips)
    if not result.high:
        return
    key = flow.message_key(mail.id, mail.source)
    await count_once(ctx.state, today(settings.timezone), "urgent", key)
    ctx.logger.info("high priority mail", id=mail.id, reasons=result.reasons)
    await ctx.emit(
        TOPIC_HIGH, {**mail.metadata(), "reasons": result.reasons, "vip": result.vip}, key=key
    )
