"""Score a mail for spam (LLM, rules, Bayes); act on spam, label the unsure, pass the rest on.

The step's rate limit is `spam.llm_rate_limit` of config/gmail.yaml, read when the step loads
(a change needs a restart): the runtime spreads a burst of mail out, not the LLM client.
"""

from agents.gmail import services
from agents.gmail.topics import TOPIC_CHECKED, TOPIC_RECEIVED, TOPIC_SPAM

config = {
    "type": "event",
    "name": "GmailSpamFilter",
    "description": "Spam score in [0, 1]; spam: move, label or leave; unsure: label",
    "flows": ["gmail"],
    "subscribes": [TOPIC_RECEIVED],
    "emits": [TOPIC_SPAM, TOPIC_CHECKED],
    "retries": 5,
    "timeout": 90,
    "concurrency": 4,
}
if (_limit := services.settings().spam.llm_rate_limit) is not None:
    config["rate_limit"] = _limit


async def handler(data, ctx):
    from agents.gmail import classify, flow
    from agents.gmail.counters import count_once, today
    from agents.gmail.learning import record_verdict
    from agents.gmail.parse import ParsedEmail
    from agents.gmail.priority import is_vip
    from agents.gmail.spam import assess_spam

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
    day = today(settings.timezone)
    kind = "spam" if verdict.is_spam else "unsure" if verdict.unsure else "ham"
    # recorded before acting, so that our own label changes are never learned as the user's
    await record_verdict(ctx.state, mail, kind, settings.spam.action)
    summary = {**mail.metadata(), "spam_score": verdict.score, "reasons": verdict.reasons}
    api = services.gmail() if mail.source == "gmail" else None
    if not verdict.is_spam:
        if verdict.unsure:
            await flow.apply_unsure_label(api, mail, settings)
            await count_once(ctx.state, day, "unsure", key)
        checked = {**data, "spam_score": verdict.score, "unsure": verdict.unsure}
        await ctx.emit(TOPIC_CHECKED, checked, key=key)
        return
    action = await flow.apply_spam_action(api, mail, settings)
    await count_once(ctx.state, day, "spam", key)
    ctx.logger.info("spam detected", id=mail.id, score=verdict.score, action=action)
    await ctx.emit(TOPIC_SPAM, {**summary, "action": action}, key=key)
