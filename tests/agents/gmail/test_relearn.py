"""`relearn_mistakes`: wanted mail the model would flag without it is learned twice."""

from __future__ import annotations

import pytest

from agents.gmail import spam
from agents.gmail.bayes import BayesModel
from agents.gmail.parse import ParsedEmail
from agents.gmail.settings import SpamSettings
from agents.gmail.spam import local_spam_score
from agents.gmail.training import relearn_mistakes


@pytest.fixture(autouse=True)
def trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The toy models here learn a dozen mails: weigh them as a user's trained model."""
    monkeypatch.setattr(spam, "TRUSTED_DOCS", 1)


SETTINGS = SpamSettings(use_llm=False, use_rules=False)  # the model's verdict alone

SPAM = [
    "Claim your free prize now, winner! Cheap offer and casino bonus today",
    "You won the lottery, claim the prize, free bonus offer for the winner",
    "Casino bonus: free spins, claim now, winner takes the prize",
    "Cheap offer, free shipping, claim your bonus prize now",
    "Winner! Free casino spins, claim the offer before midnight",
    "Free prize offer: claim your casino bonus, winner today",
]
WANTED = [
    "Meeting notes from the planning session and the budget review",
    "Can we move the budget review to Thursday afternoon?",
    "Draft of the quarterly report attached, comments welcome",
    "Planning session moved, notes and the report to follow",
    "Thursday planning: the budget draft and the review notes",
    "Comments on the quarterly report draft before the meeting",
]
# wanted, but in spam's words: the club's newsletter the user signed up for
NEWSLETTER = "Club newsletter: claim your free prize draw ticket, winner announced Thursday"


def mail(text: str, sender: str) -> ParsedEmail:
    return ParsedEmail(from_address=sender, subject=text.split(",")[0], text=text)


def lessons() -> list[tuple[ParsedEmail, bool]]:
    return (
        [(mail(t, "promo@spam.example"), True) for t in SPAM]
        + [(mail(t, "anna@work.example"), False) for t in WANTED]
        + [(mail(NEWSLETTER, "news@club.example"), False)]
    )


def trained(items: list[tuple[ParsedEmail, bool]]) -> BayesModel:
    model = BayesModel()
    for m, is_spam in items:
        model.learn(m, is_spam)
    return model


def test_the_wanted_mail_that_reads_like_spam_is_learned_again_and_the_next_one_passes() -> None:
    items = lessons()
    once, twice = trained(items), trained(items)
    newsletter = items[-1][0]
    # without it, the model would take the newsletter for spam: that is the mistake relearned
    twice.unlearn(newsletter, False)
    assert local_spam_score(newsletter, SETTINGS, twice) >= SETTINGS.unsure
    twice.learn(newsletter, False)
    assert relearn_mistakes(twice, items, SETTINGS) == 1
    assert (twice.spam_docs, twice.ham_docs) == (len(SPAM), len(WANTED) + 2)
    next_issue = mail("Club newsletter: free prize draw, winner announced", "news@club.example")
    assert local_spam_score(next_issue, SETTINGS, twice) < local_spam_score(
        next_issue, SETTINGS, once
    )


def test_nothing_to_relearn_in_a_model_that_has_seen_only_one_kind() -> None:
    items = [(m, s) for m, s in lessons() if s]
    model = trained(items)
    assert relearn_mistakes(model, items, SETTINGS) == 0
    assert model.spam_docs == len(SPAM)


def test_a_missed_spam_is_relearned_only_when_asked() -> None:
    # a spam in wanted mail's words: the model, without it, lets it through
    quiet = (
        mail("Planning notes: the budget review moved to Thursday", "promo@spam.example"),
        True,
    )
    items = [*lessons()[:-1], quiet]
    model = trained(items)
    assert relearn_mistakes(model, items, SETTINGS) == 0
    assert relearn_mistakes(model, items, SETTINGS, spam_too=True) == 1
    assert model.spam_docs == len(SPAM) + 2
