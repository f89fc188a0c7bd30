"""A notification that cannot be sent until the configuration changes is dead-lettered at once
with the fix, not retried six times; every send is counted in `stepline_notifications_total`."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from agents.notify import Notification, NotifyRequest
from app.testing import Harness
from tests.fakes.common import LoopbackServer
from tests.fakes.slack_server import FakeSlack

STEPS = Path(__file__).resolve().parents[2] / "steps" / "notify"
NOTE = Notification(title="Review finished for acme/app#7", text="2 findings")


def sent(provider: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "stepline_notifications_total", {"provider": provider, "outcome": outcome}
    )
    return value or 0.0


@pytest.fixture(autouse=True)
def only_slack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in (
        "SLACK_DEFAULT_CHANNEL",
        "NTFY_TOPIC",
        "NTFY_URL",
        "PUSHOVER_TOKEN",
        "PUSHOVER_USER",
        "PUSH_WEBHOOK_URL",
    ):
        monkeypatch.delenv(name, raising=False)


async def test_a_slack_token_without_a_channel_is_dead_lettered_at_once(monkeypatch, tmp_path):
    fake = FakeSlack()
    with LoopbackServer(fake) as srv:
        monkeypatch.setenv("SLACK_BOT_TOKEN", fake.token)
        monkeypatch.setenv("SLACK_API_URL", f"{srv.url}/api/")
        before = sent("slack", "refused")
        async with Harness(steps=[STEPS], db=tmp_path / "t.db") as h:
            request = NotifyRequest(**NOTE.model_dump(), provider="slack")
            await h.emit("notify.send", request.model_dump())
            await h.drain(timeout=20)
            (dead,) = await h.dead_letters()
    assert dead.attempts == 1  # the step allows 6: another attempt could not have helped
    assert "SLACK_DEFAULT_CHANNEL" in dead.error
    assert sent("slack", "refused") - before == 1


async def test_a_sent_notification_is_counted(monkeypatch, tmp_path):
    fake = FakeSlack()
    with LoopbackServer(fake) as srv:
        monkeypatch.setenv("SLACK_BOT_TOKEN", fake.token)
        monkeypatch.setenv("SLACK_API_URL", f"{srv.url}/api/")
        monkeypatch.setenv("SLACK_DEFAULT_CHANNEL", "alerts")
        before = sent("slack", "ok")
        async with Harness(steps=[STEPS], db=tmp_path / "t.db") as h:
            request = NotifyRequest(**NOTE.model_dump(), provider="slack")
            await h.emit("notify.send", request.model_dump())
            await h.drain(timeout=20)
            assert await h.dead_letters() == []
    assert sent("slack", "ok") - before == 1
