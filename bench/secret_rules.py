"""The built-in secret checks on real data: how many labelled secrets they find, how many
findings they raise on real code, beside the previous rules and detect-secrets in the same run.

    .venv/bin/python bench/secret_rules.py            # ~2 min the first time (downloads)
    .venv/bin/python bench/secret_rules.py --no-peer  # without detect-secrets

Fixtures, labelled by the scanners themselves (sdists from PyPI, cached in
~/.cache/stepline-bench, never committed):
- ggshield: the recorded answers of GitGuardian's API in tests/unit/cassettes, i.e. each
  document scanned and the secrets GitGuardian found in it, with their positions;
- bandit: examples/hardcoded-passwords.py, where a "Possible hardcoded password: 'X'" comment
  labels the line below it that holds X (and "but not:" lines are negatives).

Real code: every added line of the release diffs in RELEASES (both sdists of each, diffed
locally into GitHub-style patches), run through the review rules (`review_rules`) as PRs.
A finding outside test data is critical and blocks a merge; in test data it is low.

"before" is the rule table at commit 77cb3c5 (agents/common/redact.py then), read from git;
detect-secrets 1.5.0 (default plugins and filters) is installed into its own cache folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python bench/secret_rules.py`: tests/ has the helpers
    sys.path.insert(1, str(ROOT))

import yaml  # type: ignore[import-untyped,unused-ignore]  # noqa: E402

from agents.github.files import ChangedFile  # noqa: E402
from agents.github.rules import is_config, is_test_data, review_rules  # noqa: E402
from app.redact import find_secrets  # noqa: E402
from tests.fakes.github_patches import CACHE, release_tree, tree_files  # noqa: E402

BEFORE = "77cb3c5"
RELEASES = [
    ("django", "5.0", "5.1"),
    ("flask", "2.3.3", "3.0.0"),
    ("httpx", "0.24.1", "0.25.0"),
    ("celery", "5.3.6", "5.4.0"),
    ("pydantic", "2.8.2", "2.9.2"),
]
PEER_PIN = "detect-secrets==1.5.0"
# GitGuardian match types that are not the secret (the host or user next to a password).
_NOT_SECRET = {"host", "port", "username", "database", "scheme", "connection_uri"}

# A finder: (text, path) -> list of (start, end) spans of secrets in text.
Finder = Callable[[str, str], list[tuple[int, int]]]


def ours(text: str, path: str) -> list[tuple[int, int]]:
    return [(h.start, h.end) for h in find_secrets(text, config=is_config(path))]


def before() -> Finder:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{BEFORE}:agents/common/redact.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType("redact_before")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{BEFORE}:agents/common/redact.py", "exec"), module.__dict__)
    return lambda text, path: [(h.start, h.end) for h in module.find_secrets(text)]


def detect_secrets() -> Finder:
    target = CACHE / PEER_PIN.replace("==", "-")
    if not (target / "detect_secrets").is_dir():
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*cmd, "--no-deps", "--target", str(target), PEER_PIN], check=True)
    sys.path.insert(0, str(target))
    from detect_secrets.core.scan import _process_line_based_plugins
    from detect_secrets.settings import default_settings

    def find(text: str, path: str) -> list[tuple[int, int]]:
        lines = text.split("\n")
        starts = [0]
        for line in lines:
            starts.append(starts[-1] + len(line) + 1)
        spans = []
        with default_settings():
            for s in _process_line_based_plugins(list(enumerate(lines, 1)), path or "file"):
                value, line = s.secret_value or "", lines[s.line_number - 1]
                at = line.find(value) if value else -1
                if at >= 0:
                    spans.append(
                        (
                            starts[s.line_number - 1] + at,
                            starts[s.line_number - 1] + at + len(value),
                        )
                    )
        return spans

    return find


# -- labelled fixtures -----------------------------------------------------------------------------


def ggshield_cases(root: Path) -> list[tuple[str, str, tuple[int, int]]]:
    """(path, document, span of one secret) for every secret GitGuardian reported."""
    cases: dict[tuple[str, int, int], tuple[str, str, tuple[int, int]]] = {}
    for cassette in sorted((root / "tests" / "unit" / "cassettes").glob("*.yaml")):
        for step in (yaml.safe_load(cassette.read_text()) or {}).get("interactions", []):
            try:
                docs = json.loads(step["request"]["body"] or "null")
                results = json.loads(step["response"]["body"]["string"])
            except (TypeError, ValueError, KeyError):
                continue
            if not isinstance(docs, list) or not isinstance(results, list):
                continue
            for doc, result in zip(docs, results, strict=False):
                for brk in (result or {}).get("policy_breaks") or []:
                    for match in brk.get("matches") or []:
                        if match.get("type") in _NOT_SECRET or match.get("index_start") is None:
                            continue
                        span = (match["index_start"], match["index_end"] + 1)
                        key = (doc["document"][span[0] : span[1]], *span)
                        cases.setdefault(key, (doc["filename"], doc["document"], span))
    return list(cases.values())


def bandit_cases(root: Path) -> tuple[list[tuple[str, str, tuple[int, int]]], list[str]]:
    """Labelled lines of bandit's hard-coded password example, and its negative lines."""
    lines = (root / "examples" / "hardcoded-passwords.py").read_text().split("\n")
    positives, negatives, expect, negative = [], [], None, False
    for line in lines:
        text = line.strip()
        if text.startswith("# Possible hardcoded password:"):
            value = text.split(":", 1)[1].strip()
            expect = value[1:-1] if value.startswith("'") and len(value) > 2 else None
        elif text.startswith("# ... but not"):
            negative = True
        elif text and not text.startswith("#"):
            if expect and expect in line:
                at = line.index(expect)
                positives.append(("hardcoded-passwords.py", line, (at, at + len(expect))))
                expect = None
            elif negative:
                negatives.append(line)
                negative = False
    return positives, negatives


def detected(finder: Finder, cases: Iterable[tuple[str, str, tuple[int, int]]]) -> int:
    return sum(
        any(s < end and start < e for s, e in finder(text, path))
        for path, text, (start, end) in cases
    )


# -- real code ------------------------------------------------------------------------------------


def added_lines(files: list[ChangedFile]) -> list[tuple[str, int, str]]:
    out = []
    for f in files:
        new = 0
        for row in (f.patch or "").split("\n"):
            if row.startswith("@@"):
                new = int(row.split("+", 1)[1].split(",")[0].split(" ")[0]) - 1
            elif row.startswith("+"):
                new += 1
                out.append((f.path, new, row[1:]))
            elif not row.startswith("-"):
                new += 1
    return out


def real_findings(finder: Finder, lines: list[tuple[str, int, str]]) -> tuple[int, int]:
    """(lines flagged outside test data, lines flagged in test data)."""
    outside = inside = 0
    for path, _, text in lines:
        if finder(text, path):
            if is_test_data(path):
                inside += 1
            else:
                outside += 1
    return outside, inside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-peer", action="store_true", help="skip detect-secrets")
    args = parser.parse_args()
    finders: dict[str, Finder] = {"stepline": ours, f"before ({BEFORE})": before()}
    if not args.no_peer:
        finders[PEER_PIN] = detect_secrets()

    gg = ggshield_cases(release_tree("ggshield", "1.56.1"))
    positives, negatives = bandit_cases(release_tree("bandit", "1.9.4"))
    started = time.perf_counter()
    files = [
        ChangedFile(
            path=f"{name}/{e['filename']}",
            status=e["status"],
            patch=e.get("patch"),
            additions=e.get("additions", 0),
        )
        for name, a, b in RELEASES
        for e in tree_files(release_tree(name, a), release_tree(name, b))
    ]
    lines = added_lines(files)
    diffs = ", ".join(f"{n} {a} -> {b}" for n, a, b in RELEASES)
    print(
        f"fixtures: ggshield {len(gg)} labelled secrets, bandit {len(positives)} labelled "
        f"+ {len(negatives)} negative lines\nreal code: {diffs}: {len(files)} files, "
        f"{len(lines)} added lines (diffed in {time.perf_counter() - started:.0f} s)\n"
    )
    print(
        f"{'finder':28s} {'ggshield':>9s} {'bandit':>8s} {'bandit FP':>9s} "
        f"{'real/10k':>9s} {'(tests)':>8s} {'s':>5s}"
    )
    for name, finder in finders.items():
        started = time.perf_counter()
        hit_gg = detected(finder, gg)
        hit_bandit = detected(finder, positives)
        false_bandit = sum(bool(finder(line, "x.py")) for line in negatives)
        outside, inside = real_findings(finder, lines)
        per10k = 10_000 / max(len(lines), 1)
        print(
            f"{name:28s} {hit_gg / len(gg):8.0%} {hit_bandit / len(positives):8.0%} "
            f"{false_bandit:>9d} {outside * per10k:9.1f} {inside * per10k:8.1f} "
            f"{time.perf_counter() - started:5.1f}"
        )
    comments = review_rules(files)
    blocking = [
        c for c in comments if c.severity in ("high", "critical") and "plain text" in c.body
    ]
    low = [c for c in comments if "test data" in c.body]
    print(
        f"\nreview_rules on those diffs: {len(blocking)} blocking secret finding(s) "
        f"outside test data, {len(low)} low finding for test data"
    )
    for c in blocking[:20]:
        print(f"  {c.path}:{c.line}")


if __name__ == "__main__":
    main()
