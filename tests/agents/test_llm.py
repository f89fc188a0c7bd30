"""The LLM client against a loopback OpenAI server, through the real `openai` package."""

from __future__ import annotations

import asyncio
import json
import logging
import textwrap
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel

import agents.llm.client as llm_client_module
from agents.llm import (
    USAGE_GROUP,
    LLMClient,
    LLMError,
    LLMRateLimited,
    LLMSettings,
    LLMUnavailable,
    count_tokens,
)
from agents.llm.ratelimit import retry_after
from agents.llm.tokens import TRIM_MARKER
from app import Retry
from app.testing import Harness
from tests.agents.conftest import MemoryState
from tests.fakes.common import LoopbackServer, Reply
from tests.fakes.openai_server import FakeOpenAI, prompt_token_count


class Finding(BaseModel):
    line: int
    severity: Literal["info", "warning", "error"]
    message: str


class Review(BaseModel):
    summary: str
    approve: bool
    findings: list[Finding]


GOOD = json.dumps(
    {
        "summary": "Looks fine",
        "approve": True,
        "findings": [{"line": 3, "severity": "warning", "message": "unused import"}],
    }
)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    yield FakeOpenAI()


@pytest.fixture
def server(fake: FakeOpenAI) -> Iterator[LoopbackServer]:
    with LoopbackServer(fake) as srv:
        yield srv


def settings_for(server: LoopbackServer, fake: FakeOpenAI, **overrides: object) -> LLMSettings:
    values: dict[str, object] = {
        "api_key": fake.api_key,
        "base_url": f"{server.url}/v1",
        "model": "gpt-4o-mini",
        "max_retries": 2,
        "timeout": 10,
        "response_format": "json_schema",
    }
    values.update(overrides)
    return LLMSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def llm(server: LoopbackServer, fake: FakeOpenAI) -> AsyncIterator[LLMClient]:
    async with LLMClient(settings_for(server, fake)) as client:
        yield client


async def ask(llm: LLMClient, prompt: str = "Review this diff", **kw: object) -> Review:
    return await llm.structured(system="You review code.", prompt=prompt, schema=Review, **kw)  # type: ignore[arg-type]


async def test_json_schema_output_is_parsed_into_the_model(llm: LLMClient, fake: FakeOpenAI):
    fake.queue_replies(GOOD)

    review = await ask(llm)

    assert review == Review.model_validate_json(GOOD)
    (body,) = fake.completion_requests()
    assert body["model"] == "gpt-4o-mini"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == Review.model_json_schema()
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"] == "Review this diff"


async def test_the_schema_sent_is_one_a_server_can_answer(llm: LLMClient, fake: FakeOpenAI):
    # No scripted reply: the fake builds its answer from the schema in the request alone.
    review = await ask(llm)
    assert isinstance(review, Review)


async def test_invalid_output_is_retried_once_with_the_validation_error(
    llm: LLMClient, fake: FakeOpenAI
):
    fake.queue_replies('{"summary": "ok", "approve": "perhaps"}', GOOD)

    review = await ask(llm)

    assert review.approve is True
    _first, second = fake.completion_requests()
    correction = second["messages"][-1]["content"]
    assert second["messages"][-2] == {
        "role": "assistant",
        "content": '{"summary": "ok", "approve": "perhaps"}',
    }
    assert "approve" in correction and "findings" in correction


@pytest.mark.parametrize("filled", [True, False])
async def test_a_planned_call_stays_within_its_budget_when_it_is_retried(
    llm: LLMClient, fake: FakeOpenAI, filled: bool
):
    """A caller that sized its prompt to the budget (trim=False) gets a corrective retry that
    fits the same budget, as the server counts it: the invalid reply is shown cut, or not."""
    budget = 3_000
    room = llm.prompt_room("You review code.", Review, budget) if filled else 500
    lines: list[str] = []
    for i in range(5_000):
        line = f"+ line {i}: value = compute(alpha, beta, gamma) # note"
        if count_tokens("\n".join([*lines, line])) > room:
            break
        lines.append(line)
    invalid = "I think it is fine, nothing to add here. " * 300  # about 2,700 tokens
    fake.queue_replies(invalid, GOOD)

    review = await ask(llm, "\n".join(lines), max_input_tokens=budget, trim=False)

    assert review.approve is True
    requests = fake.completion_requests()
    assert len(requests) == 2
    for sent in requests:
        assert prompt_token_count(sent["messages"], sent.get("response_format") or {}) <= budget
    first, retry = requests[0]["messages"], requests[1]["messages"]
    assert retry[:2] == first  # the planned prompt itself is never cut
    echoed = [m["content"] for m in retry if m["role"] == "assistant"]
    if filled:  # no room left: the same request again, nothing added
        assert retry == first
    else:
        assert retry[-1]["content"].startswith("That reply was not valid")
        assert len(echoed) == 1 and echoed[0].startswith("I think it is fine")
        assert len(echoed[0]) < len(invalid)


async def test_invalid_output_twice_is_a_clean_llm_error(llm: LLMClient, fake: FakeOpenAI):
    fake.queue_replies("I think it is fine.", '```json\n{"summary": 1}\n```')

    with pytest.raises(LLMError, match="did not match Review after a corrective retry"):
        await ask(llm)
    assert len(fake.completion_requests()) == 2


async def test_long_input_is_trimmed_to_the_budget(llm: LLMClient, fake: FakeOpenAI):
    lines = [f"+ line {i}: value = compute(alpha, beta, gamma) # note" for i in range(3000)]
    prompt = "\n".join(lines)
    assert count_tokens(prompt) > 10_000
    fake.queue_replies(GOOD)

    await ask(llm, prompt, max_input_tokens=500)

    system, user = fake.completion_requests()[0]["messages"]
    assert user["content"].startswith(lines[0])
    assert user["content"].endswith(TRIM_MARKER)
    assert count_tokens(system["content"]) + count_tokens(user["content"]) <= 500
    # The cut falls between lines, not in the middle of one.
    kept = user["content"].removesuffix(TRIM_MARKER).split("\n")
    assert kept == lines[: len(kept)]


async def test_budget_smaller_than_the_instructions_is_reported(llm: LLMClient, fake: FakeOpenAI):
    with pytest.raises(LLMError, match="LLM_MAX_INPUT_TOKENS"):
        await ask(llm, max_input_tokens=5)
    assert fake.completion_requests() == []


def test_token_estimate_is_offline_and_plausible():
    text = (
        "The quick brown fox jumps over the lazy dog while the reviewer reads the pull "
        "request and writes a short summary of the changes for the team."
    )
    words = len(text.split())
    # BPE needs at least a token per common word and far fewer than one per character.
    assert words <= count_tokens(text) <= len(text) // 2
    assert count_tokens("") == 0
    assert count_tokens("数据库连接失败") >= 7  # CJK: about one token per character or more


async def test_a_429_with_retry_after_is_handed_to_the_runtime_not_slept(
    llm: LLMClient, fake: FakeOpenAI, memory_state: MemoryState
):
    fake.inject(r"/v1/chat/completions", FakeOpenAI.rate_limited(retry_after="7"))
    fake.queue_replies(GOOD)
    with pytest.raises(LLMRateLimited) as err:
        await ask(llm, state=memory_state)
    # The runtime's Retry (no attempt counted), not an LLMError that callers fall back on.
    assert isinstance(err.value, Retry) and not isinstance(err.value, LLMError)
    assert err.value.delay == 7 and fake.api_key not in str(err.value)
    assert len(fake.completion_requests()) == 1  # the client did not sleep and ask again
    assert (await ask(llm, state=memory_state)).approve is True  # the run, again, later


async def test_a_429_without_a_delay_keeps_the_client_backoff_then_is_an_llm_error(
    server: LoopbackServer, fake: FakeOpenAI
):
    quota = {"error": {"message": "You exceeded your current quota.", "type": "insufficient_quota"}}
    fake.inject(r"/v1/chat/completions", *[Reply.json(quota, status=429)] * 3)
    async with LLMClient(settings_for(server, fake, max_retries=1)) as client:
        with pytest.raises(LLMError, match="answered 429"):
            await ask(client)
    assert len(fake.completion_requests()) == 2


def test_retry_after_reads_milliseconds_seconds_and_dates():
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after({"retry-after": "20"}) == 20
    assert retry_after({"retry-after": "Mon, 02 Mar 2026 09:00:30 GMT"}, now=1772442000.0) == 30
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None


ASKING = {
    "ask_step.py": """
        from pydantic import BaseModel

        from agents.llm import LLMClient

        class Review(BaseModel):
            summary: str
            approve: bool

        config = {"type": "event", "name": "Ask", "subscribes": ["ask"], "emits": [],
                  "retries": 1}

        async def handler(data, ctx):
            async with LLMClient.from_env() as llm:
                review = await llm.structured(system="s", prompt="p", schema=Review)
            await ctx.state.set("asked", "approve", review.approve)
    """,
}


async def test_a_rate_limited_llm_call_reschedules_its_delivery(
    server: LoopbackServer, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    fake.inject(r"/v1/chat/completions", FakeOpenAI.rate_limited(retry_after="30"))
    fake.queue_replies(GOOD)
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()]
    steps = tmp_path / "steps"
    steps.mkdir()
    for name, text in ASKING.items():
        (steps / name).write_text(textwrap.dedent(text))
    async with Harness([steps], db=tmp_path / "t.db", clock=lambda: now[0]) as h:
        await h.emit("ask", {})
        for _ in range(2000):  # the first run meets the 429 and is re-scheduled
            await h.runtime.writer.flush()
            queued = (await h.get("/_stepline/events")).json()["queued"]
            if [q for q in queued if q["status"] == "scheduled"]:
                break
            await asyncio.sleep(0.01)
        assert [(q["step"], q["status"], q["due"]) for q in queued] == [
            ("Ask", "scheduled", now[0] + 30)
        ]
        now[0] += 31
        await h.drain()
        # retries=1 allows one attempt: the provider's "later" did not spend it.
        assert await h.state.get("asked", "approve") is True
        assert await h.dead_letters() == []


async def test_500_is_retried(llm: LLMClient, fake: FakeOpenAI):
    fake.inject(r"/v1/chat/completions", FakeOpenAI.server_error())
    fake.queue_replies(GOOD)

    assert (await ask(llm)).approve is True
    assert len(fake.completion_requests()) == 2


async def test_persistent_500_is_an_llm_error_after_the_retries(
    server: LoopbackServer, fake: FakeOpenAI
):
    fake.inject(r"/v1/chat/completions", *[FakeOpenAI.server_error()] * 5)
    async with LLMClient(settings_for(server, fake, max_retries=1)) as client:
        with pytest.raises(LLMError, match="answered 500"):
            await ask(client)
    assert len(fake.completion_requests()) == 2


async def test_usage_is_logged_and_counted_in_state(
    llm: LLMClient, fake: FakeOpenAI, memory_state: MemoryState, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="agents.llm")
    fake.queue_replies(GOOD, GOOD)

    await ask(llm, state=memory_state)
    await ask(llm, state=memory_state)

    day = datetime.now(UTC).strftime("%Y-%m-%d")
    counters = await memory_state.list(USAGE_GROUP)
    assert counters[f"{day}:calls"] == 2
    assert counters[f"{day}:prompt_tokens"] > 0
    assert counters[f"{day}:completion_tokens"] > 0
    lines = [r.getMessage() for r in caplog.records if r.name == "agents.llm"]
    assert sum("model=gpt-4o-mini" in line and "latency_ms=" in line for line in lines) == 2


async def test_server_without_json_schema_gets_the_schema_in_the_instructions():
    fake = FakeOpenAI(supports_json_schema=False)
    with LoopbackServer(fake) as srv:
        async with LLMClient(settings_for(srv, fake)) as client:
            fake.queue_replies(f"```json\n{GOOD}\n```", GOOD)
            first = await ask(client)
            second = await ask(client)
    assert first == second == Review.model_validate_json(GOOD)
    rejected, fallback, later = fake.completion_requests()
    assert rejected["response_format"]["type"] == "json_schema"
    assert fallback["response_format"] == {"type": "json_object"}
    assert '"findings"' in fallback["messages"][0]["content"]
    # The downgrade sticks: the next call does not try json_schema again.
    assert later["response_format"] == {"type": "json_object"}


async def test_unconfigured_client_says_so_once_and_raises_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path, caplog: pytest.LogCaptureFixture
):
    monkeypatch.chdir(tmp_path)  # no .env from the developer's checkout
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setattr(llm_client_module, "_unconfigured_reported", False)
    caplog.set_level(logging.WARNING, logger="agents.llm")

    first, second = LLMClient.from_env(), LLMClient.from_env()

    assert not first.configured and not second.configured
    warnings = [r for r in caplog.records if "LLM not configured" in r.getMessage()]
    assert len(warnings) == 1
    with pytest.raises(LLMUnavailable, match="OPENAI_API_KEY"):
        await ask(first)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("OPENAI_MODEL", "llama3.1")
    monkeypatch.setenv("LLM_MAX_INPUT_TOKENS", "4000")
    monkeypatch.setenv("LLM_TIMEOUT", "12.5")

    settings = LLMSettings()

    assert settings.api_key is not None and settings.api_key.get_secret_value() == "sk-from-env"
    assert (settings.base_url, settings.model) == ("http://127.0.0.1:11434/v1", "llama3.1")
    assert (settings.max_input_tokens, settings.timeout) == (4000, 12.5)
    assert "sk-from-env" not in repr(settings)


async def test_the_api_key_never_reaches_logs_or_errors(
    server: LoopbackServer, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)  # every logger, the openai and HTTP libraries' included
    wrong_key = "sk-live-WRONG-Kp2Lm4Zq9W"
    fake.queue_replies(GOOD)

    async with LLMClient(settings_for(server, fake)) as good:
        await ask(good)
    async with LLMClient(settings_for(server, fake, api_key=wrong_key)) as bad:
        with pytest.raises(LLMError) as failure:
            await ask(bad)

    assert "OPENAI_API_KEY" in str(failure.value)
    for secret in (fake.api_key, wrong_key, wrong_key[-4:]):
        assert secret not in str(failure.value)
        assert secret not in caplog.text
