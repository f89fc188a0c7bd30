"""The offline token estimate against a real tokenizer, on real text of several kinds.

The reference is o200k_base (gpt-4o, gpt-4o-mini), as quicktok counts it from the vocabulary in
its wheel. The texts are real and always at hand: the Python standard library's sources, this
project's Markdown, a JSON schema, and GitHub-style diffs rendered for the reviewer.
"""

from __future__ import annotations

import difflib
import json
import sysconfig
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agents.github.files import ChangedFile, render
from agents.github.findings import ReviewResult
from agents.llm import USAGE_GROUP, LLMClient, LLMSettings, count_tokens
from tests.agents.conftest import MemoryState
from tests.fakes.common import LoopbackServer
from tests.fakes.openai_server import FakeOpenAI, real_token_count

ROOT = Path(__file__).resolve().parents[2]
STDLIB = Path(sysconfig.get_paths()["stdlib"])


def _stdlib(names: str) -> list[str]:
    files = sorted(p for p in STDLIB.glob(names) if p.stat().st_size > 4000)
    return [p.read_text(encoding="utf-8", errors="replace") for p in files]


def _release_like_diff(text: str, path: str) -> str:
    """A file and a version of it with every 7th line changed, as the reviewer renders it."""
    old = text.split("\n")
    new = [f"{ln}  # changed" if i % 7 == 0 else ln for i, ln in enumerate(old)]
    body = list(difflib.unified_diff(old, new, lineterm="", n=3))[2:]
    return render(ChangedFile(path, "modified", "\n".join(body)))


def _kinds() -> dict[str, list[str]]:
    code = _stdlib("[a-f]*.py")
    return {
        "python code": code,
        "markdown prose": [p.read_text() for p in [ROOT / "README.md", *ROOT.glob("docs/**/*.md")]],
        "json": [json.dumps(ReviewResult.model_json_schema(), indent=2)] * 3,
        "rendered diff": [_release_like_diff(t, f"lib/m{i}.py") for i, t in enumerate(code[:20])],
    }


@pytest.mark.parametrize("kind", ["python code", "markdown prose", "json", "rendered diff"])
def test_estimate_errs_high_by_a_small_margin(kind: str) -> None:
    texts = _kinds()[kind]
    assert texts, f"no {kind} found to calibrate on"
    estimated = sum(count_tokens(t) for t in texts)
    real = sum(real_token_count(t) for t in texts)
    # High, so a budget holds; but by percent, not by the 40 % that wasted a third of it.
    assert 1.0 <= estimated / real <= 1.15, f"{kind}: {estimated} estimated, {real} real"


def test_no_large_file_is_underestimated_by_much() -> None:
    for text in _stdlib("[g-z]*.py"):
        assert count_tokens(text) >= 0.9 * real_token_count(text)


def test_non_ascii_and_edge_cases() -> None:
    assert count_tokens("") == 0
    assert count_tokens("数据库连接失败") >= real_token_count("数据库连接失败")
    assert count_tokens("Größenänderung der Datei") >= real_token_count("Größenänderung der Datei")


async def test_usage_records_the_estimate_beside_the_servers_count(memory_state: MemoryState):
    fake = FakeOpenAI()
    prompt = "\n".join(_stdlib("[a-c]*.py"))[:20_000]
    with LoopbackServer(fake) as server:
        settings = LLMSettings(api_key=fake.api_key, base_url=f"{server.url}/v1", max_retries=0)
        async with LLMClient(settings) as llm:
            await llm.structured(
                system="You review code.", prompt=prompt, schema=ReviewResult, state=memory_state
            )
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    sent = await memory_state.get(USAGE_GROUP, f"{day}:prompt_tokens")
    estimated = await memory_state.get(USAGE_GROUP, f"{day}:estimated_prompt_tokens")
    assert sent > 4000 and 1.0 <= estimated / sent <= 1.15
