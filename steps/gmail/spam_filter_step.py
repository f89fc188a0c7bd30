"""Score a mail for spam (LLM, rules, naive Bayes); act on spam, pass the rest on."""

from agents.gmail import classify, flow, services
from agents.gmail.counters import count_once, today
from agents.gmail.parse import ParsedEmail
from agents.gmail.priority import is_vip
from agents.gmail.spam import assess_spam
from agents.gmail.topics import TOPIC_CHECKED, TOPIC_RECEIVED, TOPIC_SPAM

config = {
    "type": "event",
    "name": "GmailSpamFilter",
    "description": "Spam score in [0, 1]; above the threshold: move, label or leave",
    "flows": ["gmail"],
    "subscribes": [TOPIC_RECEIVED],
    "emits": [TOPIC_SPAM, TOPIC_CHECKED],
    "retries": 5,
    "timeout": 90,
    "concurrency": 4,
}


async def handler(data, ctx):
    settings = services.settings()
    mail = ParsedEmail.model_validate(data)
    vips = classify.all_vips(settings, await classify.state_vips(ctx.state))
    verdict = await assess_spam(
        mail,
        settings.spam,
        vip=is_vip(mail.from_address, vips),
        llm=services.llm(),
        model=classify.load_model(settings),
        state=ctx.state,
    )
    key = flow.message_key(mail.id, mail.source)
    summary = {**mail.metadata(), "spam_score": verdict.score, "reasons": verdict.reasons}
    if not verdict.is_spam:
        await ctx.emit(TOPIC_CHECKED, {**data, "spam_score": verdict.score}, key=key)
        return
    api = services.gmail() if mail.source == "gmail" else None
    action = await flow.apply_spam_action(api, mail, settings)
    await count_once(ctx.state, today(settings.timezone), "spam", key)
    ctx.logger.info("spam detected", id=mail.id, score=verdict.score, action=action)
    await ctx.emit(TOPIC_SPAM, {**summary, "action": action}, key=key)
