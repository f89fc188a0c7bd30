"""Train the Bayes model from files of mail or from the connected mailbox.

A file that cannot be read (missing, unreadable, empty) is reported and skipped; the rest is
learned. The parser itself never fails, so every readable file teaches something.

After a training, `relearn_mistakes` learns once more each wanted mail of it that the
model would have put at or above `spam.unsure` had it not seen that mail (the mail is taken
out of the counts, scored by the rules and the model as the flow would, and put back). A lost
wanted mail is the worst harm, so the newsletter that reads like spam counts twice; the
hundredth colleague's mail once. It is the "train until no errors" SpamBayes users ran for
hard ham, one round, on the leave-one-out verdict (scored with itself in the counts no
training mail is ever wrong). Relearning missed spam as well (`spam_too`) caught more spam
but moved more wanted mail: in 4-fold cross-validation on the train half of the SpamAssassin
corpus over five splits 4,707 of 5 x 969 spam at 0.8 instead of 4,686, at 29 of 5 x 2,086
wanted mails flagged instead of 27, and on the test half 901 of 927 at 7 of 2,064 flagged
instead of 898 at 6, past the 0.3 % a lost wanted mail may cost; so only wanted mail is
relearned (`stepline gmail train --no-relearn` skips it; the README has the figures).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from agents.gmail.api import GmailAPI
from agents.gmail.bayes import BayesModel
from agents.gmail.parse import ParsedEmail, parse_raw
from agents.gmail.settings import SpamSettings
from agents.gmail.spam import local_spam_score

__all__ = [
    "FileTraining",
    "MailboxTraining",
    "eml_files",
    "learn_files",
    "read_mail_file",
    "relearn_mistakes",
    "train_from_dirs",
    "train_from_mailbox",
]


def read_mail_file(path: Path) -> tuple[ParsedEmail | None, str | None]:
    """(mail, None), or (None, why) for a file that holds no mail to read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or exc.__class__.__name__}"
    if not raw.strip():
        return None, f"{path} is empty"
    return parse_raw(raw), None


def eml_files(folder: Path) -> list[Path]:
    """Every `*.eml` below `folder`, sorted so that a run is repeatable."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a directory of .eml files")
    return sorted(p for p in folder.rglob("*.eml") if p.is_file())


@dataclass
class FileTraining:
    spam: int = 0
    ham: int = 0
    unreadable: list[str] = field(default_factory=list)  # one reason per skipped file
    with_problems: int = 0  # learned, but part of the mail could not be read


def learn_files(
    model: BayesModel,
    paths: Iterable[Path],
    is_spam: bool,
    report: FileTraining,
    lessons: list[tuple[ParsedEmail, bool]] | None = None,
) -> None:
    """Learn each readable file; `lessons`, when given, gets each (mail, is_spam) learned."""
    for path in paths:
        mail, why = read_mail_file(path)
        if mail is None:
            report.unreadable.append(why or str(path))
            continue
        model.learn(mail, is_spam)
        if lessons is not None:
            lessons.append((mail, is_spam))
        report.with_problems += bool(mail.problems)
        if is_spam:
            report.spam += 1
        else:
            report.ham += 1


def train_from_dirs(
    model: BayesModel,
    spam: list[Path],
    ham: list[Path],
    lessons: list[tuple[ParsedEmail, bool]] | None = None,
) -> FileTraining:
    report = FileTraining()
    spam_files = [p for d in spam for p in eml_files(d)]  # every folder checked before learning
    ham_files = [p for d in ham for p in eml_files(d)]
    learn_files(model, spam_files, True, report, lessons)
    learn_files(model, ham_files, False, report, lessons)
    return report


@dataclass
class MailboxTraining:
    spam: int = 0
    ham: int = 0
    skipped: int = 0  # carried one of the flow's own labels
    moved_by_flow: int = 0  # in SPAM because the flow moved it there, not the user
    left_out: int = 0  # read but not learned, to keep spam and wanted mail balanced


def train_from_mailbox(
    model: BayesModel,
    api: GmailAPI,
    limit: int,
    own_labels: Iterable[str] = (),
    *,
    balanced: bool = True,
    flow_moved: Collection[str] = (),
    lessons: list[tuple[ParsedEmail, bool]] | None = None,
) -> MailboxTraining:
    """Messages labelled SPAM teach spam; messages in INBOX teach ham.

    A message carrying one of `own_labels` (the labels the flow puts on suspected or unsure
    mail) is the flow's own verdict, not the user's: learning it would only feed the model
    its past guesses (and in `label` mode such mail is still in INBOX, so it would even be
    learned as wanted). `limit` counts listed messages per label, skipped ones included.

    `flow_moved` are the ids the flow itself moved to Spam (`learning.flow_moved_to_spam`):
    in `move` mode they carry no label of ours, but they are its guesses all the same.

    `balanced` learns as many wanted mails as spam (the fewer of the two decides): an inbox
    of 500 mails against 20 spam would teach the model that almost nothing is spam.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1 (got {limit})")
    own_ids = {i for i in (api.find_label(name) for name in own_labels) if i is not None}
    result = MailboxTraining()

    def usable(ids: Iterable[str]) -> Iterator[ParsedEmail]:
        for mid in ids:
            if mid in flow_moved:
                result.moved_by_flow += 1
                continue
            mail = api.get_parsed(mid)
            if own_ids & set(mail.label_ids):
                result.skipped += 1
                continue
            yield mail

    spam = list(usable(api.iter_ids(label_ids=["SPAM"], include_spam_trash=True, limit=limit)))
    ham: list[ParsedEmail] = []
    for mail in usable(api.iter_ids(label_ids=["INBOX"], limit=limit)):
        if balanced and len(ham) >= len(spam):
            break
        ham.append(mail)
    if balanced:
        result.left_out = len(spam) - len(ham)
        spam = spam[: len(ham)]
    result.spam = model.learn_many(spam, is_spam=True)
    result.ham = model.learn_many(ham, is_spam=False)
    if lessons is not None:
        lessons += [(m, True) for m in spam] + [(m, False) for m in ham]
    return result


def relearn_mistakes(
    model: BayesModel,
    lessons: Iterable[tuple[ParsedEmail, bool]],
    settings: SpamSettings,
    *,
    spam_too: bool = False,
) -> int:
    """Learn again each of `lessons` (already learned by `model`) that the model, without
    it, would get wrong (see the module docstring); how many were learned again."""
    if not model.trained:
        return 0  # it scores nothing yet: every verdict would be the rules'
    settings = settings.model_copy(update={"use_bayes": True})  # the model is what is trained
    wrong: list[tuple[ParsedEmail, bool]] = []
    for mail, is_spam in lessons:
        if is_spam and not spam_too:
            continue
        model.unlearn(mail, is_spam)
        try:
            score = local_spam_score(mail, settings, model)
        finally:
            model.learn(mail, is_spam)
        if score < settings.threshold if is_spam else score >= settings.unsure:
            wrong.append((mail, is_spam))
    for mail, is_spam in wrong:  # all judged by the same model first, then learned
        model.learn(mail, is_spam)
    return len(wrong)
