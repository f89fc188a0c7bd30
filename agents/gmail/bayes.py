"""A Bayes spam model trained on the user's own mail, scored on its most telling tokens.

Scoring follows the Graham/Robinson line of spam filters (as SpamBayes does): each token gets
a spam probability from the share of spam and of wanted mail that carried it, pulled toward
0.5 while it has been seen only a few times; the ~150 tokens farthest from 0.5 are kept, and
Fisher's χ² method asks separately "is this combination too spammy to be chance?" and "too
hammy?". The answer is (S - H + 1) / 2: near 1 or 0 when the evidence is one-sided, near 0.5
when it is thin or mixed. A mail with many ordinary words is no longer dragged to an extreme
by the sheer number of weak tokens, which is what sank the every-token naive Bayes before.

Tokens that always come together are one fact, not several: the nearest relay gives its
host, its /16 and its /24 network, a mailing list its link host, domain and path words, each
with the very same counts, and counted apart the few a list adds to every mail can outvote
the words of spam posted to that list. `MIN_SHARED` leaves out a clue whose spam and ham
counts equal those of a stronger clue kept, once the pair has been seen 20 times. Alone, in
4-fold cross-validation on the train half of the SpamAssassin corpus over five fold splits,
it caught 4,706 of 5 x 969 spam at 0.8 against 4,686 at the same 27 of 5 x 2,086 wanted
mails flagged, but on the test half 899 of 927 at 7 of 2,064 flagged instead of 898 at 6.
With the Date token (`tokens.py`) and wanted mail the model gets wrong learned twice
(`training.relearn_mistakes`): 4,706 at 25 in cross-validation, in no split fewer spam or
more wanted mail flagged, and on the test half 897 at 4 (0.19 %): kept, all three.
`bench/gmail_tune.py --cv --min-shared 0` measures it off.

The model is a JSON file of per-mail token counts (inspectable, diffable), written atomically.
It also remembers which Gmail messages it learned and as what, so a correction the user makes
is learned once, and a correction of a correction replaces the first lesson.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from agents.gmail.message import ParsedEmail
from agents.gmail.tokens import tokens

__all__ = ["BayesModel", "chi2_tail", "load_cached", "tokens"]

MAX_VOCABULARY = 100_000  # bounds the model file; the rarest tokens are dropped when saving
MAX_REMEMBERED = 20_000  # learned message ids kept (oldest forgotten first)
MODEL_VERSION = 2
_READABLE_VERSIONS = (1, 2)  # version 1 held the same per-mail counts, without `learned`
MAX_CLUES = 150
MIN_STRENGTH = 0.1  # a token within 0.1 of 0.5 is not a clue
_PRIOR_STRENGTH = 0.45  # how many sightings the neutral 0.5 is worth
_UNKNOWN = 0.5
MIN_SHARED: int | None = 20  # sightings from which equal counts are "the same fact"


def chi2_tail(x2: float, dof: int) -> float:
    """P(χ² with `dof` (even) degrees of freedom ≥ x2), by the series for even dof."""
    m = x2 / 2.0
    term = total = math.exp(-m)
    for i in range(1, dof // 2):
        term *= m / i
        total += term
    return min(total, 1.0)


@dataclass
class BayesModel:
    spam_docs: int = 0
    ham_docs: int = 0
    spam: Counter[str] = field(default_factory=Counter)
    ham: Counter[str] = field(default_factory=Counter)
    learned: dict[str, str] = field(default_factory=dict)  # message id -> "spam" | "ham"

    @property
    def trained(self) -> bool:
        return self.spam_docs > 0 and self.ham_docs > 0

    def learn(self, mail: ParsedEmail, is_spam: bool) -> None:
        (self.spam if is_spam else self.ham).update(tokens(mail))
        if is_spam:
            self.spam_docs += 1
        else:
            self.ham_docs += 1

    def unlearn(self, mail: ParsedEmail, is_spam: bool) -> None:
        """Take back one `learn(mail, is_spam)`; counts never go below zero."""
        target = self.spam if is_spam else self.ham
        for tok in tokens(mail):
            left = target.get(tok, 0) - 1
            if left > 0:
                target[tok] = left
            else:
                target.pop(tok, None)
        if is_spam:
            self.spam_docs = max(0, self.spam_docs - 1)
        else:
            self.ham_docs = max(0, self.ham_docs - 1)

    def learn_many(self, mails: Iterable[ParsedEmail], is_spam: bool) -> int:
        n = 0
        for mail in mails:
            self.learn(mail, is_spam)
            n += 1
        return n

    def learn_message(self, message_id: str, mail: ParsedEmail, is_spam: bool) -> str:
        """Learn a message the user judged: "learned", "relearned" (it was learned as the
        other kind before and that lesson is taken back) or "known" (nothing to do)."""
        verdict = "spam" if is_spam else "ham"
        before = self.learned.pop(message_id, None)
        self.learned[message_id] = verdict  # re-inserted: the newest lessons are kept longest
        if before == verdict:
            return "known"
        if before is not None:
            self.unlearn(mail, before == "spam")
        self.learn(mail, is_spam)
        while len(self.learned) > MAX_REMEMBERED:
            self.learned.pop(next(iter(self.learned)))
        return "learned" if before is None else "relearned"

    def token_probability(self, tok: str) -> float:
        s, h = self.spam.get(tok, 0), self.ham.get(tok, 0)
        if s == 0 and h == 0:
            return _UNKNOWN
        spam_ratio = s / max(self.spam_docs, 1)
        ham_ratio = h / max(self.ham_docs, 1)
        raw = spam_ratio / (spam_ratio + ham_ratio)
        n = s + h
        return (_PRIOR_STRENGTH * _UNKNOWN + n * raw) / (_PRIOR_STRENGTH + n)

    def clues(self, mail: ParsedEmail) -> list[tuple[float, str]]:
        """The (probability, token) pairs that decide, strongest first; of tokens with the
        same counts (one fact seen through several tokens) only the first."""
        found = []
        for tok in tokens(mail):
            p = self.token_probability(tok)
            if abs(p - 0.5) >= MIN_STRENGTH:
                found.append((p, tok))
        found.sort(key=lambda c: (-abs(c[0] - 0.5), c[1]))
        kept: list[tuple[float, str]] = []
        seen: set[tuple[int, int]] = set()
        for p, tok in found:
            counts = (self.spam.get(tok, 0), self.ham.get(tok, 0))
            if MIN_SHARED is not None and sum(counts) >= MIN_SHARED:
                if counts in seen:
                    continue
                seen.add(counts)
            kept.append((p, tok))
            if len(kept) == MAX_CLUES:
                break
        return kept

    def spam_probability(self, mail: ParsedEmail) -> float:
        """χ²-combined score in [0, 1]; 0.5 when the model has not seen both kinds, or when
        the mail holds no telling token."""
        if not self.trained:
            return 0.5
        clues = self.clues(mail)
        if not clues:
            return 0.5
        # sums of logs, not products: 150 probabilities near 0 would underflow
        ln_ham = sum(math.log(p) for p, _ in clues)
        ln_spam = sum(math.log1p(-p) for p, _ in clues)
        dof = 2 * len(clues)
        spam = 1.0 - chi2_tail(-2.0 * ln_spam, dof)
        ham = 1.0 - chi2_tail(-2.0 * ln_ham, dof)
        return (spam - ham + 1.0) / 2.0

    # -- storage -----------------------------------------------------------------------------
    def to_json(self) -> dict[str, object]:
        total = self.spam + self.ham
        keep = {tok for tok, _ in total.most_common(MAX_VOCABULARY)}
        return {
            "version": MODEL_VERSION,
            "spam_docs": self.spam_docs,
            "ham_docs": self.ham_docs,
            "spam": {t: c for t, c in self.spam.items() if t in keep},
            "ham": {t: c for t, c in self.ham.items() if t in keep},
            "learned": self.learned,
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".bayes-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.to_json(), fh, separators=(",", ":"))
            os.replace(tmp, path)  # readers never see a half-written model
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> BayesModel | None:
        """The stored model, or None when there is none; a damaged file is a clear error."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"spam model {path} is unreadable ({exc.__class__.__name__}); "
                "run `stepline gmail train` again"
            ) from None
        if not isinstance(data, dict) or data.get("version") not in _READABLE_VERSIONS:
            raise ValueError(
                f"spam model {path} has an unknown version; retrain it with "
                "`stepline gmail train --reset`"
            )
        return cls(
            spam_docs=int(data["spam_docs"]),
            ham_docs=int(data["ham_docs"]),
            spam=Counter(data["spam"]),
            ham=Counter(data["ham"]),
            learned=dict(data.get("learned") or {}),
        )


_cache: dict[Path, tuple[int, BayesModel | None]] = {}


def load_cached(path: Path) -> BayesModel | None:
    """Load once per file version: the flow calls this for every message."""
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    hit = _cache.get(path)
    if hit and hit[0] == stamp:
        return hit[1]
    model = BayesModel.load(path)
    _cache[path] = (stamp, model)
    return model
