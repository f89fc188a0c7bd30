"""Train the naive Bayes model from folders of `.eml` files or from the connected mailbox."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agents.gmail.api import GmailAPI
from agents.gmail.bayes import BayesModel
from agents.gmail.parse import ParsedEmail, parse_raw

__all__ = ["MailboxTraining", "iter_eml", "train_from_dirs", "train_from_mailbox"]


def iter_eml(folder: Path) -> Iterator[ParsedEmail]:
    """Every `*.eml` below `folder` (sorted, so a run is repeatable)."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a directory of .eml files")
    for path in sorted(folder.rglob("*.eml")):
        yield parse_raw(path.read_bytes())


def train_from_dirs(model: BayesModel, spam: list[Path], ham: list[Path]) -> tuple[int, int]:
    n_spam = sum(model.learn_many(iter_eml(d), is_spam=True) for d in spam)
    n_ham = sum(model.learn_many(iter_eml(d), is_spam=False) for d in ham)
    return n_spam, n_ham


@dataclass
class MailboxTraining:
    spam: int = 0
    ham: int = 0
    skipped: int = 0  # carried the flow's own spam label


def train_from_mailbox(
    model: BayesModel, api: GmailAPI, limit: int, own_label: str | None = None
) -> MailboxTraining:
    """Messages labelled SPAM teach spam; messages in INBOX teach ham.

    A message carrying `own_label` (the label the flow puts on suspected spam) is the flow's
    own verdict, not the user's: learning it would only feed the model its past guesses (and
    in `label` mode such mail is still in INBOX, so it would even be learned as wanted).
    `limit` counts listed messages per label, skipped ones included.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1 (got {limit})")
    own_id = api.find_label(own_label) if own_label else None
    result = MailboxTraining()

    def usable(ids: Iterable[str]) -> Iterator[ParsedEmail]:
        for mid in ids:
            mail = api.get_parsed(mid)
            if own_id is not None and own_id in mail.label_ids:
                result.skipped += 1
                continue
            yield mail

    spam_ids = api.list_ids(label_ids=["SPAM"], include_spam_trash=True, limit=limit)
    ham_ids = api.list_ids(label_ids=["INBOX"], limit=limit)
    result.spam = model.learn_many(usable(spam_ids), is_spam=True)
    result.ham = model.learn_many(usable(ham_ids), is_spam=False)
    return result
