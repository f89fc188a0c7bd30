"""Slack notifications through the real slack-sdk client against a loopback Slack."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from agents.notify import THREADS_GROUP, Notification, Notifiers, NotifyError, NotifySettings
from tests.agents.conftest import MemoryState
from tests.fakes.common import LoopbackServer
from tests.fakes.slack_server import FakeSlack


@pytest.fixture
def slack() -> FakeSlack:
    return FakeSlack()


@pytest.fixture
def server(slack: FakeSlack) -> Iterator[LoopbackServer]:
    with LoopbackServer(slack) as srv:
        yield srv


def notifiers_for(server: LoopbackServer, slack: FakeSlack, **overrides: object) -> Notifiers:
    values: dict[str, object] = {
        "slack_bot_token": slack.token,
        "slack_api_url": f"{server.url}/api/",
        "slack_default_channel": "#alerts",
        "timeout": 5,
    }
    values.update(overrides)
    return Notifiers(NotifySettings(**values))  # type: ignore[arg-type]


NOTE = Notification(
    title="PR #7 needs changes",
    text="2 findings in `app/server.py` <script>",
    url="https://github.com/acme/app/pull/7",
    priority="high",
    fields={"Repository": "acme/app", "Author": "ann"},
    thread_key="pr:acme/app#7",
)


async def test_message_is_block_kit_with_a_plain_text_fallback(server, slack):
    notifiers = notifiers_for(server, slack)

    ts = await notifiers.send("slack", NOTE)

    (message,) = slack.posted()
    assert message["ts"] == ts and message["channel"] == "C0ALERTS"
    assert "PR #7 needs changes" in message["text"] and NOTE.url in message["text"]
    kinds = [b["type"] for b in message["blocks"]]
    assert kinds == ["header", "section", "section", "context"]
    assert "PR #7 needs changes" in message["blocks"][0]["text"]["text"]
    # User text is escaped so it cannot forge Slack links or mentions.
    assert "&lt;script&gt;" in message["blocks"][1]["text"]["text"]
    assert {f["text"] for f in message["blocks"][2]["fields"]} == {
        "*Repository*\nacme/app",
        "*Author*\nann",
    }


async def test_follow_ups_with_the_same_key_thread_under_the_first(
    server, slack, memory_state: MemoryState
):
    notifiers = notifiers_for(server, slack)
    first_ts = await notifiers.send("slack", NOTE, memory_state)
    update = NOTE.model_copy(update={"title": "PR #7 approved", "priority": "normal"})
    other = NOTE.model_copy(update={"thread_key": "pr:acme/app#8"})

    reply_ts = await notifiers.send("slack", update, memory_state)
    other_ts = await notifiers.send("slack", other, memory_state)

    by_ts = {m["ts"]: m for m in slack.posted()}
    assert by_ts[first_ts]["thread_ts"] is None
    assert by_ts[reply_ts]["thread_ts"] == first_ts
    assert by_ts[other_ts]["thread_ts"] is None
    stored = await memory_state.get(THREADS_GROUP, "#alerts|pr:acme/app#7")
    assert stored == {"channel": "C0ALERTS", "ts": first_ts}


async def test_threads_survive_a_new_notifiers_object_through_state(
    server, slack, memory_state: MemoryState
):
    # A retry or another worker process builds its own Notifiers; the thread lives in state.
    first_ts = await notifiers_for(server, slack).send("slack", NOTE, memory_state)
    reply_ts = await notifiers_for(server, slack).send("slack", NOTE, memory_state)
    assert {m["ts"]: m["thread_ts"] for m in slack.posted()}[reply_ts] == first_ts


async def test_429_is_retried_after_retry_after_and_delivered_once(server, slack):
    slack.inject(r"/api/chat\.postMessage", FakeSlack.rate_limited(retry_after="1"))

    await notifiers_for(server, slack).send("slack", NOTE)

    assert len(slack.posted()) == 1
    first, second = slack.calls(r"/api/chat\.postMessage")
    assert second.received_at - first.received_at >= 1.0


async def test_channel_not_found_says_to_check_the_name_and_invite_the_bot(server, slack):
    note = NOTE.model_copy(update={"channel": "#no-such-channel"})

    with pytest.raises(NotifyError) as failure:
        await notifiers_for(server, slack).send("slack", note)

    assert "#no-such-channel" in str(failure.value)
    assert "/invite" in str(failure.value)
    assert failure.value.permanent
    assert slack.posted() == []


async def test_not_in_channel_names_the_fixes(server):
    slack = FakeSlack(scopes=("chat:write",))
    slack.add_channel("C0RANDOM", "random", bot_is_member=False)
    with LoopbackServer(slack) as srv:
        notifiers = notifiers_for(srv, slack)
        with pytest.raises(NotifyError, match=r"/invite.*chat:write\.public"):
            await notifiers.send("slack", NOTE.model_copy(update={"channel": "random"}))


async def test_public_channel_without_membership_works_with_chat_write_public(server, slack):
    slack.add_channel("C0RANDOM", "random", bot_is_member=False)
    await notifiers_for(server, slack).send(
        "slack", NOTE.model_copy(update={"channel": "C0RANDOM"})
    )
    assert slack.posted()[0]["channel"] == "C0RANDOM"


async def test_missing_channel_configuration_is_reported(server, slack):
    notifiers = notifiers_for(server, slack, slack_default_channel=None)
    with pytest.raises(NotifyError, match="SLACK_DEFAULT_CHANNEL"):
        await notifiers.send("slack", NOTE)
    assert slack.requests == []


async def test_bad_token_is_reported_without_leaking_either_token(
    server, slack, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)  # slack-sdk logs requests at debug level
    wrong = "xoxb-1111-2222-WRONGtokenVALUE"
    await notifiers_for(server, slack).send("slack", NOTE)

    with pytest.raises(NotifyError) as failure:
        await notifiers_for(server, slack, slack_bot_token=wrong).send("slack", NOTE)

    assert "SLACK_BOT_TOKEN" in str(failure.value)
    assert "invalid_auth" in str(failure.value)
    for secret in (slack.token, wrong):
        assert secret not in str(failure.value)
        assert secret not in caplog.text
    assert "Sending a request" in caplog.text  # the client's debug log was captured
