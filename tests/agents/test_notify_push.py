"""ntfy, Pushover and webhook pushes, checked in the request shapes the real services expect."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from agents.notify import Notification, Notifiers, NotifyError, NotifySettings
from tests.fakes.common import LoopbackServer, Reply
from tests.fakes.push_server import FakeNtfy, FakePushover, FakeWebhook

NOTE = Notification(
    title="Urgent mail from the bank",
    text="Your card was blocked",
    url="https://mail.google.com/mail/u/0/#inbox/abc",
    priority="high",
    fields={"From": "bank@example.com"},
)
NTFY_TOKEN = "tk_ntfysecret0123456789abcdef"


@pytest.fixture
def ntfy() -> Iterator[tuple[FakeNtfy, str]]:
    fake = FakeNtfy(token=NTFY_TOKEN)
    with LoopbackServer(fake) as srv:
        yield fake, srv.url


@pytest.fixture
def pushover() -> Iterator[tuple[FakePushover, str]]:
    fake = FakePushover()
    with LoopbackServer(fake) as srv:
        yield fake, srv.url


def settings(**values: object) -> NotifySettings:
    return NotifySettings(**{"timeout": 5, **values})  # type: ignore[arg-type]


def ntfy_notifiers(url: str, token: str = NTFY_TOKEN) -> Notifiers:
    return Notifiers(settings(ntfy_url=url, ntfy_topic="stepline-alerts", ntfy_token=token))


async def test_ntfy_gets_a_post_to_the_topic_with_headers_and_bearer_token(ntfy):
    fake, url = ntfy

    message_id = await ntfy_notifiers(url).send("ntfy", NOTE)

    (req,) = fake.requests
    assert (req.method, req.path) == ("POST", "/stepline-alerts")
    assert req.headers["authorization"] == f"Bearer {NTFY_TOKEN}"
    assert req.headers["title"] == NOTE.title
    assert req.headers["priority"] == "4"
    assert req.headers["tags"] == "warning"
    assert req.headers["click"] == NOTE.url
    assert req.text == "Your card was blocked\nFrom: bank@example.com"
    assert message_id == fake.published[0]["id"]


async def test_ntfy_priorities_and_a_non_ascii_title(ntfy):
    fake, url = ntfy
    notifiers = ntfy_notifiers(url)
    for priority in ("low", "normal", "urgent"):
        note = NOTE.model_copy(
            update={
                "priority": priority,
                "title": "Überweisung 🚨 fällig",
                "url": "https://example.com/überweisung?id=1",
            }
        )
        await notifiers.send("ntfy", note)

    assert [m["priority"] for m in fake.published] == [2, 3, 5]
    assert {m["title"] for m in fake.published} == {"Überweisung 🚨 fällig"}
    assert fake.published[2]["tags"] == ["rotating_light"]
    assert fake.published[0]["click"] == "https://example.com/%C3%BCberweisung?id=1"


async def test_ntfy_rejected_token_is_a_clear_error_without_the_token(ntfy):
    _, url = ntfy
    wrong = "tk_WRONGntfytoken987654321"
    with pytest.raises(NotifyError, match="NTFY_TOKEN") as failure:
        await ntfy_notifiers(url, token=wrong).send("ntfy", NOTE)
    assert wrong not in str(failure.value) and failure.value.permanent


async def test_ntfy_429_is_retried_after_retry_after_and_delivered_once(ntfy):
    fake, url = ntfy
    fake.inject(
        r"/stepline-alerts",
        Reply.json(
            {"code": 42901, "http": 429, "error": "limit"}, status=429, headers={"Retry-After": "1"}
        ),
    )

    await ntfy_notifiers(url).send("ntfy", NOTE)

    assert len(fake.published) == 1
    first, second = fake.requests
    assert second.received_at - first.received_at >= 1.0


async def test_pushover_gets_the_form_it_documents(pushover):
    fake, url = pushover
    notifiers = Notifiers(
        settings(pushover_token=fake.token, pushover_user=fake.user, pushover_api_url=url)
    )

    request_id = await notifiers.send("pushover", NOTE)

    (req,) = fake.requests
    assert (req.method, req.path) == ("POST", "/1/messages.json")
    assert req.headers["content-type"].startswith("application/x-www-form-urlencoded")
    form = req.form()
    assert form["token"] == fake.token and form["user"] == fake.user
    assert form["title"] == NOTE.title
    assert form["message"] == "Your card was blocked\nFrom: bank@example.com"
    assert form["priority"] == "1"
    assert form["url"] == NOTE.url
    assert request_id is not None and request_id.startswith("req-")


async def test_pushover_urgent_is_an_emergency_with_retry_and_expire(pushover):
    fake, url = pushover
    notifiers = Notifiers(
        settings(pushover_token=fake.token, pushover_user=fake.user, pushover_api_url=url)
    )
    await notifiers.send("pushover", NOTE.model_copy(update={"priority": "urgent"}))
    (sent,) = fake.messages
    assert sent["priority"] == "2" and int(sent["retry"]) >= 30 and int(sent["expire"]) > 0


async def test_pushover_bad_token_names_the_setting_and_hides_the_secrets(
    pushover, caplog: pytest.LogCaptureFixture
):
    fake, url = pushover
    caplog.set_level(logging.DEBUG)
    wrong = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
    notifiers = Notifiers(
        settings(pushover_token=wrong, pushover_user=fake.user, pushover_api_url=url)
    )

    with pytest.raises(NotifyError) as failure:
        await notifiers.send("pushover", NOTE)

    text = str(failure.value)
    assert "application token is invalid" in text and "PUSHOVER_TOKEN" in text
    for secret in (wrong, fake.user):
        assert secret not in text and secret not in caplog.text


async def test_webhook_gets_the_notification_as_signed_json():
    fake = FakeWebhook(secret="whsec-shared")
    with LoopbackServer(fake) as srv:
        hook_url = f"{srv.url}/hooks/T000-secret-path"
        notifiers = Notifiers(
            settings(push_webhook_url=hook_url, push_webhook_secret="whsec-shared")
        )
        await notifiers.send("webhook", NOTE)

    (payload,) = fake.received
    assert payload == json.loads(NOTE.model_dump_json())
    assert fake.requests[0].headers["content-type"] == "application/json"


async def test_webhook_failure_does_not_reveal_the_url_path():
    fake = FakeWebhook(secret="expected-secret")
    with LoopbackServer(fake) as srv:
        hook_url = f"{srv.url}/hooks/T000-secret-path"
        notifiers = Notifiers(settings(push_webhook_url=hook_url, push_webhook_secret="other"))
        with pytest.raises(NotifyError, match="PUSH_WEBHOOK_URL") as failure:
            await notifiers.send("webhook", NOTE)
    assert "T000-secret-path" not in str(failure.value)
    assert "401" in str(failure.value)
