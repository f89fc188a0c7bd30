"""The user moved a mail into or out of Spam (or removed the flow's label): learn it once."""

from agents.gmail import services
from agents.gmail.topics import TOPIC_LABELS

config = {
    "type": "event",
    "name": "GmailLearnFromUser",
    "description": "Train the spam model on the user's own label changes (history.list)",
    "flows": ["gmail"],
    "subscribes": [TOPIC_LABELS],
    "emits": [],
    "concurrency": 1,  # one writer of the model file per process (a file lock covers the rest)
    "timeout": 60,
}


async def handler(data, ctx):
    from agents.gmail import learning

    settings = services.settings()
    if not settings.enabled:
        return
    lesson = await learning.learn_from_change(data, services.gmail(), ctx.state, settings)
    if lesson.verdict is None:
        ctx.logger.debug("label change not learned", id=data.get("message_id"), why=lesson.why)
        return
    ctx.logger.info(
        "learned from the user",
        id=data.get("message_id"),
        verdict=lesson.verdict,
        why=lesson.why,
        outcome=lesson.outcome,
        correction=lesson.correction,
    )
