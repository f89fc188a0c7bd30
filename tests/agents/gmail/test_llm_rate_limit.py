"""A burst of mail reaches the LLM spread out by the runtime's rate limit (`spam.llm_rate_limit`,
two spam checks a second by default), not all at once: the runtime's clock is injected, so
the test moves time instead of waiting for it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from agents.gmail import services
from tests.agents.gmail.world import WEBHOOK_TOKEN, World
from tests.fakes.common import LoopbackServer
from tests.fakes.openai_server import FakeOpenAI

NOW = [1_772_442_000.0]


@pytest.fixture
def world_clock() -> Callable[[], float]:
    NOW[0] = 1_772_442_000.0
    return lambda: NOW[0]


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    with LoopbackServer(fake) as server:
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        monkeypatch.setenv("LLM_MAX_RETRIES", "0")
        yield fake


async def settled(world: World, llm: FakeOpenAI, calls: int, left: int) -> None:
    """Wait until the LLM has had `calls` requests and `left` spam checks still wait."""
    backend = world.h.runtime.backend
    for _ in range(2000):
        world.h.runtime.engine.wake(None)
        pending = await backend.pending("GmailSpamFilter")
        done = len(llm.completion_requests()) == calls and pending == left
        if done and not world.h.runtime.engine.in_flight:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(llm.completion_requests())} LLM calls, {pending} checks waiting")


async def test_a_burst_of_five_mails_reaches_the_llm_two_a_second(
    world: World, llm: FakeOpenAI
) -> None:
    services.reset()  # the LLM client is built from the variables set above
    for n in range(5):
        body = {
            "messageId": f"burst-{n}",
            "from": "Billing <billing@example.com>",
            "subject": f"Invoice {n} for March",
            "body": "<p>Your invoice is attached.</p>",
        }
        auth = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
        r = await world.h.post("/webhooks/email", json=body, headers=auth)
        assert r.status_code == 202
    await settled(world, llm, calls=2, left=3)
    # Within the same second nothing more may start, in this process or any other.
    assert (
        await world.h.runtime.backend.claim({"GmailSpamFilter": 4}, {"GmailSpamFilter": 90}) == []
    )
    NOW[0] += 1.01
    await settled(world, llm, calls=4, left=1)
    NOW[0] += 1.01
    await world.h.drain(timeout=20)
    assert len(llm.completion_requests()) == 5
    assert (
        len(world.h.emitted("gmail.email.checked")) + len(world.h.emitted("gmail.spam.detected"))
        == 5
    )
