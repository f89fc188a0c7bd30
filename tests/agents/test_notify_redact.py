"""What reaches Slack is masked with the same table as everything else: a token, a JWT, a URL
password or a bearer header put in a notification by any flow arrives as [REDACTED]."""

from __future__ import annotations

import json
from collections.abc import Iterator

import jwt
import pytest

from agents.notify import Notification, Notifiers, NotifySettings
from tests.fakes.common import LoopbackServer
from tests.fakes.slack_server import FakeSlack

GOOGLE_KEY = "AIza" + "SyD7kq2vX0b9LmN4pQ8rS6tU1wY3zA5cE7g"
SESSION = jwt.encode({"sub": "ann", "role": "admin"}, "k" * 32, algorithm="HS256")


@pytest.fixture
def server() -> Iterator[tuple[LoopbackServer, FakeSlack]]:
    slack = FakeSlack()
    with LoopbackServer(slack) as srv:
        yield srv, slack


async def test_a_notification_is_masked_before_slack_sees_it(server) -> None:
    srv, slack = server
    notifiers = Notifiers(
        NotifySettings(
            slack_bot_token=slack.token,
            slack_api_url=f"{srv.url}/api/",
            slack_default_channel="#alerts",
            timeout=5,
        )
    )
    note = Notification(
        title=f"Deploy key {GOOGLE_KEY} leaked",
        text=f"Authorization: Bearer {SESSION}\nDATABASE_URL=postgres://app:Zq83hd02Lk@db/app",
        fields={"cookie": f"session={SESSION}", "Repository": "acme/app"},
    )
    await notifiers.send("slack", note)
    (message,) = slack.posted()
    sent = json.dumps(message)
    assert GOOGLE_KEY not in sent and SESSION not in sent and "Zq83hd02Lk" not in sent
    assert "[REDACTED]" in message["text"] and "acme/app" in sent
    assert "postgres://app:[REDACTED]@db/app" in sent
