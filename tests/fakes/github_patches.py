"""Pull requests made of real code: GitHub-style per-file patches between two source trees.

- `make_patch(old, new)` is the `patch` GitHub lists for a file: unified-diff hunks with three
  lines of context, no `---`/`+++` header, lines split on `\\n` only.
- `tree_files(old_root, new_root)` is the file list of a pull request from one tree to the
  other, with `added`/`removed`/`modified` status; binary files have no patch, as on GitHub.
- `release_tree(name, version)` downloads a published sdist from the package registry (pip,
  the ordinary client) into ~/.cache/stepline-bench, outside the repository, and unpacks it;
  `ReleaseUnavailable` when that cannot be done here.
- `coverage(files, prompts)` measures what a user would check: which changed lines of which
  files appeared in the prompts the LLM received.
"""

from __future__ import annotations

import difflib
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

from agents.github.files import is_source
from tests.fakes.github_server import file_entry

__all__ = [
    "CACHE",
    "ReleaseUnavailable",
    "coverage",
    "make_patch",
    "release_tree",
    "source_coverage",
    "tree_files",
]

CACHE = Path.home() / ".cache" / "stepline-bench"


class ReleaseUnavailable(Exception):
    """The release could not be downloaded or unpacked here (no registry, no such version)."""


def _lines(text: str) -> list[str]:
    rows = text.split("\n")
    return rows[:-1] if rows and rows[-1] == "" else rows


def _range(start: int, count: int) -> str:
    return f"{start}" if count == 1 else f"{start},{count}"


def make_patch(old: str, new: str, context: int = 3) -> str:
    a, b = _lines(old), _lines(new)
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        old_start = i1 + 1 if i2 > i1 else i1
        new_start = j1 + 1 if j2 > j1 else j1
        out.append(f"@@ -{_range(old_start, i2 - i1)} +{_range(new_start, j2 - j1)} @@")
        for tag, x1, x2, y1, y2 in group:
            if tag == "equal":
                out += [" " + line for line in a[x1:x2]]
                continue
            out += ["-" + line for line in a[x1:x2]]
            out += ["+" + line for line in b[y1:y2]]
    return "\n".join(out)


def _read(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _renames(old_root: Path, new_root: Path, gone: set[str], came: set[str]) -> dict[str, str]:
    """new path -> old path for files moved with at most half their lines changed: GitHub
    lists those as `renamed`, with the patch between the two versions."""
    out: dict[str, str] = {}
    by_name: dict[str, list[str]] = {}
    for path in sorted(gone):
        by_name.setdefault(Path(path).name, []).append(path)
    for path in sorted(came):
        after = _read(new_root / path)
        for candidate in by_name.get(Path(path).name, []):
            before = _read(old_root / candidate)
            if before is None or after is None or candidate in out.values():
                continue
            if difflib.SequenceMatcher(None, before, after, autojunk=False).quick_ratio() >= 0.5:
                out[path] = candidate
                break
    return out


def tree_files(old_root: Path, new_root: Path) -> list[dict[str, Any]]:
    """The changed files from `old_root` to `new_root`, as GitHub lists a PR's files."""
    old = {p.relative_to(old_root).as_posix() for p in old_root.rglob("*") if p.is_file()}
    new = {p.relative_to(new_root).as_posix() for p in new_root.rglob("*") if p.is_file()}
    moved = _renames(old_root, new_root, old - new, new - old)
    entries: list[dict[str, Any]] = []
    for path in sorted((old | new) - set(moved.values())):
        if path in moved:
            before = _read(old_root / moved[path])
            after = _read(new_root / path)
            if before is not None and after is not None and before != after:
                entries.append(file_entry(path, make_patch(before, after), "renamed"))
                entries[-1]["previous_filename"] = moved[path]
            continue
        before = _read(old_root / path) if path in old else ""
        after = _read(new_root / path) if path in new else ""
        status = "added" if path not in old else "removed" if path not in new else "modified"
        if before is None or after is None:
            if (
                status != "modified"
                or (old_root / path).read_bytes() != (new_root / path).read_bytes()
            ):
                entries.append(file_entry(path, None, status))
            continue
        if before == after:
            continue
        entries.append(file_entry(path, make_patch(before, after), status))
    return entries


def release_tree(name: str, version: str) -> Path:
    """The unpacked sdist of `name==version`, downloaded once into the cache."""
    target = CACHE / "releases" / f"{name}-{version}"
    done = target / ".unpacked"
    if done.exists():
        return _root(target)
    downloads = CACHE / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    spec = f"{name}=={version}"
    found = [p for p in downloads.glob("*") if _is_sdist_of(p.name, name, version)]
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        cmd += ["--disable-pip-version-check", "-q", "-d", str(downloads), spec]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        except (subprocess.SubprocessError, OSError) as exc:
            raise ReleaseUnavailable(f"pip could not download {spec}: {exc}") from None
        found = [p for p in downloads.glob("*") if _is_sdist_of(p.name, name, version)]
    if not found:
        raise ReleaseUnavailable(f"no sdist of {spec} in {downloads}")
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(found[0]) as archive:
            archive.extractall(target, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ReleaseUnavailable(f"could not unpack {found[0]}: {exc}") from None
    done.touch()
    return _root(target)


def _is_sdist_of(filename: str, name: str, version: str) -> bool:
    stem = re.sub(r"[-_.]+", "_", name.lower())
    lowered = re.sub(r"[-_.]+", "_", filename.lower())
    return lowered.startswith(f"{stem}_{version.replace('.', '_')}") and filename.endswith(
        (".tar.gz", ".tgz")
    )


def _root(target: Path) -> Path:
    dirs = [p for p in target.iterdir() if p.is_dir()]
    return dirs[0] if len(dirs) == 1 else target


_HEADER = re.compile(r"^### (?P<path>.+?) \(")
_LINE = re.compile(r"^(?P<side>[RL])(?P<n>\d+) (?P<kind>[+\- ])")


def _changed(files: list[dict[str, Any]]) -> dict[str, set[tuple[str, int]]]:
    out: dict[str, set[tuple[str, int]]] = {}
    for f in files:
        old = new = 0
        mine = out.setdefault(f["filename"], set())
        for raw in _lines(f.get("patch") or ""):
            head = re.match(r"^@@ -(\d+)(?:,\d+)? \+(\d+)", raw)
            if head:
                old, new = int(head[1]), int(head[2])
            elif raw.startswith("+"):
                mine.add(("R", new))
                new += 1
            elif raw.startswith("-"):
                mine.add(("L", old))
                old += 1
            elif not raw.startswith("\\"):
                old, new = old + 1, new + 1
    return out


def coverage(files: list[dict[str, Any]], prompts: list[str]) -> dict[str, tuple[int, int]]:
    """Per file: (changed lines shown in some prompt, changed lines); prompts as sent."""
    shown: dict[str, set[tuple[str, int]]] = {}
    for prompt in prompts:
        path = None
        for line in prompt.split("\n"):
            header = _HEADER.match(line)
            if header:
                path = header["path"]
                continue
            m = _LINE.match(line)
            if path and m and m["kind"] != " ":
                shown.setdefault(path, set()).add((m["side"], int(m["n"])))
    return {
        path: (len(lines & shown.get(path, set())), len(lines))
        for path, lines in _changed(files).items()
    }


def source_coverage(per_file: dict[str, tuple[int, int]]) -> float:
    pairs = [v for p, v in per_file.items() if is_source(p)]
    total = sum(n for _, n in pairs)
    return sum(s for s, _ in pairs) / total if total else 1.0
