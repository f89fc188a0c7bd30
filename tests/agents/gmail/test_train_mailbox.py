"""`stepline gmail train --mailbox`: learn from SPAM and INBOX of the connected mailbox.

Runs the real command with google-api-python-client against the loopback Gmail, which pages
messages.list three at a time, so every label here spans several pages.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.gmail.api import GmailAPI
from agents.gmail.bayes import BayesModel
from agents.gmail.cli import app
from agents.gmail.flow import apply_spam_action
from agents.gmail.learning import record_verdict
from agents.gmail.parse import parse_raw
from agents.gmail.settings import GmailSettings
from app.cli_common import run_with_runtime
from app.runtime import Runtime
from tests.fakes.gmail_server import FakeGmail

runner = CliRunner()

_SPAM = [
    ("Claim your prize now", "You are the lucky winner of a free cash prize. Claim it now."),
    ("Cheap pills, limited offer", "Buy cheap pills today, limited offer, free shipping."),
    ("Winner: free crypto bonus", "Your crypto wallet won a bonus. Claim the free prize now."),
    ("Act now: lottery payout", "The lottery payout is waiting, winner. Send your bank login."),
    ("Free gift card inside", "Claim your free gift card, winner, before the offer ends."),
    ("Urgent prize notification", "Final notice: unclaimed cash prize, claim now for free."),
    ("Exclusive casino bonus", "Free spins and a cash bonus for the lucky winner. Claim now."),
]
_HAM = [
    ("Agenda for Tuesday's planning", "Hi team, the agenda for the planning meeting is below."),
    ("Re: quarterly review notes", "Thanks for the review notes, I added comments on the budget."),
    ("Lunch on Friday?", "Shall we have lunch on Friday after the team meeting?"),
    ("Draft of the project report", "Attached is the draft report; comments welcome by Monday."),
    ("Meeting moved to 3pm", "The project meeting moves to 3pm; same room, same agenda."),
    ("Budget spreadsheet updated", "I updated the budget spreadsheet with the review figures."),
    ("Notes from the standup", "Standup notes: the team finished the report draft."),
]


def _raw(sender: str, subject: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "me@example.com"
    msg["Subject"] = subject
    msg.set_content(body)
    return msg.as_bytes()


def _spam(i: int) -> bytes:
    return _raw(f"promo{i}@deals{i}.example.biz", *_SPAM[i])


def _ham(i: int) -> bytes:
    return _raw(f"colleague{i}@work.example.com", *_HAM[i])


@pytest.fixture
def mailbox(
    gmail_env: tuple[FakeGmail, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[FakeGmail, Path]:
    """Seven spam and seven wanted mails (more than two list pages each); the model path."""
    monkeypatch.setenv("STEPLINE_DB", str(tmp_path / "stepline.db"))  # the flow's verdicts
    fake = gmail_env[0]
    assert fake.list_page_size < len(_SPAM)
    for i in range(len(_SPAM)):
        fake.add_message(_spam(i), ["SPAM"])
        fake.add_message(_ham(i), ["INBOX", "UNREAD"])
    fake.add_message(_raw("friend@home.example.org", "Sent photos", "Photos attached."), ["SENT"])
    model = tmp_path / "model.json"
    (tmp_path / "config" / "gmail.yaml").write_text(f"spam:\n  model_path: {model}\n")
    return fake, model


def _train(*args: str) -> str:
    result = runner.invoke(app, ["train", "--mailbox", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_mailbox_training_follows_every_page_and_separates_spam(
    mailbox: tuple[FakeGmail, Path],
) -> None:
    fake, path = mailbox
    out = _train()
    assert "learned 7 spam and 7 wanted" in out  # 3 pages per label, SENT mail left out
    model = BayesModel.load(path)
    assert model is not None and (model.spam_docs, model.ham_docs) == (7, 7)
    held_out_spam = parse_raw(
        _raw("offers@lucky.example.net", "You are a winner", "Claim your free cash prize now.")
    )
    held_out_ham = parse_raw(
        _raw("boss@work.example.com", "Review meeting", "Please bring the report to the meeting.")
    )
    assert model.spam_probability(held_out_spam) > 0.9
    assert model.spam_probability(held_out_ham) < 0.1
    assert fake.labels == {}  # looking for the flow's label does not create it


async def test_mail_the_flow_labelled_itself_is_not_learned(
    mailbox: tuple[FakeGmail, Path], tmp_path: Path
) -> None:
    """In `label` mode suspected spam stays in INBOX with the flow's label: neither ham nor
    spam evidence, since it is only the flow's own guess."""
    fake, path = mailbox
    config = tmp_path / "config" / "gmail.yaml"
    config.write_text(f"spam:\n  model_path: {path}\n  action: label\n")
    settings = GmailSettings.model_validate({"spam": {"action": "label"}})
    api = GmailAPI.connect()
    flagged = [fake.add_message(_spam(i)) for i in (0, 1)]
    for mid in flagged:
        assert await apply_spam_action(api, api.get_parsed(mid), settings) == "label"
    # a message the flow labelled and then someone moved to Spam: still the flow's verdict
    moved = fake.add_message(_spam(2))
    await apply_spam_action(api, api.get_parsed(moved), settings)
    api.modify(moved, ["SPAM"], ["INBOX"])

    out = await asyncio.to_thread(_train)
    assert "learned 7 spam and 7 wanted" in out
    assert "skipped 3 messages labelled 'Stepline/Suspected spam'" in out
    model = BayesModel.load(path)
    assert model is not None and (model.spam_docs, model.ham_docs) == (7, 7)


def test_mail_the_flow_moved_to_spam_itself_is_not_learned(mailbox: tuple[FakeGmail, Path]) -> None:
    """In `move` mode the flow's spam carries no label of ours: the verdicts it recorded before
    moving tell its own guesses (here two wanted mails it got wrong) from the user's spam."""
    fake, path = mailbox
    api = GmailAPI.connect()
    settings = GmailSettings()
    wrong = [fake.add_message(_ham(i)) for i in (0, 1)]

    async def the_flow_moves_them(runtime: Runtime) -> None:
        for mid in wrong:
            mail = api.get_parsed(mid)
            await record_verdict(runtime.state, mail, "spam", "move")
            assert await apply_spam_action(api, mail, settings) == "move"

    run_with_runtime(the_flow_moves_them, load_steps=False)
    assert all("SPAM" in fake.labels_of(mid) for mid in wrong)
    out = _train("--no-balance")
    assert "learned 7 spam and 7 wanted" in out  # not 9 spam: the flow's guesses left out
    assert "skipped 2 messages the flow moved to Spam itself" in out
    model = BayesModel.load(path)
    assert model is not None and (model.spam_docs, model.ham_docs) == (7, 7)


def test_limit_caps_each_label_across_page_boundaries(mailbox: tuple[FakeGmail, Path]) -> None:
    _, path = mailbox
    assert "learned 4 spam and 4 wanted" in _train("--limit", "4", "--reset")
    model = BayesModel.load(path)
    assert model is not None and (model.spam_docs, model.ham_docs) == (4, 4)


def test_limit_must_be_positive(mailbox: tuple[FakeGmail, Path]) -> None:
    result = runner.invoke(app, ["train", "--mailbox", "--limit", "0"])
    assert result.exit_code != 0
    assert not mailbox[1].exists()


def test_not_connected_is_a_clear_error(
    mailbox: tuple[FakeGmail, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GMAIL_TOKEN_FILE", str(tmp_path / "missing-token.json"))
    result = runner.invoke(app, ["train", "--mailbox"])
    assert result.exit_code == 1
    assert "stepline gmail connect" in result.output and "Traceback" not in result.output
    assert not mailbox[1].exists()


def test_mailbox_training_is_balanced_unless_told_otherwise(
    mailbox: tuple[FakeGmail, Path],
) -> None:
    fake = mailbox[0]
    for i in range(3):  # ten wanted mails against seven spam
        fake.add_message(_ham(i), ["INBOX"])
    assert "learned 7 spam and 7 wanted" in _train("--reset")
    assert "learned 7 spam and 10 wanted" in _train("--reset", "--no-balance")
    for i in range(6):  # now thirteen spam against ten wanted
        fake.add_message(_spam(i), ["SPAM"])
    out = _train("--reset")
    assert "learned 10 spam and 10 wanted" in out and "left out 3 messages" in out


def test_folder_training_reports_unreadable_files_and_learns_the_rest(
    tmp_path: Path, mailbox: tuple[FakeGmail, Path]
) -> None:
    spam_dir, ham_dir = tmp_path / "spam", tmp_path / "ham"
    spam_dir.mkdir()
    ham_dir.mkdir()
    (spam_dir / "a.eml").write_bytes(_spam(0))
    (spam_dir / "broken.eml").write_bytes(b"Message-Id: <>\r\nFrom: x@y.example\r\n\r\nwin cash")
    (spam_dir / "empty.eml").write_bytes(b"")
    locked = spam_dir / "locked.eml"
    locked.mkdir()  # a directory named .eml: not a file, never read
    (ham_dir / "b.eml").write_bytes(_ham(0))
    result = runner.invoke(app, ["train", "--spam", str(spam_dir), "--ham", str(ham_dir)])
    assert result.exit_code == 0, result.output
    assert "learned 2 spam and 1 wanted" in result.output  # the malformed one is learned too
    assert f"skipped: {spam_dir / 'empty.eml'} is empty" in result.output
    assert "1 files could not be read" in result.output
