"""Fit the built-in spam rules' weights on the TRAIN half of the SpamAssassin corpus.

    .venv/bin/python bench/gmail_tune.py            # prints BIAS and TUNED for rules.py
    .venv/bin/python bench/gmail_tune.py --write    # and writes them into agents/gmail/rules.py
    .venv/bin/python bench/gmail_tune.py --cv [--bayes-scale 2.5 --rules-beside 0.15]
        [--with rpath,cte,html-layout,...]  # optional token families, tokens.OPTIONAL

An L2-regularised logistic regression over the signs `agents.gmail.rules.find_signs` reports
(spam against easy + hard ham, both classes weighted equally), by batch gradient descent on
the distinct sign patterns. Signs in `rules.HAND` keep their hand-set weights. Afterwards the
bias is lowered until at most 0.3 % of the train ham reaches the 0.8 threshold: a lost wanted
mail costs more than a missed spam. The test half is never read here; `bench/gmail_spam.py`
reports on it.

`--cv` checks how the rules and the Bayes model combine (`spam.BAYES_SCALE`,
`spam.RULES_BESIDE_BAYES`, or the values given) by 4-fold cross-validation on the train half:
a model trained on three quarters scores the fourth, through `assess_spam`, and the four
quarters' verdicts are pooled. That is how those two were chosen; the test half is not read.
"""

from __future__ import annotations

import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gmail_corpus import load_corpus, split

from agents.gmail.parse import parse_raw
from agents.gmail.rules import HAND, TUNED, find_signs

RULES = Path(__file__).resolve().parents[1] / "agents" / "gmail" / "rules.py"
START, END = "# --- tuned:", "# --- end of tuned"
MIN_SEEN = 10  # a sign seen in fewer train messages cannot be fitted: put it in HAND


def _option(name: str, default: float) -> float:
    return float(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


# Share of the loss on the ham side, and how much more a hard ham (commercial mail someone
# wanted) counts than an easy one: set on the train half to catch most spam at the ham target.
HAM_WEIGHT = _option("--ham-weight", 0.6)
HARD_WEIGHT = _option("--hard-weight", 5.0)
L2 = 0.002
STEPS = 3000
RATE = 4.0
HAM_SHARE_AT_THRESHOLD = 0.003
THRESHOLD = 0.8
CLIP = (0.0, 4.0)  # a spam sign never counts for a mail; only HAM_SIGNS may go below zero
HAM_SIGNS = {"thread_reply": -2.0}  # sign -> lowest weight


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x))))


def fit(
    patterns: dict[tuple[tuple[str, ...], bool], float], names: list[str]
) -> tuple[float, dict[str, float]]:
    n_spam = sum(c for (_, spam), c in patterns.items() if spam)
    n_ham = sum(c for (_, spam), c in patterns.items() if not spam)
    rows = [
        (
            sig,
            1.0 if spam else 0.0,
            count * (1 - HAM_WEIGHT if spam else HAM_WEIGHT) / (n_spam if spam else n_ham),
        )
        for (sig, spam), count in patterns.items()
    ]
    w = dict.fromkeys(names, 0.0)
    bias = 0.0
    for _ in range(STEPS):
        grad = dict.fromkeys(names, 0.0)
        g_bias = 0.0
        for sig, y, weight in rows:
            err = (_sigmoid(bias + sum(w[n] for n in sig)) - y) * weight
            g_bias += err
            for n in sig:
                grad[n] += err
        bias -= RATE * g_bias
        for n in names:
            low = HAM_SIGNS.get(n, CLIP[0])
            w[n] = min(CLIP[1], max(low, w[n] - RATE * (grad[n] + L2 * w[n])))
    return bias, w


def cross_validate() -> None:
    import asyncio

    from agents.gmail import spam, tokens
    from agents.gmail.bayes import BayesModel
    from agents.gmail.settings import SpamSettings

    spam.BAYES_SCALE = _option("--bayes-scale", spam.BAYES_SCALE)
    spam.RULES_BESIDE_BAYES = _option("--rules-beside", spam.RULES_BESIDE_BAYES)
    if "--with" in sys.argv:  # optional token families, to measure what each adds
        wanted = set(sys.argv[sys.argv.index("--with") + 1].split(","))
        if wanted - tokens.OPTIONAL:
            sys.exit(f"--with takes some of {', '.join(sorted(tokens.OPTIONAL))}")
        tokens.GROUPS |= wanted
    train, _ = split(load_corpus())
    mails = [(parse_raw(s.raw), s.is_spam, int(s.digest, 16) // 2 % 4) for s in train]
    settings = SpamSettings(use_llm=False)
    scored: list[tuple[float, bool]] = []
    for fold in range(4):
        model = BayesModel()
        for mail, is_spam, k in mails:
            if k != fold:
                model.learn(mail, is_spam)
        for mail, is_spam, k in mails:
            if k == fold:
                verdict = asyncio.run(spam.assess_spam(mail, settings, model=model))
                scored.append((verdict.score, is_spam))
    spam_scores = [p for p, s in scored if s]
    ham_scores = sorted((p for p, s in scored if not s), reverse=True)
    caught = sum(p >= settings.threshold for p in spam_scores)
    flagged = sum(p >= settings.threshold for p in ham_scores)
    cut = ham_scores[int(len(ham_scores) * HAM_SHARE_AT_THRESHOLD)]
    print(
        f"4-fold CV on the train half, token groups {sorted(tokens.GROUPS)}, "
        f"bayes scale {spam.BAYES_SCALE}, rules beside "
        f"{spam.RULES_BESIDE_BAYES}: at {settings.threshold} spam caught "
        f"{caught / len(spam_scores):.2%} ({caught}/{len(spam_scores)}), wanted mail flagged "
        f"{flagged / len(ham_scores):.2%} ({flagged}/{len(ham_scores)}); at the best cut "
        f"flagging {HAM_SHARE_AT_THRESHOLD:.1%}: spam caught "
        f"{sum(p > cut for p in spam_scores) / len(spam_scores):.2%}"
    )


def main() -> None:
    if "--cv" in sys.argv:
        cross_validate()
        return
    train, _ = split(load_corpus())
    patterns: dict[tuple[tuple[str, ...], bool], float] = defaultdict(float)
    ham_rows: list[tuple[str, ...]] = []
    seen: Counter[tuple[str, bool]] = Counter()
    for sample in train:
        signs = tuple(sorted(n for n in find_signs(parse_raw(sample.raw)) if n not in HAND))
        patterns[(signs, sample.is_spam)] += HARD_WEIGHT if sample.hard else 1
        for n in signs:
            seen[(n, sample.is_spam)] += 1
        if not sample.is_spam:
            ham_rows.append(signs)
    names = sorted(TUNED)
    bias, w = fit(patterns, names)
    ham_scores = sorted(bias + sum(w[n] for n in sig) for sig in ham_rows)
    cut = ham_scores[min(len(ham_scores) - 1, int(len(ham_scores) * (1 - HAM_SHARE_AT_THRESHOLD)))]
    target = math.log(THRESHOLD / (1 - THRESHOLD))
    shift = min(0.0, target - cut - 0.01)
    n_spam = sum(s.is_spam for s in train)
    n_ham = len(train) - n_spam
    lines = [
        f"{START} written by `bench/gmail_tune.py --write` (train half of the SpamAssassin corpus)",
        f"# fitted on {len(train)} train messages ({n_spam} spam, {n_ham} ham), ham weight "
        f"{HAM_WEIGHT}, hard ham x{HARD_WEIGHT};",
        f"# bias fitted {bias:.2f}, lowered {-shift:.2f}: <= 0.3 % of train ham reach {THRESHOLD}",
        f"BIAS = {bias + shift:.2f}",
        "TUNED: dict[str, float] = {",
    ]
    for n in names:
        spam_share, ham_share = seen[(n, True)] / n_spam, seen[(n, False)] / n_ham
        lines.append(f'    "{n}": {w[n]:.2f},  # spam {spam_share:.1%}, ham {ham_share:.1%}')
        if seen[(n, True)] + seen[(n, False)] < MIN_SEEN:
            print(f"warning: {n} fired in under {MIN_SEEN} train messages; move it to HAND")
    lines += ["}", END]
    block = "\n".join(lines)
    print(block)
    caught = sum(
        count
        for (sig, spam), count in patterns.items()
        if spam and bias + shift + sum(w[n] for n in sig) >= target
    )  # spam rows carry weight 1 each, so this is a count
    print(f"# train half at {THRESHOLD}: spam caught {caught / n_spam:.1%}")
    if "--write" in sys.argv:
        source = RULES.read_text(encoding="utf-8")
        head, _, rest = source.partition(START)
        _, _, tail = rest.partition(END)
        RULES.write_text(head + block + tail, encoding="utf-8")
        print(f"written to {RULES}")


if __name__ == "__main__":
    main()
