"""Fit the built-in spam rules' weights on the TRAIN half of the SpamAssassin corpus.

    .venv/bin/python bench/gmail_tune.py            # prints BIAS and TUNED for rules.py
    .venv/bin/python bench/gmail_tune.py --write    # and writes them into agents/gmail/rules.py
    .venv/bin/python bench/gmail_tune.py --cv [--bayes-scale 2.5 --rules-beside 0.15]
        [--bayes-shift 0.4]  # the intercept of the model's log-odds (spam.BAYES_SHIFT)
        [--with rpath,cte,html-layout,...]  # optional token families, tokens.OPTIONAL
        [--min-shared N]  # equal-count clues counted once from N (bayes.MIN_SHARED; 0: off)
        [--splits 5]  # the same over more ways of cutting the train half into quarters
        [--no-relearn | --relearn-spam]  # training.relearn_mistakes off, or for spam too

An L2-regularised logistic regression over the signs `agents.gmail.rules.find_signs` reports
(spam against easy + hard ham, both classes weighted equally), by batch gradient descent on
the distinct sign patterns. Signs in `rules.HAND` keep their hand-set weights. Afterwards the
bias is lowered until at most 0.3 % of the train ham reaches the 0.8 threshold: a lost wanted
mail costs more than a missed spam. The test half is never read here; `bench/gmail_spam.py`
reports on it.

`--cv` checks how the rules and the Bayes model combine (`spam.BAYES_SCALE`,
`spam.RULES_BESIDE_BAYES`, or the values given) by 4-fold cross-validation on the train half:
a model trained on three quarters scores the fourth, through `assess_spam`, and the four
quarters' verdicts are pooled; each training is followed by `relearn_mistakes`, as in
`stepline gmail train`. That is how those two were chosen; the test half is not read.
One split into quarters leaves a noise of about ±4 of 969 spam; `--splits N` also cuts the
train half N - 1 other ways (by the MD5 of a number and the file name) and adds them up.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gmail_corpus import load_corpus, split

from agents.gmail.parse import ParsedEmail, parse_raw
from agents.gmail.rules import HAND, TUNED, find_signs
from agents.gmail.settings import SpamSettings

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
    from agents.gmail import bayes, spam, tokens

    spam.BAYES_SCALE = _option("--bayes-scale", spam.BAYES_SCALE)
    spam.RULES_BESIDE_BAYES = _option("--rules-beside", spam.RULES_BESIDE_BAYES)
    spam.BAYES_SHIFT = _option("--bayes-shift", spam.BAYES_SHIFT)
    if "--with" in sys.argv:  # optional token families, to measure what each adds
        wanted = set(sys.argv[sys.argv.index("--with") + 1].split(","))
        if wanted - tokens.OPTIONAL:
            sys.exit(f"--with takes some of {', '.join(sorted(tokens.OPTIONAL))}")
        tokens.GROUPS |= wanted
    if "--min-shared" in sys.argv:
        bayes.MIN_SHARED = int(_option("--min-shared", 0)) or None
    train, _ = split(load_corpus())
    mails = [(parse_raw(s.raw), s.is_spam, s.name) for s in train]
    settings = SpamSettings(use_llm=False)
    total = [0, 0, 0]
    splits = max(1, int(_option("--splits", 1)))
    for cut_no in range(splits):
        caught, flagged, at_cut, n_spam, n_ham = _one_split(mails, settings, cut_no)
        total = [total[0] + caught, total[1] + flagged, total[2] + at_cut]
        print(
            f"4-fold CV on the train half (split {cut_no}), token groups "
            f"{sorted(tokens.GROUPS)}, bayes scale {spam.BAYES_SCALE} shift {spam.BAYES_SHIFT}, "
            f"rules beside "
            f"{spam.RULES_BESIDE_BAYES}, min shared {bayes.MIN_SHARED}, relearn "
            f"{_relearn_mode()}: at {settings.threshold} "
            f"spam caught {caught / n_spam:.2%} ({caught}/{n_spam}), wanted mail flagged "
            f"{flagged / n_ham:.2%} ({flagged}/{n_ham}); at the best cut flagging "
            f"{HAM_SHARE_AT_THRESHOLD:.1%}: spam caught {at_cut / n_spam:.2%} ({at_cut})",
            flush=True,
        )
    if splits > 1:
        print(f"all {splits} splits: spam caught {total[0]}, wanted mail flagged {total[1]}, "
              f"spam caught at the cut {total[2]}")  # fmt: skip


def _relearn_mode() -> str:
    if "--no-relearn" in sys.argv:
        return "off"
    return "wanted and spam" if "--relearn-spam" in sys.argv else "wanted mail"


def _fold(name: str, digest: str, cut_no: int) -> int:
    """The quarter a train message is in: split 0 as it always was, others by an MD5."""
    if cut_no == 0:
        return int(digest, 16) // 2 % 4
    return int(hashlib.md5(f"{cut_no}{name}".encode()).hexdigest(), 16) % 4


def _one_split(
    mails: list[tuple[ParsedEmail, bool, str]], settings: SpamSettings, cut_no: int
) -> tuple[int, int, int, int, int]:
    """(spam caught, wanted flagged, spam caught at the cut, spam, wanted) of one split."""
    from agents.gmail import spam
    from agents.gmail.bayes import BayesModel
    from agents.gmail.training import relearn_mistakes

    folds = [_fold(name, name.split(".")[1], cut_no) for _, _, name in mails]
    scored: list[tuple[float, bool]] = []
    for fold in range(4):
        model = BayesModel()
        lessons = [
            (mail, is_spam) for (mail, is_spam, _), k in zip(mails, folds, strict=True) if k != fold
        ]
        for mail, is_spam in lessons:
            model.learn(mail, is_spam)
        if "--no-relearn" not in sys.argv:
            relearn_mistakes(model, lessons, settings, spam_too="--relearn-spam" in sys.argv)
        for (mail, is_spam, _), k in zip(mails, folds, strict=True):
            if k == fold:
                verdict = asyncio.run(spam.assess_spam(mail, settings, model=model))
                scored.append((verdict.score, is_spam))
    spam_scores = [p for p, s in scored if s]
    ham_scores = sorted((p for p, s in scored if not s), reverse=True)
    caught = sum(p >= settings.threshold for p in spam_scores)
    flagged = sum(p >= settings.threshold for p in ham_scores)
    cut = ham_scores[int(len(ham_scores) * HAM_SHARE_AT_THRESHOLD)]
    at_cut = sum(p > cut for p in spam_scores)
    return caught, flagged, at_cut, len(spam_scores), len(ham_scores)


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
