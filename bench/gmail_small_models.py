"""How a small Bayes model does beside the rules, on the TRAIN half of the SpamAssassin corpus.

    .venv/bin/python bench/gmail_small_models.py [--draws 3] [--sizes 3,25,100,200,400]

A user's model starts with a few corrections, and a "trained" model can be one spam and one
wanted mail. For each size k, models of k spam + k wanted mails drawn at random from three
quarters of the train half (the `gmail_tune.py --cv` quarters of split 0) judge the fourth,
through `assess_spam`, as shipped (the model's weight grows with its size up to
`spam.TRUSTED_DOCS` of each) and with the trained weights at once (what the flow did before).
The rules alone are the zero-config line. This is how `TRUSTED_DOCS` and the ramp were set;
the test half is not read.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gmail_corpus import load_corpus, split
from gmail_tune import _fold, _option

from agents.gmail import spam
from agents.gmail.bayes import BayesModel
from agents.gmail.parse import ParsedEmail, parse_raw
from agents.gmail.settings import SpamSettings


def _judge(held: list[tuple[ParsedEmail, bool]], model: BayesModel | None) -> tuple[int, int]:
    """(spam caught, wanted mails flagged) of `held` at the threshold."""
    settings = SpamSettings(use_llm=False)
    caught = flagged = 0
    for mail, is_spam in held:
        verdict = asyncio.run(spam.assess_spam(mail, settings, model=model))
        caught += verdict.is_spam and is_spam
        flagged += verdict.is_spam and not is_spam
    return caught, flagged


def main() -> None:
    draws = int(_option("--draws", 3))
    sizes = [3, 25, 100, 200, 400]
    if "--sizes" in sys.argv:
        sizes = [int(k) for k in sys.argv[sys.argv.index("--sizes") + 1].split(",")]
    train, _ = split(load_corpus())
    mails = [(parse_raw(s.raw), s.is_spam, _fold(s.name, s.digest, 0)) for s in train]
    held = [(m, y) for m, y, fold in mails if fold == 3]
    pool = {y: [m for m, is_spam, fold in mails if fold != 3 and is_spam == y] for y in (1, 0)}
    n_spam = sum(y for _, y in held)
    n_ham = len(held) - n_spam

    def line(name: str, caught: float, flagged: float) -> str:
        return f"{name}: {caught / n_spam:.1%} spam caught, {flagged / n_ham:.2%} wanted flagged"

    alone = line("rules alone", *_judge(held, None))
    print(f"judging {n_spam} spam and {n_ham} wanted mails; {alone}", flush=True)
    trusted = spam.TRUSTED_DOCS
    for k in sizes:
        sums = {"as shipped": [0, 0], "trained weights at once": [0, 0]}
        for draw in range(draws):
            rnd = random.Random(draw)
            model = BayesModel()
            for y in (1, 0):
                model.learn_many(rnd.sample(pool[y], min(k, len(pool[y]))), is_spam=bool(y))
            for name, docs in (("as shipped", trusted), ("trained weights at once", 1)):
                spam.TRUSTED_DOCS = docs  # 1: any trained model counts at its full weight
                caught, flagged = _judge(held, model)
                sums[name][0] += caught
                sums[name][1] += flagged
            spam.TRUSTED_DOCS = trusted
        shown = "; ".join(line(n, c / draws, f / draws) for n, (c, f) in sums.items())
        print(f"k = {k} of each ({draws} draws): {shown}", flush=True)


if __name__ == "__main__":
    main()
