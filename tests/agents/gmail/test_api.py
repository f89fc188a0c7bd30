"""The Gmail client (real google-api-python-client) against the loopback Gmail."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from agents.gmail.api import GmailAPI
from agents.gmail.errors import GmailAPIError, GmailAuthRevoked, GmailNotConnected, HistoryExpired
from agents.gmail.oauth import load_credentials
from agents.gmail.parse import parse_gmail_full
from tests.agents.gmail.conftest import eml
from tests.fakes.gmail_server import FakeGmail


def test_history_reads_every_page_and_returns_the_newest_id(
    api: GmailAPI, gmail_env: tuple[FakeGmail, str, Path]
) -> None:
    fake, _, _ = gmail_env
    start = api.profile()["historyId"]
    ids = [fake.add_message(eml("ham_plain.eml")) for _ in range(5)]
    fake.add_message(eml("ham_plain.eml"), labels=["SENT"])  # not in INBOX: not reported
    page = api.history_since(start)
    assert page.added == ids and page.label_changes == []
    assert page.latest == str(fake.history_id)
    assert len(fake.calls(r".*/history")) >= 3  # page size 2: the client followed the pages
    again = api.history_since(page.latest)
    assert (again.added, again.label_changes, again.latest) == ([], [], page.latest)


def test_expired_history_id_raises_history_expired(
    api: GmailAPI, gmail_env: tuple[FakeGmail, str, Path]
) -> None:
    fake, _, _ = gmail_env
    start = api.profile()["historyId"]
    fake.forget_history()
    with pytest.raises(HistoryExpired) as err:
        api.history_since(start)
    assert err.value.status == 404


def test_message_formats_raw_full_and_metadata_agree(
    api: GmailAPI, gmail_env: tuple[FakeGmail, str, Path]
) -> None:
    fake, _, _ = gmail_env
    mid = fake.add_message(eml("multipart_latin1.eml"))
    from_raw = api.get_parsed(mid)
    from_full = parse_gmail_full(api.get(mid, "full"))
    assert from_raw.id == from_full.id == mid
    assert from_raw.subject == from_full.subject == "Résumé de la réunion"
    assert "prêt" in from_raw.text and "prêt" in from_full.text
    assert from_raw.label_ids == ["INBOX", "UNREAD"]
    meta = api.get(mid, "metadata")
    assert "raw" not in meta and "Subject" in {h["name"] for h in meta["payload"]["headers"]}


def test_modify_trash_and_labels(api: GmailAPI, gmail_env: tuple[FakeGmail, str, Path]) -> None:
    fake, _, _ = gmail_env
    mid = fake.add_message(eml("phishing.eml"))
    api.modify(mid, add=["SPAM"], remove=["INBOX"])
    assert fake.labels_of(mid) == ["UNREAD", "SPAM"]
    label = api.ensure_label("Stepline/Suspected spam")
    assert api.ensure_label("Stepline/Suspected spam") == label  # found, not created twice
    api.modify(mid, add=[label])
    assert label in fake.labels_of(mid)
    api.trash(mid)
    assert "TRASH" in fake.labels_of(mid)
    with pytest.raises(GmailAPIError) as err:
        api.trash("does-not-exist")
    assert err.value.status == 404


def test_list_ids_pages_filters_and_spam_visibility(
    api: GmailAPI, gmail_env: tuple[FakeGmail, str, Path]
) -> None:
    fake, _, _ = gmail_env
    old = [fake.add_message(eml("phishing.eml"), labels=["SPAM"], age_days=10) for _ in range(4)]
    fake.add_message(eml("phishing.eml"), labels=["SPAM"], age_days=1)
    fake.add_message(eml("ham_plain.eml"), age_days=30)
    found = api.list_ids(q="older_than:7d", label_ids=["SPAM"], include_spam_trash=True)
    assert sorted(found) == sorted(old)  # list page size 3: two pages were read
    assert api.list_ids(label_ids=["INBOX"], limit=1) != []


def test_batch_delete_needs_the_full_scope(
    api: GmailAPI, gmail_env: tuple[FakeGmail, str, Path]
) -> None:
    fake, _, _ = gmail_env
    mid = fake.add_message(eml("phishing.eml"), labels=["SPAM"])
    with pytest.raises(GmailAPIError) as err:
        api.batch_delete([mid])
    assert err.value.status == 403 and "scope" in str(err.value)
    assert mid in fake.messages


def test_watch_sends_topic_and_labels(api: GmailAPI, gmail_env: tuple[FakeGmail, str, Path]):
    fake, _, _ = gmail_env
    reply = api.watch("projects/p/topics/gmail", ["INBOX"])
    assert int(reply["historyId"]) == fake.history_id and int(reply["expiration"]) > 0
    assert fake.watches == [
        {
            "topicName": "projects/p/topics/gmail",
            "labelIds": ["INBOX"],
            "labelFilterBehavior": "include",
        }
    ]


def test_expired_access_token_is_refreshed_and_saved_0600(
    gmail_env: tuple[FakeGmail, str, Path],
) -> None:
    fake, _, token = gmail_env
    before = json.loads(token.read_text())["token"]
    fake.expire_access_tokens()
    api = GmailAPI.connect()
    assert api.profile()["emailAddress"] == "me@example.com"  # 401, refresh, retry
    # an expired token on disk is refreshed on load and stored again, owner-only
    data = json.loads(token.read_text())
    data["expiry"] = "2000-01-01T00:00:00Z"
    token.write_text(json.dumps(data))
    load_credentials()
    after = json.loads(token.read_text())
    assert after["token"] not in (before, data["token"])
    assert stat.S_IMODE(token.stat().st_mode) == 0o600


def test_revoked_grant_says_to_connect_again(gmail_env: tuple[FakeGmail, str, Path]) -> None:
    fake, _, token = gmail_env
    fake.revoke(json.loads(token.read_text())["refresh_token"])
    api = GmailAPI.connect()
    with pytest.raises(GmailAuthRevoked) as err:
        api.profile()
    message = str(err.value)
    assert "stepline gmail connect" in message and "revoked" in message
    assert "fake-refresh" not in message and "client-secret" not in message


def test_missing_token_says_how_to_connect(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GMAIL_TOKEN_FILE", str(tmp_path / "none.json"))
    with pytest.raises(GmailNotConnected, match="stepline gmail connect"):
        GmailAPI.connect()
