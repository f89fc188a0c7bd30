"""Per-repository settings: `.stepline.yml` as it is on the pull request's base commit.

The file is read at `base.sha`, never from the head: a pull request must not be able to change
how it is reviewed or merged. It can only narrow what `config/github.yaml` allows (the server
stays the ceiling): fewer comments, more ignored files, a higher merge score, or merging off.
A file that does not parse or validate is named in the review's notes and the defaults apply.
Results are cached per (repository, base sha): a commit's file never changes.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.common.redact import redact
from agents.common.yaml_settings import SettingsError, parse_settings
from agents.github.settings import GithubSettings, MergePolicy

__all__ = [
    "REPO_CONFIG_FILE",
    "RepoConfig",
    "RepoConfigCache",
    "RepoSettings",
    "for_pull",
    "parse_repo_config",
    "shared_cache",
]

log = logging.getLogger("stepline.github.repo_config")

REPO_CONFIG_FILE = ".stepline.yml"
_MAX_BYTES = 64 * 1024
# A name of at most three words ("German", "pt-BR", "Brazilian Portuguese"), not a sentence.
_LANGUAGE = re.compile(r"[A-Za-z][A-Za-z()\-]{1,19}(?: [A-Za-z()\-]{1,19}){0,2}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RepoMerge(_Model):
    """What a repository may say about merging: only ever stricter than the server."""

    enabled: bool = True
    min_score: int | None = Field(None, ge=0, le=100)


class RepoConfig(_Model):
    """The model of `.stepline.yml`; every key is optional."""

    instructions: str = Field("", max_length=4000)
    language: str | None = None
    ignore: list[str] = Field(default_factory=list)
    max_comments: int | None = Field(None, ge=0)
    merge: RepoMerge = Field(default_factory=RepoMerge)

    @field_validator("language")
    @classmethod
    def _a_language_name(cls, value: str | None) -> str | None:
        # The name goes into the reviewer's prompt: a name, not a sentence of instructions.
        if value is not None and not _LANGUAGE.fullmatch(value.strip()):
            raise ValueError("a language name such as 'German' or 'pt-BR' (at most 3 words)")
        return value.strip() if value else None


@dataclass
class RepoSettings:
    """One repository's file as found at one base commit, and how it narrows the server's."""

    config: RepoConfig = field(default_factory=RepoConfig)
    source: str = f"no {REPO_CONFIG_FILE}"
    problem: str | None = None

    def notes(self, settings: GithubSettings, repo: str) -> list[str]:
        """Lines for the review's notes: a broken file, or a key the server overrules, must be
        visible where people look."""
        if self.problem is not None:
            return [f"{self.source} ignored, defaults used: {self.problem}"]
        m = self.config.merge
        if (
            "enabled" in m.model_fields_set
            and m.enabled
            and not settings.merge_policy(repo).enabled
        ):
            return [
                f"merge.enabled in {self.source} has no effect: auto-merge is off on the server"
            ]
        return []

    def apply(self, settings: GithubSettings) -> GithubSettings:
        """The server's settings narrowed by this file (more ignores, fewer comments)."""
        c = self.config
        if not c.ignore and c.max_comments is None:
            return settings
        review = settings.review
        if c.max_comments is not None:
            review = review.model_copy(
                update={"max_comments": min(c.max_comments, review.max_comments)}
            )
        return settings.model_copy(
            update={"ignore": [*settings.ignore, *c.ignore], "review": review}
        )

    def merge_policy(self, policy: MergePolicy) -> MergePolicy:
        """The policy this file leaves in force: it can turn merging off or raise the score."""
        m = self.config.merge
        if not m.enabled:
            return policy.model_copy(update={"enabled": False})
        if m.min_score is not None and m.min_score > policy.min_score:
            return policy.model_copy(update={"min_score": m.min_score})
        return policy

    @property
    def instructions(self) -> str:
        """What the reviewer's prompt carries for this repository; empty when nothing."""
        parts = []
        if self.config.instructions.strip():
            parts.append(redact(self.config.instructions.strip()))
        if self.config.language:
            parts.append(f"Write the summary and every comment in {self.config.language}.")
        return "\n".join(parts)


def parse_repo_config(text: str, source: str) -> RepoSettings:
    """The settings in `text`, or the defaults with the reason the file was refused."""
    try:
        config = parse_settings(RepoConfig, text, Path(REPO_CONFIG_FILE))
    except SettingsError as exc:
        return RepoSettings(source=source, problem=exc.reason)
    return RepoSettings(config=config, source=source)


class RepoConfigCache:
    """`.stepline.yml` per (repository, base sha), read once per process (bounded LRU)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], RepoSettings] = OrderedDict()

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def for_pull(self, pull: Any) -> RepoSettings:
        """Blocking (PyGithub): the file at the pull request's base commit."""
        repo, sha = pull.base.repo, pull.base.sha
        key = (str(repo.full_name).lower(), str(sha))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        found, cacheable = _read(repo, str(sha))
        if cacheable:
            with self._lock:
                self._cache[key] = found
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        return found


_shared = RepoConfigCache()


def shared_cache() -> RepoConfigCache:
    """The process's cache, shared by the review and the merge steps."""
    return _shared


def for_pull(pull: Any) -> RepoSettings:
    """Blocking (PyGithub): this pull request's `.stepline.yml`, through the shared cache."""
    return _shared.for_pull(pull)


def _read(repo: Any, sha: str) -> tuple[RepoSettings, bool]:
    """The parsed file and whether the answer may be cached (not after a transient error)."""
    from github import GithubException, RateLimitExceededException, UnknownObjectException

    source = f"{REPO_CONFIG_FILE} at {sha[:7]}"
    try:
        content = repo.get_contents(REPO_CONFIG_FILE, ref=sha)
    except UnknownObjectException:
        return RepoSettings(), True
    except RateLimitExceededException:
        raise  # every later call would meet the same limit: the step is retried instead
    except GithubException as exc:
        log.warning("cannot read %s of %s: %s", source, repo.full_name, exc.status)
        problem = f"GitHub answered {exc.status} when it was read (token needs Contents: read)"
        return RepoSettings(source=source, problem=problem), exc.status < 500
    if isinstance(content, list):
        return RepoSettings(source=source, problem="it is a directory, not a file"), True
    raw = content.decoded_content or b""
    if len(raw) > _MAX_BYTES:
        return RepoSettings(source=source, problem=f"larger than {_MAX_BYTES} bytes"), True
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return RepoSettings(source=source, problem="not UTF-8 text"), True
    return parse_repo_config(text, source), True
