"""A multinomial naive Bayes spam model trained on the user's own mail.

The model is a JSON file of token counts (so it can be inspected and diffed), written
atomically. Tokens are lower-cased words of subject and body plus a few header tokens
(sender domain, link hosts), because who sends and where links go say as much as the words.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from agents.gmail.parse import ParsedEmail

__all__ = ["BayesModel", "load_cached", "tokens"]

MAX_VOCABULARY = 50_000  # bounds the model file; rarer tokens are dropped when saving
MODEL_VERSION = 1
_WORD = re.compile(r"[^\W\d_][\w'-]{1,29}", re.UNICODE)


def tokens(mail: ParsedEmail) -> list[str]:
    """The features of one mail; repeated words count once per mail (Bernoulli-style)."""
    words = {w.lower() for w in _WORD.findall(f"{mail.subject} {mail.subject} {mail.text}")}
    extra = {f"subject:{w.lower()}" for w in _WORD.findall(mail.subject)}
    if mail.from_domain:
        extra.add(f"from:{mail.from_domain}")
    for link in mail.links[:50]:
        host = urlsplit(link.href).hostname
        if host:
            extra.add(f"link:{host.lower()}")
    for method in mail.auth.failed:
        extra.add(f"authfail:{method}")
    return sorted(words | extra)


@dataclass
class BayesModel:
    spam_docs: int = 0
    ham_docs: int = 0
    spam: Counter[str] = field(default_factory=Counter)
    ham: Counter[str] = field(default_factory=Counter)

    @property
    def trained(self) -> bool:
        return self.spam_docs > 0 and self.ham_docs > 0

    def learn(self, mail: ParsedEmail, is_spam: bool) -> None:
        target = self.spam if is_spam else self.ham
        target.update(tokens(mail))
        if is_spam:
            self.spam_docs += 1
        else:
            self.ham_docs += 1

    def learn_many(self, mails: Iterable[ParsedEmail], is_spam: bool) -> int:
        n = 0
        for mail in mails:
            self.learn(mail, is_spam)
            n += 1
        return n

    def spam_probability(self, mail: ParsedEmail) -> float:
        """P(spam | tokens) with Laplace smoothing; 0.5 when the model has not seen both kinds."""
        if not self.trained:
            return 0.5
        log_odds = math.log(self.spam_docs / self.ham_docs)
        for tok in tokens(mail):
            s, h = self.spam.get(tok, 0), self.ham.get(tok, 0)
            if s == 0 and h == 0:
                continue  # an unseen token says nothing
            p_spam = (s + 1) / (self.spam_docs + 2)
            p_ham = (h + 1) / (self.ham_docs + 2)
            log_odds += math.log(p_spam / p_ham)
        log_odds = max(-30.0, min(30.0, log_odds))
        return 1 / (1 + math.exp(-log_odds))

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
        if data.get("version") != MODEL_VERSION:
            raise ValueError(f"spam model {path} has an unknown version; retrain it")
        return cls(
            spam_docs=int(data["spam_docs"]),
            ham_docs=int(data["ham_docs"]),
            spam=Counter(data["spam"]),
            ham=Counter(data["ham"]),
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
