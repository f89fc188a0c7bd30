"""Run one whole review against the loopback GitHub and OpenAI, and build large test PRs.

`big_pull_files()` makes a ~3,000-line, ~60-file pull request from real code at hand (the
Python standard library's sources, changed the way a release changes them: edits, new blocks,
removed blocks), so coverage is checked on every run without any download.
"""

from __future__ import annotations

import copy
import functools
import random
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.github.client import GithubClients
from agents.github.events import ReviewCompleted, ReviewRequest
from agents.github.review import Reviewer, Skipped
from agents.github.settings import GithubSettings
from agents.llm import LLMClient, LLMSettings
from tests.fakes.common import LoopbackServer
from tests.fakes.github_patches import make_patch
from tests.fakes.github_server import FakeGithub, FakePull, file_entry
from tests.fakes.openai_server import FakeOpenAI, prompt_token_count

__all__ = ["ReviewRun", "big_pull_files", "run_review"]

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@dataclass
class ReviewRun:
    done: ReviewCompleted | Skipped
    requests: list[dict[str, Any]] = field(default_factory=list)  # chat completion bodies

    @property
    def prompts(self) -> list[str]:
        return [r["messages"][-1]["content"] for r in self.requests]

    def sent_tokens(self) -> list[int]:
        """`usage.prompt_tokens` of each call, as the server counted it."""
        return [
            prompt_token_count(r["messages"], r.get("response_format") or {}) for r in self.requests
        ]


async def run_review(
    github: FakeGithub,
    clients: GithubClients,
    files: list[dict[str, Any]],
    settings: GithubSettings | None = None,
    *,
    state: Any = None,
    replies: list[str] | None = None,
    number: int = 7,
    description: str = "",
    ai: FakeOpenAI | None = None,
) -> ReviewRun:
    """Review a pull request made of `files` with the AI reviewer on the loopback OpenAI."""
    ai = ai or FakeOpenAI()
    if replies:
        ai.queue_replies(*replies)
    if (github.pulls.get(("acme/api", number))) is None:
        github.add_pull("acme/api", FakePull(number=number, head_sha="head1111", files=files))
    github.pulls[("acme/api", number)].title = "Release"
    before = len(ai.completion_requests())
    with LoopbackServer(ai) as server:
        llm = LLMClient(
            LLMSettings(api_key=ai.api_key, base_url=f"{server.url}/v1", max_retries=0, timeout=30)
        )
        async with llm:
            reviewer = Reviewer(settings or GithubSettings(), clients, llm)
            request = ReviewRequest(repo="acme/api", number=number, action="opened")
            done = await reviewer.run(request, state)
    return ReviewRun(done, ai.completion_requests()[before:])


def _changed(text: str, rng: random.Random, rate: float = 0.012) -> str:
    """`text` edited the way a release edits code: runs of lines reworked, blocks added,
    blocks removed."""
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        roll = rng.random()
        run = rng.randint(2, 9)
        if roll < rate:
            out += [ln.replace("self", "this", 1) + "  # reworked" for ln in lines[i : i + run]]
            i += run
            continue
        if roll < 1.5 * rate:
            indent = line[: len(line) - len(line.lstrip())]
            out += [f"{indent}checked_{k} = validate(value, limit={k})" for k in range(run)]
        elif roll < 1.8 * rate:
            i += run
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def big_pull_files(seed: int = 7) -> list[dict[str, Any]]:
    """~60 changed files, ~3,000 changed lines: source (some very large), tests, docs, a lock
    file, a vendored file and a binary."""
    return copy.deepcopy(_big_pull_files(seed))


@functools.cache
def _big_pull_files(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    sources = sorted(p for p in STDLIB.glob("*.py") if 8_000 < p.stat().st_size < 150_000)
    picked = rng.sample(sources, 42)
    files: list[dict[str, Any]] = []
    for i, path in enumerate(picked):
        text = path.read_text(encoding="utf-8", errors="replace")
        if i < 26:
            where = f"src/pkg/{path.stem}.py"
        elif i < 40:
            where = f"tests/test_{path.stem}.py"
        else:
            where = f"src/pkg/vendor/{path.stem}.py"
        # The largest sources get far more changes, as a release's core modules do.
        rate = 0.012 if i < 4 else 0.004
        files.append(file_entry(where, make_patch(text, _changed(text, rng, rate))))
    for i in range(12):
        doc = "\n".join(f"Paragraph {k} of guide {i}: how the client retries." for k in range(60))
        new = _changed(doc, rng, 0.03) + "\nUpdated."
        files.append(file_entry(f"docs/guide_{i}.md", make_patch(doc, new)))
    lock = "\n".join(f'name = "dep{k}"\nversion = "1.{k}"' for k in range(300))
    files.append(file_entry("poetry.lock", make_patch("", lock), "added"))
    files.append(file_entry("docs/logo.png", None, "added"))
    files.append(file_entry("src/pkg/generated_pb2.py", make_patch("", "x = 1\n" * 50), "added"))
    return files
