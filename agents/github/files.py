"""Which changed files a review reads, how much each matters, and how it reads to the LLM."""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agents.common.redact import redact
from agents.github.diff import Hunk, parse_patch

__all__ = [
    "ChangedFile",
    "is_ignored",
    "is_source",
    "is_test",
    "relevance",
    "render",
    "render_header",
    "render_hunk",
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


def render_header(f: ChangedFile, continued: bool = False) -> str:
    return f"### {f.path} ({f.status}{', continued' if continued else ''})"


def render_hunk(hunk: Hunk) -> list[str]:
    """One hunk for the prompt, one entry per diff line: numbered as the comment API counts
    them (`R12` new file, `L7` old file), secrets masked."""
    out = ["@@"]
    for ln in hunk.lines:
        # A CR of a CRLF file is not part of what the reader needs to see.
        text = ln.text.removesuffix("\r")
        if ln.kind == "+":
            out.append(f"R{ln.new} + {text}")
        elif ln.kind == "-":
            out.append(f"L{ln.old} - {text}")
        else:
            out.append(f"R{ln.new}   {text}")
    return redact("\n".join(out)).split("\n")


def render(f: ChangedFile) -> str:
    """One whole file for the prompt: its header and every hunk."""
    out = [render_header(f)]
    for hunk in parse_patch(f.path, f.patch).hunks:
        out += render_hunk(hunk)
    return "\n".join(out)


def relevance(f: ChangedFile) -> int:
    """What matters most is reviewed first: source 4, tests 3, other files 2, docs 1, removed 0."""
    ext = posixpath.splitext(f.path)[1].lower()
    if f.status == "removed":
        return 0
    if ext in DOC_EXT:
        return 1
    if is_test(f.path):
        return 3
    return 4 if ext in SOURCE_EXT else 2
