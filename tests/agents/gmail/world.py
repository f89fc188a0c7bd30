"""The world the Gmail flow's end-to-end tests run in: the real runtime (app.testing.Harness)
running steps/gmail and steps/notify against loopback Gmail, Slack, ntfy and Pub/Sub.
The fixtures are registered in conftest.py."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.gmail import services
from app.testing import Harness
from tests.fakes.common import LoopbackServer
from tests.fakes.gmail_server import FakeGmail
from tests.fakes.pubsub import FakePubSub
from tests.fakes.push_server import FakeNtfy
from tests.fakes.slack_server import FakeSlack

__all__ = ["AUDIENCE", "WEBHOOK_TOKEN", "World", "servers", "world", "world_clock"]

ROOT = Path(__file__).resolve().parents[3]
STEPS = [ROOT / "steps" / "gmail", ROOT / "steps" / "notify"]
AUDIENCE = "https://hooks.example.com/webhooks/gmail"
WEBHOOK_TOKEN = "hook-secret-1"


class World:
    def __init__(
        self,
        gmail: FakeGmail,
        slack: FakeSlack,
        ntfy: FakeNtfy,
        pubsub: FakePubSub,
        config: Path,
        h: Harness,
        token_file: Path,
    ) -> None:
        self.gmail, self.slack, self.ntfy, self.pubsub = gmail, slack, ntfy, pubsub
        self.config, self.h, self.token_file = config, h, token_file

    def secrets(self, **more: str) -> dict[str, str]:
        """Every secret this world runs with: the OAuth token file's, Slack's, the webhook's."""
        oauth = json.loads(self.token_file.read_text())
        return {
            "Gmail access token": oauth["token"],
            "Gmail refresh token": oauth["refresh_token"],
            "Gmail client secret": oauth["client_secret"],
            "Slack token": self.slack.token,
            "GMAIL_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            **more,
        }

    def configure(self, text: str) -> None:
        self.config.write_text(text)
        st = self.config.stat()  # a new mtime even on a coarse clock
        os.utime(self.config, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

    async def poll(self) -> None:
        await self.h.run_cron("GmailPoll")
        await self.h.drain(timeout=20)

    def alerts(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return self.slack.posted(), list(self.ntfy.published)


@pytest.fixture
def servers() -> Iterator[tuple[Any, ...]]:
    gmail, slack, ntfy, pubsub = FakeGmail(), FakeSlack(), FakeNtfy(), FakePubSub()
    with (
        LoopbackServer(gmail) as g,
        LoopbackServer(slack) as s,
        LoopbackServer(ntfy) as n,
        LoopbackServer(pubsub) as p,
    ):
        yield gmail, slack, ntfy, pubsub, g.url, s.url, n.url, p.url


@pytest.fixture
def world_clock() -> Callable[[], float] | None:
    """The runtime's clock; a test module overrides this fixture to move time itself."""
    return None


@pytest.fixture
async def world(
    servers: tuple[Any, ...],
    gmail_env: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    world_clock: Callable[[], float] | None,
) -> AsyncIterator[World]:
    _, slack, ntfy, pubsub, _, slack_url, ntfy_url, pubsub_url = servers
    gmail = gmail_env[0]
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "PUSHOVER_TOKEN", "PUSH_WEBHOOK_URL"):
        monkeypatch.delenv(var, raising=False)
    env = {
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_API_URL": f"{slack_url}/api/",
        "NTFY_URL": ntfy_url,
        "NTFY_TOPIC": "phone",
        "GMAIL_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
        "GMAIL_PUSH_CERTS_URL": f"{pubsub_url}/oauth2/v3/certs",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = tmp_path / "config" / "gmail.yaml"
    base = f"notify:\n  slack_channel: alerts\nspam:\n  model_path: {tmp_path / 'm.json'}\n"
    config.write_text(base)
    services.reset()
    async with Harness(steps=STEPS, db=tmp_path / "stepline.db", clock=world_clock) as h:
        w = World(gmail, slack, ntfy, pubsub, config, h, gmail_env[2])
        w.base = base  # type: ignore[attr-defined]
        await w.poll()  # the first poll only records where the mailbox stands
        yield w
    services.reset()
