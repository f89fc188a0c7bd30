"""Which changed files a review reads, and how they are fitted into the LLM's token budget."""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from agents.common.redact import redact
from agents.github.diff import parse_patch

__all__ = [
    "Budgeted",
    "ChangedFile",
    "fit_budget",
    "is_ignored",
    "is_source",
    "is_test",
    "render",
    "select",
]

SOURCE_EXT = frozenset(
    f".{ext}"
    for ext in (
        "py",
        "js",
        "jsx",
        "ts",
        "tsx",
        "go",
        "rs",
        "java",
        "kt",
        "rb",
        "php",
        "c",
        "h",
        "cc",
        "cpp",
        "hpp",
        "cs",
        "swift",
        "scala",
        "m",
        "sh",
        "sql",
        "vue",
        "svelte",
    )
)
DOC_EXT = frozenset({".md", ".rst", ".txt", ".adoc"})


@dataclass
class ChangedFile:
    path: str
    status: str = "modified"
    patch: str | None = None
    additions: int = 0
    deletions: int = 0

    @classmethod
    def from_api(cls, item: Any) -> ChangedFile:
        """From a PyGithub `File` (pull request files or a comparison)."""
        return cls(
            path=item.filename,
            status=item.status or "modified",
            patch=item.patch,
            additions=item.additions or 0,
            deletions=item.deletions or 0,
        )


def _match(path: str, pattern: str) -> bool:
    if "/" not in pattern:
        return fnmatch.fnmatchcase(posixpath.basename(path), pattern)
    pattern = pattern.lstrip("/")
    if fnmatch.fnmatchcase(path, pattern):
        return True
    # `vendor/**` also means a vendor directory deeper in the tree.
    return fnmatch.fnmatchcase(path, "*/" + pattern)


def is_ignored(path: str, globs: Iterable[str]) -> bool:
    return any(_match(path, g) for g in globs)


def is_test(path: str) -> bool:
    name = posixpath.basename(path).lower()
    parts = path.lower().split("/")
    return (
        any(p in ("test", "tests", "__tests__", "spec", "specs") for p in parts[:-1])
        or name.startswith("test_")
        or any(tag in name for tag in ("_test.", ".test.", ".spec.", "_spec."))
    )


def is_source(path: str) -> bool:
    return posixpath.splitext(path)[1].lower() in SOURCE_EXT and not is_test(path)


def select(
    files: Iterable[ChangedFile], globs: Iterable[str]
) -> tuple[list[ChangedFile], list[tuple[str, str]]]:
    """Split into files to review and (path, reason) pairs for those skipped."""
    globs = list(globs)
    kept: list[ChangedFile] = []
    skipped: list[tuple[str, str]] = []
    for f in files:
        if is_ignored(f.path, globs):
            skipped.append((f.path, "ignored by pattern"))
        elif not f.patch:
            reason = "removed" if f.status == "removed" else "no text diff (binary or too large)"
            skipped.append((f.path, reason))
        else:
            kept.append(f)
    return kept, skipped


def render(f: ChangedFile) -> str:
    """One file for the prompt: lines numbered as the comment API counts them, secrets masked."""
    out = [f"### {f.path} ({f.status})"]
    for hunk in parse_patch(f.path, f.patch).hunks:
        out.append("@@")
        for ln in hunk.lines:
            if ln.kind == "+":
                out.append(f"R{ln.new} + {ln.text}")
            elif ln.kind == "-":
                out.append(f"L{ln.old} - {ln.text}")
            else:
                out.append(f"R{ln.new}   {ln.text}")
    return redact("\n".join(out))


def _relevance(f: ChangedFile) -> int:
    ext = posixpath.splitext(f.path)[1].lower()
    if f.status == "removed":
        return 0
    if ext in DOC_EXT:
        return 1
    if is_test(f.path):
        return 2
    return 3 if ext in SOURCE_EXT else 2


@dataclass
class Budgeted:
    text: str
    notes: list[str]
    included: list[str]


# Below this many tokens a trimmed file says too little to be worth its header.
_MIN_KEEP = 120


def fit_budget(
    files: list[ChangedFile],
    budget: int,
    count: Callable[[str], int],
    trim: Callable[[str, int], str],
) -> Budgeted:
    """Render `files` into at most `budget` tokens: least relevant, then largest, go first."""
    sections = {f.path: render(f) for f in files}
    sizes = {p: count(t) for p, t in sections.items()}
    total = sum(sizes.values())
    notes: list[str] = []
    victims = sorted(files, key=lambda f: (_relevance(f), -sizes[f.path]))
    for f in victims:
        if total <= budget:
            break
        over = total - budget
        keep = sizes[f.path] - over
        if keep >= _MIN_KEEP:
            sections[f.path] = trim(sections[f.path], keep) + "\n[... trimmed to fit the budget]"
            notes.append(f"`{f.path}` trimmed to fit the review budget")
        else:
            del sections[f.path]
            notes.append(f"`{f.path}` skipped: over the review budget")
            keep = 0
        total -= sizes[f.path] - keep
    order = [f.path for f in files if f.path in sections]
    return Budgeted("\n\n".join(sections[p] for p in order), notes, order)
