"""Choosing providers, log mode, fan-out, and the SendNotification step on the real runtime."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import agents.notify.notifiers as notifiers_module
from agents.notify import (
    Notification,
    Notifiers,
    NotifyError,
    NotifyRequest,
    NotifySettings,
    fan_out,
)
from app.testing import Harness
from tests.fakes.common import LoopbackServer, Reply
from tests.fakes.push_server import FakeNtfy
from tests.fakes.slack_server import FakeSlack

STEPS = Path(__file__).resolve().parents[2] / "steps" / "notify"
ENV_NAMES = (
    "SLACK_BOT_TOKEN",
    "SLACK_API_URL",
    "SLACK_DEFAULT_CHANNEL",
    "NTFY_URL",
    "NTFY_TOPIC",
    "NTFY_TOKEN",
    "PUSHOVER_TOKEN",
    "PUSHOVER_USER",
    "PUSHOVER_API_URL",
    "PUSH_WEBHOOK_URL",
    "PUSH_WEBHOOK_SECRET",
)
NOTE = Notification(
    title="Review finished for acme/app#7",
    text="2 findings",
    url="https://github.com/acme/app/pull/7",
    thread_key="pr:acme/app#7",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets: no provider variables or .env file from the developer's shell."""
    monkeypatch.chdir(tmp_path)
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def slack() -> Iterator[tuple[FakeSlack, str]]:
    fake = FakeSlack()
    with LoopbackServer(fake) as srv:
        yield fake, srv.url


@pytest.fixture
def ntfy() -> Iterator[tuple[FakeNtfy, str]]:
    fake = FakeNtfy()
    with LoopbackServer(fake) as srv:
        yield fake, srv.url


def configure(
    monkeypatch: pytest.MonkeyPatch,
    slack: tuple[FakeSlack, str] | None = None,
    ntfy: tuple[FakeNtfy, str] | None = None,
) -> None:
    if slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", slack[0].token)
        monkeypatch.setenv("SLACK_API_URL", f"{slack[1]}/api/")
        monkeypatch.setenv("SLACK_DEFAULT_CHANNEL", "alerts")
    if ntfy:
        monkeypatch.setenv("NTFY_URL", ntfy[1])
        monkeypatch.setenv("NTFY_TOPIC", "stepline")


def test_providers_follow_the_environment(monkeypatch: pytest.MonkeyPatch):
    assert Notifiers.from_env().providers() == []
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("NTFY_TOPIC", "alerts")
    monkeypatch.setenv("PUSHOVER_TOKEN", "a" * 30)
    assert Notifiers.from_env().providers() == ["slack", "ntfy"]  # Pushover needs a user too
    monkeypatch.setenv("PUSHOVER_USER", "u" * 30)
    monkeypatch.setenv("PUSH_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    notifiers = Notifiers.from_env()
    assert notifiers.providers() == ["slack", "ntfy", "pushover", "webhook"]
    assert notifiers.selected(push=False) == ["slack"]
    assert notifiers.selected(slack=False) == ["ntfy", "pushover", "webhook"]


async def test_unconfigured_mode_logs_the_notification_instead_of_sending(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="agents.notify")
    monkeypatch.setattr(notifiers_module, "_unconfigured_reported", False)
    notifiers = Notifiers.from_env()
    Notifiers.from_env()  # a second build in the same process does not repeat the warning

    results = await notifiers.send_all(NOTE)

    assert results == {"log": None}
    assert caplog.text.count("no notifier configured") == 1
    logged = [r.getMessage() for r in caplog.records if "notification [normal]" in r.getMessage()]
    assert logged == [f"notification [normal] {NOTE.title}: 2 findings <{NOTE.url}>"]
    assert fan_out(NOTE, notifiers) == [{**NOTE.model_dump(), "provider": "log"}]


async def test_fan_out_makes_one_payload_per_chosen_provider(monkeypatch, slack, ntfy):
    configure(monkeypatch, slack, ntfy)
    notifiers = Notifiers.from_env()

    payloads = fan_out(NOTE, notifiers)
    slack_only = fan_out(NOTE, notifiers, push=False)

    assert [p["provider"] for p in payloads] == ["slack", "ntfy"]
    assert all(NotifyRequest.model_validate(p).title == NOTE.title for p in payloads)
    assert [p["provider"] for p in slack_only] == ["slack"]


async def test_send_all_delivers_what_it_can_and_names_what_failed(monkeypatch, slack, ntfy):
    configure(monkeypatch, slack, ntfy)
    note = NOTE.model_copy(update={"channel": "#gone"})

    with pytest.raises(NotifyError, match=r"^slack: Slack channel '#gone' not found"):
        await Notifiers.from_env().send_all(note)
    assert len(ntfy[0].published) == 1


async def test_an_unconfigured_provider_is_refused_by_name():
    with pytest.raises(NotifyError, match="'slack' is not configured"):
        await Notifiers(NotifySettings()).send("slack", NOTE)


async def test_step_retries_only_the_failed_provider_and_delivers_once(
    monkeypatch, slack, ntfy, tmp_path
):
    configure(monkeypatch, slack, ntfy)
    outage = Reply.text("upstream connect error", status=503)
    slack[0].inject(r"/api/chat\.postMessage", outage, outage)

    async with Harness(steps=[STEPS], db=tmp_path / "t.db") as h:
        for payload in fan_out(NOTE, Notifiers.from_env()):
            await h.emit("notify.send", payload)
        await h.drain(timeout=20)
        dead = await h.dead_letters()

    assert dead == []
    assert len(slack[0].posted()) == 1
    assert len(slack[0].calls(r"/api/chat\.postMessage")) == 3
    assert len(ntfy[0].published) == 1  # the push was not repeated by Slack's retries


async def test_step_threads_follow_ups_through_runtime_state(monkeypatch, slack, tmp_path):
    configure(monkeypatch, slack)
    update = NOTE.model_copy(update={"title": "acme/app#7 merged"})

    async with Harness(steps=[STEPS], db=tmp_path / "t.db") as h:
        for note in (NOTE, update):
            for payload in fan_out(note, Notifiers.from_env()):
                await h.emit("notify.send", payload)
            await h.drain(timeout=20)

    first, second = slack[0].posted()
    assert first["thread_ts"] is None and second["thread_ts"] == first["ts"]


async def test_step_in_log_mode_shows_the_notification_in_the_runtime_logs(tmp_path):
    async with Harness(steps=[STEPS], db=tmp_path / "t.db") as h:
        trace = await h.emit("notify.send", fan_out(NOTE, Notifiers.from_env())[0])
        await h.drain(timeout=20)
        logs = await h.logs(trace_id=trace)

    assert any(NOTE.title in entry.message for entry in logs)
