"""Train the naive Bayes model from folders of `.eml` files or from the connected mailbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from agents.gmail.api import GmailAPI
from agents.gmail.bayes import BayesModel
from agents.gmail.parse import ParsedEmail, parse_raw

__all__ = ["iter_eml", "train_from_dirs", "train_from_mailbox"]


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


def train_from_mailbox(model: BayesModel, api: GmailAPI, limit: int) -> tuple[int, int]:
    """Messages labelled SPAM teach spam; messages in INBOX teach ham."""
    spam_ids = api.list_ids(label_ids=["SPAM"], include_spam_trash=True, limit=limit)
    ham_ids = api.list_ids(label_ids=["INBOX"], limit=limit)
    n_spam = model.learn_many((api.get_parsed(i) for i in spam_ids), is_spam=True)
    n_ham = model.learn_many((api.get_parsed(i) for i in ham_ids), is_spam=False)
    return n_spam, n_ham
