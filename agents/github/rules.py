"""The built-in reviewer: deterministic checks on added lines, no LLM needed.

Each finding is an inline comment on the exact added line it concerns. Messages never quote a
secret they found.

Secrets are found with the one table of formats in app/redact.py (the same one that masks logs
and LLM prompts). In test data (tests/, fixtures/, testdata/) a secret is usually a fixture, so
those are gathered into one low-severity finding that never blocks a merge and costs the score
as one low finding would, however many fixtures the PR adds.
"""

from __future__ import annotations

import posixpath
import re

from agents.github.diff import parse_patch
from agents.github.files import ChangedFile, is_source, is_test
from agents.github.findings import ReviewComment
from app.redact import find_secrets

__all__ = ["is_config", "is_test_data", "review_rules"]

_TEST_DATA_DIRS = frozenset({"fixtures", "fixture", "__fixtures__", "testdata", "test_data"})
# Files whose lines are key=value data, where an unquoted word after `password=` is the value.
_CONFIG_EXT = frozenset({".env", ".ini", ".cfg", ".conf", ".properties", ".yaml", ".yml", ".toml"})
_SHOWN_LOCATIONS = 10


def is_test_data(path: str) -> bool:
    return is_test(path) or any(p in _TEST_DATA_DIRS for p in path.lower().split("/")[:-1])


def is_config(path: str) -> bool:
    name = posixpath.basename(path).lower()
    return name.startswith(".env") or posixpath.splitext(name)[1] in _CONFIG_EXT


_CONFLICT = re.compile(r"^(<{7}(?: .*)?|={7}|>{7}(?: .*)?|\|{7}(?: .*)?)$")
_TODO = re.compile(r"\b(TODO|FIXME|XXX|HACK)\b")
_DEBUG: dict[str, tuple[re.Pattern[str], ...]] = {
    ".py": (
        re.compile(r"^\s*breakpoint\(\)"),
        re.compile(r"\b(?:i?pdb|pudb)\.set_trace\(\)"),
        re.compile(r"^\s*import\s+(?:i?pdb|pudb)\b"),
        re.compile(r"^\s*print\("),
    ),
    ".js": (re.compile(r"^\s*debugger;?\s*$"), re.compile(r"\bconsole\.(?:log|debug)\(")),
    ".rb": (re.compile(r"\bbinding\.(?:pry|irb)\b"), re.compile(r"^\s*byebug\b")),
    ".php": (re.compile(r"\b(?:var_dump|dd|print_r)\("),),
    ".go": (re.compile(r"^\s*fmt\.Print(?:ln|f)?\("),),
}
for _ext in (".jsx", ".ts", ".tsx", ".vue", ".svelte"):
    _DEBUG[_ext] = _DEBUG[".js"]


def _debug_patterns(path: str) -> tuple[re.Pattern[str], ...]:
    if is_test(path) or "/scripts/" in f"/{path}" or path.endswith(("__main__.py", "cli.py")):
        return ()  # printing is the point of tests' output, scripts and command lines
    return _DEBUG.get(posixpath.splitext(path)[1].lower(), ())


def _line_findings(f: ChangedFile, fixtures: list[tuple[str, int, str]]) -> list[ReviewComment]:
    """Findings on `f`'s added lines; secrets in test data go to `fixtures` instead."""
    out: list[ReviewComment] = []
    debug = _debug_patterns(f.path)
    config, test_data = is_config(f.path), is_test_data(f.path)
    for ln in parse_patch(f.path, f.patch).added():
        assert ln.new is not None
        at = {"path": f.path, "line": ln.new, "side": "RIGHT"}
        secrets = find_secrets(ln.text, config=config)
        if secrets and test_data:
            fixtures.append((f.path, ln.new, secrets[0].label))
            continue
        if secrets:
            label = secrets[0].label
            out.append(
                ReviewComment(
                    **at,
                    severity="critical",
                    body=(
                        f"Possible {label} added in plain text. Remove it, rotate the "
                        "credential, and load it from the environment or a secret store."
                    ),
                )
            )
            continue
        if _CONFLICT.match(ln.text):
            out.append(
                ReviewComment(
                    **at,
                    severity="critical",
                    body=("Merge-conflict marker committed; resolve the conflict before merging."),
                )
            )
            continue
        if any(p.search(ln.text) for p in debug):
            out.append(
                ReviewComment(
                    **at,
                    severity="low",
                    body=("Debug statement left in: remove it or use the logger."),
                )
            )
        if _TODO.search(ln.text):
            word = _TODO.search(ln.text).group(1)  # type: ignore[union-attr]
            out.append(
                ReviewComment(
                    **at,
                    severity="info",
                    body=(f"{word} added: consider an issue so it is not forgotten."),
                )
            )
    return out


def review_rules(files: list[ChangedFile], *, large_file_lines: int = 800) -> list[ReviewComment]:
    """Findings on the added lines of `files`, in file order."""
    findings: list[ReviewComment] = []
    fixtures: list[tuple[str, int, str]] = []
    first_added: dict[str, int] = {}
    for f in files:
        if not f.patch:
            continue
        added = parse_patch(f.path, f.patch).added()
        if not added:
            continue
        first = added[0].new
        assert first is not None
        first_added[f.path] = first
        findings.extend(_line_findings(f, fixtures))
        if f.additions > large_file_lines:
            findings.append(
                ReviewComment(
                    path=f.path,
                    line=first,
                    side="RIGHT",
                    severity="medium",
                    body=(
                        f"{f.additions} lines added to one file: consider splitting the change "
                        "so it can be reviewed properly."
                    ),
                )
            )
    if fixtures:
        findings.append(_fixtures_finding(fixtures))
    sources = [f for f in files if is_source(f.path) and f.path in first_added]
    if sources and not any(is_test(f.path) for f in files):
        target = max(sources, key=lambda f: f.additions)
        findings.append(
            ReviewComment(
                path=target.path,
                line=first_added[target.path],
                side="RIGHT",
                severity="low",
                body="Source code changed without any test change: add or update a test.",
            )
        )
    return findings


def _fixtures_finding(fixtures: list[tuple[str, int, str]]) -> ReviewComment:
    path, line, label = fixtures[0]
    others = [f"`{p}` line {n}" for p, n, _ in fixtures[1 : 1 + _SHOWN_LOCATIONS]]
    more = len(fixtures) - 1 - len(others)
    where = f" Also: {', '.join(others)}{f' and {more} more' if more else ''}." if others else ""
    count = f"{len(fixtures)} possible secrets" if len(fixtures) > 1 else f"Possible {label}"
    return ReviewComment(
        path=path,
        line=line,
        side="RIGHT",
        severity="low",
        body=(
            f"{count} in test data.{where} Fine if these are made-up fixtures; if any is a "
            "real credential, remove it and rotate it."
        ),
    )
