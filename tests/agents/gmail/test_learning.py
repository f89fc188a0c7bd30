"""Learning from the user's label changes: Gmail's history records of `labelsAdded` and
`labelsRemoved`, read by the real flow from the loopback Gmail, teach the model once; the
flow's own moves teach nothing; `stepline gmail stats` counts the lessons."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.gmail.api import GmailAPI, LabelChange
from agents.gmail.bayes import BayesModel
from agents.gmail.cli import app
from agents.gmail.learning import LEARNED_TTL, decide, gmails_own_filter
from agents.gmail.message import ParsedEmail
from tests.agents.gmail.conftest import eml
from tests.agents.gmail.world import World
from tests.fakes.gmail_server import FakeGmail


def test_history_reports_label_changes_in_gmails_format(
    api: GmailAPI, gmail_env: tuple[FakeGmail, str, Path]
) -> None:
    fake = gmail_env[0]
    mid = fake.add_message(eml("phishing.eml"), ["SPAM"])
    start = api.profile()["historyId"]
    fake.user_relabels(mid, add=["INBOX"], remove=["SPAM"])  # "Not spam"
    fake.user_relabels(mid, add=["STARRED"], remove=[])
    listed = api._run(  # the raw answer, as google-api-python-client receives it
        api._users.history().list(userId="me", startHistoryId=start, historyTypes=["labelRemoved"]),
        "history.list",
    )
    record = listed["history"][0]
    assert set(record) == {"id", "messages", "labelsRemoved"}  # only the asked change type
    assert record["messages"] == [{"id": mid, "threadId": "t" + mid[1:]}]  # as documented
    assert record["labelsRemoved"] == [
        {"message": {"id": mid, "threadId": "t" + mid[1:], "labelIds": ["INBOX"]},
         "labelIds": ["SPAM"]}
    ]  # fmt: skip
    page = api.history_since(start)
    assert page.added == []  # a label change is not new mail
    assert [(c.message_id, c.added, c.removed) for c in page.label_changes] == [
        (mid, ("INBOX",), ("SPAM",)),
        (mid, ("STARRED",), ()),
    ]


def change(added: tuple[str, ...], removed: tuple[str, ...], labels: tuple[str, ...]):
    return LabelChange("7", "m1", added, removed, labels)


MOVED = {"verdict": "spam", "action": "move"}
LABELLED = {"verdict": "spam", "action": "label"}
LET_THROUGH = {"verdict": "ham", "action": "move"}
UNSURE = {"verdict": "unsure", "action": "move"}
REPORTED = change(("SPAM",), ("INBOX",), ("SPAM",))


@pytest.mark.parametrize(
    ("what", "flow", "verdict", "correction"),
    [
        (REPORTED, LET_THROUGH, "spam", True),  # the user reports what the flow let in
        (REPORTED, MOVED, None, False),  # the flow's own move
        (REPORTED, LABELLED, "spam", False),  # label mode: the move to Spam is the user's
        (change(("SPAM",), (), ("SPAM",)), None, "spam", False),
        (change(("INBOX",), ("SPAM",), ("INBOX",)), MOVED, "ham", True),  # "Not spam"
        (change(("TRASH",), ("SPAM",), ("TRASH",)), MOVED, None, False),  # old spam trashed
        (change((), ("Label_9",), ("INBOX",)), UNSURE, "ham", False),  # our label removed
        (change((), ("Label_3",), ("INBOX",)), UNSURE, None, False),  # someone else's label
        (change(("Label_9",), (), ("INBOX", "Label_9")), None, None, False),  # we labelled it
    ],
)
def test_which_label_changes_are_verdicts(what, flow, verdict, correction) -> None:
    lesson = decide(what, flow, own_labels={"Label_9"})
    assert (lesson.verdict, lesson.correction) == (verdict, correction)


def model_of(world: World) -> BayesModel:
    path = Path(world.base.split("model_path: ")[1].split("\n")[0])  # type: ignore[attr-defined]
    return BayesModel.load(path) or BayesModel()


async def test_the_user_corrections_are_learned_once_and_the_flows_own_moves_never(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    g = world.gmail
    phish = g.add_message(eml("phishing.eml"))
    ham = g.add_message(eml("ham_plain.eml"))
    await world.poll()
    assert "SPAM" in g.labels_of(phish)  # the flow moved it
    await world.poll()  # ... and that move, now in the history, is not learned as the user's
    assert model_of(world).learned == {}

    g.user_relabels(phish, add=["INBOX"], remove=["SPAM"])  # the user: "Not spam"
    g.user_relabels(ham, add=[], remove=["UNREAD"])  # the user reads it ...
    g.user_relabels(ham, add=["SPAM"], remove=["INBOX"])  # ... and reports it as spam
    await world.poll()
    model = model_of(world)
    assert model.learned == {phish: "ham", ham: "spam"}
    assert (model.spam_docs, model.ham_docs) == (1, 1)

    await world.h.state.set("gmail.mailbox", "history_id", 1000)  # the same history again
    await world.poll()
    assert (model_of(world).spam_docs, model_of(world).ham_docs) == (1, 1)  # learned once

    g.user_relabels(phish, add=["SPAM"], remove=["INBOX"])  # the user changes their mind
    await world.poll()
    model = model_of(world)
    assert model.learned[phish] == "spam" and (model.spam_docs, model.ham_docs) == (2, 0)

    lessons = await world.h.state.list("gmail.learned")
    assert lessons[ham]["as"] == "spam" and lessons[ham]["correction"] is True
    kept = await world.h.state.ttl("gmail.learned", ham)
    assert kept is not None and 170 * 86400 < kept <= LEARNED_TTL  # not kept forever
    monkeypatch.setenv("STEPLINE_DB", str(tmp_path / "stepline.db"))
    runner = CliRunner()
    result = await asyncio.to_thread(runner.invoke, app, ["stats", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["learned"] == {"total": 2, "spam": 2, "ham": 0, "corrections": 1}
    assert stats["today"]["spam"] == 1 and stats["model"]["spam_docs"] == 2
    text = (await asyncio.to_thread(runner.invoke, app, ["stats"])).output
    assert "learned from your label changes: 2 messages" in text


async def test_an_unsure_mail_is_labelled_and_removing_the_label_teaches_wanted(
    world: World,
) -> None:
    world.configure(world.base + "  threshold: 1.0\n  unsure: 0.5\n")  # type: ignore[attr-defined]
    g = world.gmail
    mid = g.add_message(eml("phishing.eml"))
    await world.poll()
    unsure = g.label_id("Stepline/Unsure")
    assert unsure is not None and g.labels_of(mid) == ["INBOX", "UNREAD", unsure]
    checked = world.h.emitted("gmail.email.checked")
    assert checked[0].data["unsure"] is True  # not spam: it goes on to the priority step
    g.user_relabels(mid, add=[], remove=[unsure])
    await world.poll()
    assert model_of(world).learned == {mid: "ham"}


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("labels", "minutes_ago", "gmails"),
    [
        (("SPAM", "UNREAD"), 2, True),  # unread, minutes after arrival: Gmail's second look
        (("SPAM",), 2, False),  # the user opened it, then reported it
        (("SPAM", "UNREAD"), 60 * 24, False),  # a day later: the user clearing old mail
        (("SPAM", "UNREAD"), None, False),  # arrival unknown: taken as the user's
    ],
)
def test_gmails_own_later_spam_move_is_told_from_the_users_where_it_can_be(
    labels, minutes_ago, gmails
) -> None:
    arrived = None if minutes_ago is None else int((NOW - minutes_ago * 60) * 1000)
    mail = ParsedEmail(internal_date_ms=arrived)
    why = gmails_own_filter(change(("SPAM",), ("INBOX",), labels), mail, NOW)
    assert (why is not None) == gmails
    assert gmails_own_filter(change((), ("SPAM",), ("INBOX", "UNREAD")), mail, NOW) is None


async def test_gmail_moving_a_fresh_unread_mail_to_spam_is_not_learned_as_the_users_verdict(
    world: World,
) -> None:
    g = world.gmail
    fresh = g.add_message(eml("ham_plain.eml"))
    older = g.add_message(eml("ham_plain.eml"), age_days=1)
    g.add_message(eml("phishing.eml"), ["SPAM", "UNREAD"])  # Gmail filed it on arrival
    await world.poll()
    assert "INBOX" in g.labels_of(fresh) and "INBOX" in g.labels_of(older)  # let through
    g.user_relabels(fresh, add=["SPAM"], remove=["INBOX"])  # Gmail's filter, a minute later
    g.user_relabels(older, add=["SPAM"], remove=["INBOX"])  # the user, clearing old mail
    await world.poll()
    assert model_of(world).learned == {older: "spam"}
    lessons = await world.h.state.list("gmail.learned")
    assert set(lessons) == {older} and lessons[older]["correction"] is True
