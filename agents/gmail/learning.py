"""Learning from the user: a label change in Gmail that judges a mail teaches the model once.

The user's own moves are the best training data there is. `history.list` reports label
changes (`labelsAdded` / `labelsRemoved`), and these count as a verdict:

- SPAM added (Report spam): spam, unless the flow moved the mail there itself;
- SPAM removed while the mail is in INBOX (Not spam): wanted;
- the flow's own label (`spam.label` in label mode, or `spam.unsure_label`) removed from a
  mail left in INBOX: wanted.

Nothing else teaches anything (reading, starring, trashing old spam). What the flow did to each
mail is kept in state group `gmail.verdicts` *before* it acts, so its own moves are never
mistaken for the user's. The model file records which message it learned as what, so a lesson
is learned once, and a mail the user changes their mind about is unlearned and learned again.
Each lesson is also kept in state group `gmail.learned` for LEARNED_TTL (180 days, longer than
the flow's own verdicts are kept), shown in the Workbench's State view and by `stepline gmail
stats`; the model file keeps its own list of learned ids, bounded in `bayes.py`.

Gmail's own spam filter also moves mail, and a history record does not say who changed a
label. What can be told apart:
- mail Gmail files as spam on arrival comes as `messagesAdded` with SPAM, no label change:
  never learned;
- SPAM added to a mail the flow moved there is the flow's own (see `gmail.verdicts`);
- SPAM added later to a mail that is still UNREAD, seen within PROVIDER_WINDOW (15 min) of
  its arrival, is most likely Gmail's filter taking a second look (a person reports what
  they have read, or at least not what arrived a minute ago): not learned, and not counted
  as a correction. The cost: a user who reports an unread mail within minutes teaches
  nothing; the flow missed it, but Gmail caught it too.
What cannot: a later SPAM on a mail the user has read, or one the flow sees only after the
window (the flow was down), reads as the user's; so does a move by another mail client or
app with access to the mailbox. Gmail's filter never takes SPAM off a mail, so "Not spam" is
always the user's.
"""

from __future__ import annotations

import asyncio
import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.gmail.api import GmailAPI, LabelChange
from agents.gmail.bayes import BayesModel
from agents.gmail.counters import day_counts, today
from agents.gmail.errors import GmailAPIError
from agents.gmail.message import ParsedEmail
from agents.gmail.settings import GmailSettings
from agents.gmail.topics import LEARNED_GROUP, VERDICTS_GROUP

__all__ = [
    "Lesson",
    "decide",
    "flow_moved_to_spam",
    "gather_stats",
    "gmails_own_filter",
    "learn_from_change",
    "learn_into_model",
    "model_lock",
    "record_verdict",
    "worth_learning",
]

_VERDICT_TTL = 60 * 24 * 3600.0  # a user may rescue a mail from Spam weeks later
LEARNED_TTL = 180 * 24 * 3600.0
PROVIDER_WINDOW = 15 * 60.0


def worth_learning(change: LabelChange) -> bool:
    """Could this change be a verdict? (Spam touched, or a user label such as ours removed.)"""
    touched = {*change.added, *change.removed}
    return "SPAM" in touched or any(label.startswith("Label_") for label in change.removed)


@dataclass
class Lesson:
    verdict: str | None  # "spam" | "ham", or None: nothing to learn
    why: str
    correction: bool = False  # the flow had judged this mail the other way
    outcome: str = ""  # "learned" | "relearned" | "known" once applied


def decide(change: LabelChange, flow: dict[str, Any] | None, own_labels: set[str]) -> Lesson:
    """What `change` teaches, given what the flow did to the mail (`flow`, or None)."""
    did = (flow or {}).get("verdict")
    moved_it = did == "spam" and (flow or {}).get("action") == "move"
    now = set(change.labels)
    if "SPAM" in change.added:
        if moved_it:
            return Lesson(None, "the flow moved it to Spam itself")
        return Lesson("spam", "you reported it as spam", correction=did in ("ham", "unsure"))
    in_inbox = "INBOX" in now and "SPAM" not in now
    if "SPAM" in change.removed and in_inbox:
        return Lesson("ham", "you moved it out of Spam", correction=did == "spam")
    if in_inbox and own_labels & set(change.removed):
        return Lesson("ham", "you removed the flow's label", correction=did == "spam")
    return Lesson(None, "not a verdict")


def gmails_own_filter(change: LabelChange, mail: ParsedEmail, now: float) -> str | None:
    """Why SPAM added to `mail` is most likely Gmail's filter, not the user; None when it
    reads as the user's (see the module docstring for what can and cannot be told)."""
    if "SPAM" not in change.added or "UNREAD" not in change.labels:
        return None
    if mail.internal_date_ms is None:
        return None
    age = now - mail.internal_date_ms / 1000
    if age > PROVIDER_WINDOW:
        return None
    return (
        f"most likely Gmail's own filter: SPAM added {max(age, 0) / 60:.0f} min after arrival, "
        "to a mail still unread"
    )


@contextmanager
def model_lock(path: Path) -> Iterator[None]:
    """One writer of the model at a time, across processes (the flow's lessons, `train`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def learn_into_model(path: Path, message_id: str, mail: ParsedEmail, is_spam: bool) -> str:
    """Load, learn, save under a file lock; "learned", "relearned" or "known"."""
    with model_lock(path):
        model = BayesModel.load(path) or BayesModel()
        outcome = model.learn_message(message_id, mail, is_spam)
        if outcome != "known":
            model.save(path)
    return outcome


async def record_verdict(state: Any, mail: ParsedEmail, verdict: str, action: str) -> None:
    """Remember what the flow decided and does, before it does it."""
    if mail.source == "gmail" and mail.id:
        entry = {"verdict": verdict, "action": action}
        await state.set(VERDICTS_GROUP, mail.id, entry, ttl=_VERDICT_TTL)


async def flow_moved_to_spam(state: Any) -> set[str]:
    """Ids of mails in Spam only because the flow moved them there (the user has not judged
    them since): `train --mailbox` must not learn the flow's own guesses as spam."""
    verdicts = await state.list(VERDICTS_GROUP)
    judged = await state.list(LEARNED_GROUP)
    return {
        mid
        for mid, entry in verdicts.items()
        if isinstance(entry, dict)
        and (entry.get("verdict"), entry.get("action")) == ("spam", "move")
        and mid not in judged
    }


def _own_label_ids(api: GmailAPI, settings: GmailSettings) -> set[str]:
    names = {settings.spam.unsure_label}
    if settings.spam.action == "label":
        names.add(settings.spam.label)
    return {i for i in (api.find_label(name) for name in names) if i is not None}


async def learn_from_change(
    data: dict[str, Any], api: GmailAPI, state: Any, settings: GmailSettings
) -> Lesson:
    """Learn what one `gmail.labels.changed` event teaches, once."""
    change = LabelChange(
        str(data["record_id"]),
        str(data["message_id"]),
        tuple(data.get("added") or ()),
        tuple(data.get("removed") or ()),
        tuple(data.get("labels") or ()),
    )
    if not settings.spam.use_bayes:
        return Lesson(None, "spam.use_bayes is off")
    # once the user has judged a mail, later moves of it are theirs too, not the flow's
    judged = await state.get(LEARNED_GROUP, change.message_id)
    flow = None if judged else await state.get(VERDICTS_GROUP, change.message_id)
    own = await asyncio.to_thread(_own_label_ids, api, settings)
    lesson = decide(change, flow, own)
    if lesson.verdict is None:
        return lesson
    try:
        mail = await asyncio.to_thread(api.get_parsed, change.message_id)
    except GmailAPIError as exc:
        if exc.status == 404:  # deleted since: nothing left to learn from
            return Lesson(None, "the message no longer exists")
        raise
    # Gmail's filter leaves a mail alone once the user has judged it ("Not spam")
    gmails = None if judged else gmails_own_filter(change, mail, time.time())
    if gmails:
        return Lesson(None, gmails)
    lesson.outcome = await asyncio.to_thread(
        learn_into_model,
        settings.spam.model_path,
        change.message_id,
        mail,
        lesson.verdict == "spam",
    )
    entry = {
        "as": lesson.verdict,
        "why": lesson.why,
        "correction": lesson.correction,
        "day": today(settings.timezone),
    }
    await state.set(LEARNED_GROUP, change.message_id, entry, ttl=LEARNED_TTL)
    return lesson


def gather_stats(settings: GmailSettings) -> dict[str, Any]:
    """What `stepline gmail stats` shows: today's counts, the model, the lessons learned."""
    from app.cli_common import run_with_runtime

    day = today(settings.timezone)

    async def read(runtime: Any) -> tuple[dict[str, int], dict[str, Any]]:
        return await day_counts(runtime.state, day), await runtime.state.list(LEARNED_GROUP)

    counts, learned = run_with_runtime(read, load_steps=False)
    path = settings.spam.model_path
    model = BayesModel.load(path) or BayesModel()
    lessons = [v for v in learned.values() if isinstance(v, dict)]
    return {
        "day": day,
        "today": counts,
        "model": {"path": str(path), "spam_docs": model.spam_docs, "ham_docs": model.ham_docs},
        "learned": {
            "total": len(lessons),
            "spam": sum(1 for v in lessons if v.get("as") == "spam"),
            "ham": sum(1 for v in lessons if v.get("as") == "ham"),
            "corrections": sum(1 for v in lessons if v.get("correction")),
        },
    }
