"""The Gmail flow end to end: the real runtime (app.testing.Harness) running steps/gmail and
steps/notify against loopback Gmail, Slack, ntfy and Pub/Sub."""

from __future__ import annotations

import json

import pytest

from agents.gmail.counters import day_counts, today
from tests.agents.gmail.conftest import eml
from tests.agents.gmail.world import AUDIENCE, WEBHOOK_TOKEN, World
from tests.agents.leaks import assert_no_secrets


async def test_spam_moves_urgent_alerts_once_ham_stays(world: World) -> None:
    g = world.gmail
    spam = g.add_message(eml("phishing.eml"))
    urgent = g.add_message(eml("urgent_outage.eml"))
    ham = g.add_message(eml("ham_plain.eml"))
    await world.poll()
    assert "SPAM" in g.labels_of(spam) and "INBOX" not in g.labels_of(spam)
    assert g.labels_of(urgent) == g.labels_of(ham) == ["INBOX", "UNREAD"]
    slack, pushes = world.alerts()
    assert len(slack) == 1 and len(pushes) == 1
    assert "production database is down" in str(slack[0]) and "Ops Pager" in str(slack[0])
    assert "urgent keyword" in pushes[0]["message"]
    counts = await day_counts(world.h.state, today())
    assert counts == {"received": 3, "spam": 1, "unsure": 0, "urgent": 1, "cleaned": 0}
    assert world.h.emitted("gmail.spam.detected")[0].data["id"] == spam
    # the same message delivered again (a re-sent push, a replayed event) alerts nobody
    await world.h.emit(
        "gmail.message.new", {"id": urgent, "source": "gmail"}, key=f"gmail:{urgent}"
    )
    await world.h.state.set("gmail.mailbox", "history_id", 1000)  # re-read the whole history
    await world.poll()
    assert [len(x) for x in world.alerts()] == [1, 1]
    assert (await day_counts(world.h.state, today()))["received"] == 3
    await assert_no_secrets(world.h, world.secrets())


async def test_spam_action_label_and_none_and_no_slack(world: World) -> None:
    # notify: is in the base already; a second one is refused as a duplicate key
    no_slack = world.base.replace("notify:\n", "notify:\n  slack: false\n", 1)  # type: ignore[attr-defined]
    world.configure(no_slack + "  action: label\n  label: Suspicious\n")
    labelled = world.gmail.add_message(eml("phishing.eml"))
    await world.poll()
    labels = world.gmail.labels_of(labelled)
    assert "INBOX" in labels and any(world.gmail.labels.get(x) == "Suspicious" for x in labels)
    world.configure(world.base + "  action: none\n")  # type: ignore[attr-defined]
    left = world.gmail.add_message(eml("phishing.eml"))
    await world.poll()
    assert world.gmail.labels_of(left) == ["INBOX", "UNREAD"]
    assert len(world.h.emitted("gmail.spam.detected")) == 2
    assert world.alerts() == ([], [])


async def test_hot_reloaded_vip_list_applies_to_the_next_message(world: World) -> None:
    world.gmail.add_message(eml("vip_boss.eml"))
    await world.poll()
    assert world.alerts() == ([], [])  # not a VIP yet; no urgent words
    world.configure(world.base + "priority:\n  vip_senders: ['*@bigcorp.com']\n")  # type: ignore[attr-defined]
    world.gmail.add_message(eml("vip_boss.eml"))
    await world.poll()
    slack, pushes = world.alerts()
    assert len(slack) == len(pushes) == 1 and "VIP sender (*@bigcorp.com)" in str(slack[0])
    # a VIP kept in state (no file edit) works the same way
    await world.h.state.set("gmail.vip", "francois@partner.fr", True)
    world.gmail.add_message(eml("multipart_latin1.eml"))
    await world.poll()
    assert len(world.alerts()[0]) == 2


async def test_email_webhook_needs_the_token_and_runs_once(world: World) -> None:
    body = {
        "messageId": "ext-1",
        "from": "Ops <ops@example.com>",
        "subject": "Emergency: power cut",
        "body": "<p>Building B is dark</p>",
    }
    r = await world.h.post("/webhooks/email", json=body, headers={"Authorization": "Bearer no"})
    assert r.status_code == 401
    r = await world.h.post(
        "/webhooks/email", json={"from": "x"}, headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    )
    assert r.status_code == 422 and "messageId" in r.text
    for _ in range(2):
        r = await world.h.post(
            "/webhooks/email", json=body, headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
        )
        assert r.status_code == 202
    await world.h.drain(timeout=20)
    slack, pushes = world.alerts()
    assert len(slack) == 1 and len(pushes) == 1 and "Emergency: power cut" in str(slack[0])
    await assert_no_secrets(world.h, world.secrets())


async def test_email_webhook_without_a_token_is_off_with_a_4xx(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GMAIL_WEBHOOK_TOKEN")
    body = {"messageId": "ext-2", "from": "a@example.com", "subject": "s", "body": "b"}
    r = await world.h.post("/webhooks/email", json=body, headers={"Authorization": "Bearer x"})
    assert r.status_code == 403 and "set GMAIL_WEBHOOK_TOKEN" in r.json()["error"]
    assert world.h.emitted("gmail.message.new") == []


async def test_mail_text_is_masked_in_events_and_still_classified(world: World) -> None:
    """Secrets in a body reach no event, log or alert, and the rules still judge the mail."""
    code, api_key = "48213907", "sk-proj-Q7wErTyUiOpAsDfGhJkL9z"
    # a credential in a link's user part and a token in a subject reach no event or reason
    link_password, token = "Sup3rS3cretPass", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
    urgent = {
        "messageId": "ext-urgent",
        "from": "Facilities <facilities@example.com>",
        "subject": "Server room door",
        "body": f"Emergency: the door PIN {code} leaked with the api key {api_key} today.",
    }
    phishing = {
        "messageId": "ext-spam",
        "from": "Prize Desk <desk@winners.example>",
        "subject": f"YOU HAVE WON!!! ref {token}",
        "body": (
            "<p>Dear customer, you have won a gift card. Click here and confirm your "
            "password: Hunter2222 to claim it.</p>"
            '<a href="http://192.0.2.7/claim">www.paypal.com</a> <a href="https://bit.ly/x">go</a>'
            f'<a href="https://winner:{link_password}@claims.example/x">claim</a>'
        ),
    }
    auth = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    for mail in (urgent, phishing):
        assert (await world.h.post("/webhooks/email", json=mail, headers=auth)).status_code == 202
    await world.h.drain(timeout=20)
    received = {m.data["id"]: m.data for m in world.h.emitted("gmail.email.received")}
    assert "PIN [REDACTED]" in received["ext-urgent"]["text"]
    assert "password: [REDACTED]" in received["ext-spam"]["text"]
    # priority: the urgent word is in the (masked) body only
    high = world.h.emitted("gmail.email.high_priority")
    assert [m.data["id"] for m in high] == ["ext-urgent"]
    assert "text" not in high[0].data  # alerts carry metadata, not the body
    # spam: wording and links were judged on the masked text and the real link targets
    spam = world.h.emitted("gmail.spam.detected")
    assert [m.data["id"] for m in spam] == ["ext-spam"]
    reasons = " | ".join(spam[0].data["reasons"])
    assert "link to a bare IP address" in reasons
    assert "phishing wording (confirm your password)" in reasons
    assert "link hides its host claims.example behind a user name and '@'" in reasons
    slack, pushes = world.alerts()
    assert len(slack) == len(pushes) == 1
    assert code not in json.dumps([slack, pushes]) and api_key not in json.dumps([slack, pushes])
    stored = await world.h.state.get("gmail.messages", "ext-urgent")
    assert stored["subject"] == "Server room door" and "text" not in stored
    await assert_no_secrets(
        world.h,
        world.secrets(
            door_pin=code,
            api_key=api_key,
            password="Hunter2222",
            link_password=link_password,
            token=token,
        ),
    )


async def test_expired_history_falls_back_to_recent_messages(world: World) -> None:
    world.gmail.forget_history()
    mid = world.gmail.add_message(eml("urgent_outage.eml"))
    await world.poll()
    assert [m.data["id"] for m in world.h.emitted("gmail.email.received")] == [mid]
    assert int(await world.h.state.get("gmail.mailbox", "history_id")) == world.gmail.history_id


async def test_push_mode_verifies_the_token_then_syncs(world: World) -> None:
    world.configure(
        world.base + f"mode: push\npush:\n  topic: projects/p/topics/gmail\n"  # type: ignore[attr-defined]
        f"  audience: {AUDIENCE}\n"
    )
    await world.h.run_cron("GmailRenewWatch")
    await world.h.drain()
    assert world.gmail.watches[-1]["topicName"] == "projects/p/topics/gmail"
    mid = world.gmail.add_message(eml("urgent_outage.eml"))
    body = world.pubsub.body("me@example.com", world.gmail.history_id)
    wrong = world.pubsub.token("https://elsewhere.example/hook")
    r = await world.h.post(
        "/webhooks/gmail", json=body, headers={"Authorization": f"Bearer {wrong}"}
    )
    assert r.status_code == 403
    await world.h.drain()
    assert world.h.emitted("gmail.message.new") == []
    good = {"Authorization": f"Bearer {world.pubsub.token(AUDIENCE)}"}
    for _ in range(2):  # Pub/Sub redelivers at least once
        assert (await world.h.post("/webhooks/gmail", json=body, headers=good)).status_code == 200
    await world.h.drain(timeout=20)
    assert [m.data["id"] for m in world.h.emitted("gmail.email.received")] == [mid]
    assert [len(x) for x in world.alerts()] == [1, 1]
    await assert_no_secrets(
        world.h, world.secrets(push_token=good["Authorization"][7:], wrong_token=wrong)
    )


async def test_cleanup_counts_on_the_day_it_reports(world: World) -> None:
    # The cron step reads its day before trashing and reports that day's counts; a run that
    # passed midnight while trashing counted them on the next day, and reported cleaned 0.
    from agents.gmail import flow, services

    for _ in range(3):
        world.gmail.add_message(eml("phishing.eml"), labels=["SPAM"], age_days=9)
    state = world.h.state
    result = await flow.cleanup_spam(services.gmail(), state, services.settings(), "2026-01-31")
    assert result.cleaned == 3
    assert (await day_counts(state, "2026-01-31"))["cleaned"] == 3


async def test_cleanup_trashes_exactly_the_old_spam_and_reports(world: World) -> None:
    g = world.gmail
    old_spam = [g.add_message(eml("phishing.eml"), labels=["SPAM"], age_days=9) for _ in range(4)]
    new_spam = g.add_message(eml("phishing.eml"), labels=["SPAM"], age_days=2)
    old_ham = g.add_message(eml("ham_plain.eml"), age_days=30)
    await world.h.run_cron("GmailCleanup")
    await world.h.drain(timeout=20)
    assert all(g.labels_of(m) == ["TRASH"] for m in old_spam)
    assert g.labels_of(new_spam) == ["SPAM"] and "TRASH" not in g.labels_of(old_ham)
    done = world.h.emitted("gmail.cleanup.completed")[0].data
    assert done["counts"]["cleaned"] == 4 and done["mode"] == "trash"
    slack, pushes = world.alerts()
    assert len(slack) == 1 and "cleaned 4" in str(slack[0]) and pushes == []
    # delete is configured but the token has only gmail.modify: trashed, and said so
    world.configure(world.base + "cleanup:\n  delete: true\n")  # type: ignore[attr-defined]
    g.add_message(eml("phishing.eml"), labels=["SPAM"], age_days=9)
    await world.h.run_cron("GmailCleanup")
    await world.h.drain(timeout=20)
    assert "full mail scope" in world.h.emitted("gmail.cleanup.completed")[1].data["note"]
