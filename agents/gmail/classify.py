"""One mail, one decision: spam verdict, then priority. The flow's steps and the offline
`stepline gmail classify` command both call `assess`, so they cannot disagree."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agents.gmail.bayes import BayesModel, load_cached
from agents.gmail.parse import ParsedEmail
from agents.gmail.priority import PriorityResult, classify_priority, is_vip
from agents.gmail.settings import GmailSettings
from agents.gmail.spam import SpamVerdict, assess_spam
from agents.llm import LLMClient, StateLike

__all__ = [
    "VIP_GROUP",
    "Assessment",
    "all_vips",
    "assess",
    "assess_priority",
    "load_model",
    "state_vips",
]

VIP_GROUP = "gmail.vip"  # state group: key = address or *@domain, value = anything truthy


@dataclass
class Assessment:
    spam: SpamVerdict
    priority: PriorityResult

    def as_json(self) -> dict[str, Any]:
        return {
            "spam_score": self.spam.score,
            "is_spam": self.spam.is_spam,
            "unsure": self.spam.unsure,
            "priority": self.priority.priority,
            "reasons": self.spam.reasons + self.priority.reasons,
        }


def all_vips(settings: GmailSettings, extra: Iterable[str] = ()) -> list[str]:
    """VIPs from `config/gmail.yaml` plus those kept in state (`extra`)."""
    return [*settings.priority.vip_senders, *(e.strip().lower() for e in extra if e.strip())]


async def state_vips(state: Any) -> list[str]:
    """The VIP entries kept in state group `gmail.vip` (edited with `stepline state set`)."""
    entries = await state.list(VIP_GROUP)
    return [key for key, value in entries.items() if value not in (False, None, 0, "")]


def load_model(settings: GmailSettings) -> BayesModel | None:
    if not settings.spam.use_bayes:
        return None
    return load_cached(settings.spam.model_path)


def assess_priority(
    mail: ParsedEmail, settings: GmailSettings, vips: Iterable[str]
) -> PriorityResult:
    return classify_priority(mail, settings.priority.urgent_keywords, vips)


async def assess(
    mail: ParsedEmail,
    settings: GmailSettings,
    *,
    extra_vips: Iterable[str] = (),
    llm: LLMClient | None = None,
    model: BayesModel | None = None,
    state: StateLike | None = None,
) -> Assessment:
    """Spam first; a mail judged spam is never high priority (spam loves the word URGENT)."""
    vips = all_vips(settings, extra_vips)
    verdict = await assess_spam(
        mail,
        settings.spam,
        vip=is_vip(mail.from_address, vips),
        llm=llm,
        model=model,
        state=state,
    )
    if verdict.is_spam:
        return Assessment(verdict, PriorityResult())
    return Assessment(verdict, assess_priority(mail, settings, vips))
