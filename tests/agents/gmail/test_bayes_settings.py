"""The naive Bayes model, and config/gmail.yaml validation with hot reload."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from agents.gmail.bayes import BayesModel
from agents.gmail.parse import ParsedEmail
from agents.gmail.settings import SettingsFile, current_settings

SPAM = [
    "Claim your free prize now, winner! Cheap pills and casino bonus",
    "You won the lottery, send your bank details to claim the prize",
    "Casino bonus: free spins, claim now, winner takes all",
    "Cheap pills without prescription, free shipping, claim offer",
]
HAM = [
    "Meeting notes from the planning session and the budget review",
    "Can we move the budget review to Thursday afternoon?",
    "Draft of the quarterly report attached, comments welcome",
    "Planning session moved, notes and the report to follow",
]


def mail(text: str, sender: str = "x@example.com") -> ParsedEmail:
    return ParsedEmail(from_address=sender, subject=text.split(",")[0], text=text)


def trained() -> BayesModel:
    model = BayesModel()
    model.learn_many((mail(t, "promo@spam.biz") for t in SPAM), is_spam=True)
    model.learn_many((mail(t, "colleague@example.com") for t in HAM), is_spam=False)
    return model


def test_bayes_separates_spam_from_ham_and_survives_a_round_trip(tmp_path: Path) -> None:
    model = trained()
    spam = mail("Free casino prize for the winner, claim now", "promo@spam.biz")
    ham = mail("Notes on the budget report for the planning meeting", "colleague@example.com")
    assert model.spam_probability(spam) > 0.9
    assert model.spam_probability(ham) < 0.1
    path = tmp_path / "deep" / "model.json"
    model.save(path)
    loaded = BayesModel.load(path)
    assert loaded is not None
    assert loaded.spam_probability(spam) == pytest.approx(model.spam_probability(spam))


def test_untrained_model_is_neutral_and_damaged_file_is_a_clear_error(tmp_path: Path) -> None:
    assert BayesModel().spam_probability(mail("anything")) == 0.5
    assert BayesModel.load(tmp_path / "missing.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="stepline gmail train"):
        BayesModel.load(bad)


def write(path: Path, text: str) -> None:
    path.write_text(text)
    # a distinct mtime per write: coarse filesystem clocks must not hide an edit
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    settings = SettingsFile(tmp_path / "gmail.yaml").get()
    assert settings.mode == "polling" and settings.spam.threshold == 0.8
    assert settings.cleanup.schedule == "0 23 * * *" and settings.cleanup.retention_days == 7


def test_edit_applies_and_invalid_edit_keeps_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gmail.yaml"
    write(path, "priority:\n  vip_senders: [boss@corp.com]\n")
    loader = SettingsFile(path)
    assert loader.get().priority.vip_senders == ["boss@corp.com"]
    write(path, "priority:\n  vip_senders: ['boss@corp.com', '*@client.io']\n")
    assert loader.get().priority.vip_senders == ["boss@corp.com", "*@client.io"]
    with caplog.at_level(logging.ERROR, logger="stepline.gmail.settings"):
        write(path, "spam:\n  threshold: 1.5\n  action: shred\n")
        kept = loader.get()
    assert kept.priority.vip_senders == ["boss@corp.com", "*@client.io"]
    assert kept.spam.threshold == 0.8
    assert loader.error is not None
    assert "spam.threshold" in loader.error and "spam.action" in loader.error
    assert "spam.threshold" in caplog.text and "less than or equal to 1" in caplog.text


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("cleanup:\n  schedule: every day\n", "cleanup.schedule"),
        ("priority:\n  vip_senders: [not-an-address]\n", "priority.vip_senders"),
        ("mode: carrier-pigeon\n", "mode"),
        ("spam:\n  treshold: 0.5\n", "spam.treshold"),  # a typo is an error, not ignored
        ("push:\n  topic: my-topic\n", "push.topic"),
        ("- a list\n", "mapping"),
        ("mode: [unclosed\n", "YAML"),
    ],
)
def test_invalid_settings_name_the_key(tmp_path: Path, yaml_text: str, key: str) -> None:
    path = tmp_path / "gmail.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        SettingsFile(path).load_strict()


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        ("0 25 * * *", "hour 25 is out of range 0-23"),
        ("61 9 * * *", "minute 61 is out of range 0-59"),
        ("0 9 * *", "has 4 fields; a cron expression has 5"),
    ],
)
def test_cleanup_schedule_error_names_the_field_like_a_cron_step(
    tmp_path: Path, schedule: str, reason: str
) -> None:
    path = tmp_path / "gmail.yaml"
    path.write_text(f"cleanup:\n  schedule: '{schedule}'\n")
    with pytest.raises(ValueError) as caught:
        SettingsFile(path).load_strict()
    assert "cleanup.schedule" in str(caught.value) and reason in str(caught.value)
    assert "5-field" not in str(caught.value)


def test_current_settings_reads_the_config_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STEPLINE_CONFIG_DIR", str(tmp_path))
    write(tmp_path / "gmail.yaml", "mode: push\npush:\n  topic: projects/p/topics/t\n")
    assert current_settings().mode == "push"


def test_only_the_telling_tokens_count_and_each_once() -> None:
    """Every-token naive Bayes adds a vote per token; scoring on the strongest clues ignores
    words that say nothing (never seen, or seen as often in both), and a word repeated fifty
    times counts once."""
    model = trained()
    spam = mail("Claim your free casino prize now, winner", "promo@spam.biz")
    base = model.spam_probability(spam)
    assert base > 0.9
    filler = " ".join(f"word{i}x" for i in range(400))  # 400 tokens the model never saw
    padded = spam.model_copy(update={"text": f"{spam.text} {filler}"})
    assert model.spam_probability(padded) == pytest.approx(base)
    shouted = spam.model_copy(update={"text": " ".join([spam.text] * 50)})
    assert model.spam_probability(shouted) == pytest.approx(base)
    mixed = spam.model_copy(update={"text": f"{spam.text} {' '.join(HAM)}"})
    assert len(model.clues(mixed)) <= 150
    assert 0.2 < model.spam_probability(mixed) < base  # mixed evidence: not sure either way


def test_a_message_is_learned_once_and_a_changed_verdict_replaces_the_first() -> None:
    model = trained()
    before = (model.spam_docs, model.ham_docs)
    message = mail("Budget planning notes, please review", "colleague@example.com")
    assert model.learn_message("m1", message, is_spam=False) == "learned"
    assert model.learn_message("m1", message, is_spam=False) == "known"
    assert (model.spam_docs, model.ham_docs) == (before[0], before[1] + 1)
    assert model.learn_message("m1", message, is_spam=True) == "relearned"
    assert (model.spam_docs, model.ham_docs) == (before[0] + 1, before[1])
    assert model.learned == {"m1": "spam"}


def test_a_link_teaches_its_host_and_the_words_of_its_path() -> None:
    """A spammer's tracking script (`remove.cgi?id=...`) on a host never seen before is still
    known by its path; an id too long to recur is not a token."""
    from agents.gmail.message import Link
    from agents.gmail.tokens import tokens

    href = "http://203.0.113.9/cgi-bin/remove.cgi?list=promo&id=a81f0c9e2b7d4e6fa0b1c2d3"
    found = tokens(ParsedEmail(text="hello", links=[Link(href=href)]))
    assert {"url:203.0.113.9", "urlpath:remove", "urlpath:cgi", "urlpath:promo"} <= set(found)
    assert not [t for t in found if "a81f0c9e" in t]
    model = BayesModel()
    for i in range(4):
        other = f"http://spam{i}.example/cgi-bin/remove.cgi?list=promo"
        model.learn(ParsedEmail(text="hello friend", links=[Link(href=other)]), is_spam=True)
        model.learn(ParsedEmail(text="hello friend", links=[]), is_spam=False)
    assert model.spam_probability(ParsedEmail(text="hello friend", links=[Link(href=href)])) > 0.9


def test_secrets_a_mail_carries_never_reach_the_model_file(tmp_path: Path) -> None:
    from agents.gmail.message import Link

    secrets = ["hunter22x", "483920", "Qx7rT2mw", "sk-proj-4fGh8JkL2mNp6QrS9tUv1wXy3zAb5cDe"]
    reset = "https://accounts.example.com/reset/Qx7rT2mw?session=483920"
    model = trained()
    model.learn(
        ParsedEmail(
            subject="Your login code is 483920",
            text=f"Your password: hunter22x\nverification code is 483920\nkey {secrets[3]}\n",
            links=[Link(href=reset)],
        ),
        is_spam=False,
    )
    path = tmp_path / "model.json"
    model.save(path)
    stored = path.read_text().lower()
    assert [s for s in secrets if s.lower() in stored] == []
    assert '"urlpath:reset"' in stored  # the link still teaches its shape


def test_the_recipients_domains_and_the_mailers_version_are_learned() -> None:
    """Spam guesses addresses at domains you do not use and is written by bulk mailers whose
    version gives them away: a model that saw them knows a new mail by them alone."""
    from agents.gmail.tokens import tokens

    found = tokens(
        ParsedEmail(
            text="hello",
            to=["Me@Example.com", "list@lists.example.org"],
            mailer="Mach5 Mailer-2.50 (Win32)",
        )
    )
    assert {"to:*@example.com", "to:*@lists.example.org", "to:few"} <= set(found)
    assert {"mailer:mach5", "mailer:mailer", "mailer:2.50", "mailer:win32"} <= set(found)
    many = ParsedEmail(text="hello", to=[f"u{i}@d{i}.example" for i in range(40)])
    assert len([t for t in tokens(many) if t.startswith("to:*@")]) == 5  # bounded
    model = BayesModel()
    for i in range(4):
        guessed = [f"sales{i}@guessed.example"]
        model.learn(ParsedEmail(text="hello friend", to=guessed), is_spam=True)
        model.learn(ParsedEmail(text="hello friend", to=["me@home.example"]), is_spam=False)
    assert model.spam_probability(ParsedEmail(text="hello friend", to=["x@guessed.example"])) > 0.9
    assert model.spam_probability(ParsedEmail(text="hello friend", to=["me@home.example"])) < 0.1


def test_the_optional_token_families_are_off_in_the_flow_and_read_the_parsed_facts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agents.gmail import tokens as tokens_module
    from agents.gmail.message import Structure

    mail = ParsedEmail(
        text="hello",
        from_address="news@shop.example",
        return_path="bounce@mailer.example",
        precedence="bulk",
        priority="1",
        structure=Structure(html_parts=1, font_tags=9, tables=1, comments=2, images=4),
    )
    assert not any(
        t.startswith(("rpath:", "priority:", "html:")) for t in tokens_module.tokens(mail)
    )
    monkeypatch.setattr(tokens_module, "GROUPS", set(tokens_module.OPTIONAL))
    found = set(tokens_module.tokens(mail))
    assert {"rpath:other", "precedence:bulk", "priority:1", "html:fonts:many"} <= found
    assert {"html:tables:1", "html:comments", "html:img-text:none"} <= found


def test_equal_count_clues_counted_once_catch_spam_sent_through_a_mailing_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A list puts the same relay (host, /16, /24), the same footer link (host, domain, path
    words) and the same headers on every mail it forwards: in wanted list mail those are
    a dozen tokens with the very same counts. With `MIN_SHARED` (20, see bayes.py) they
    count once and no longer outvote the words of spam posted to the list; off, they do."""
    from agents.gmail import bayes
    from agents.gmail.message import Link

    relay = "from lists.devel.example (lists.devel.example [198.51.100.7]) by mx.example.net"
    footer = Link(href="https://lists.devel.example/mailman/listinfo/devel-talk")

    def via_list(text: str) -> ParsedEmail:
        return ParsedEmail(
            from_address="someone@members.example", to=["devel-talk@lists.devel.example"],
            subject=text.split(",")[0], text=text, received=[relay], links=[footer],
            list_unsubscribe=True, mailer="ListServer 2.1",
        )  # fmt: skip

    model = BayesModel()
    for i in range(30):
        model.learn(via_list(f"{HAM[i % 4]}, patch {i} reviewed, build log attached"), False)
        model.learn(mail(f"{SPAM[i % 4]}, act {i}", f"promo{i}@spam{i}.biz"), True)
    posted = via_list("Claim your free casino prize now, winner, cheap pills")
    wanted = via_list("Budget review notes for the planning session, patch reviewed")
    assert bayes.MIN_SHARED == 20
    assert model.spam_probability(posted) > 0.9
    monkeypatch.setattr(bayes, "MIN_SHARED", None)
    assert model.spam_probability(posted) < 0.6  # the list's tokens hold it down
    monkeypatch.setattr(bayes, "MIN_SHARED", 20)
    assert model.spam_probability(wanted) < 0.1


def test_the_date_header_against_the_arrival_is_a_token() -> None:
    from agents.gmail.tokens import tokens

    arrived = "from mx.example.net by mx.google.com; Tue, 01 Dec 2026 10:00:00 +0000"

    def sent(date: str) -> list[str]:
        found = tokens(ParsedEmail(date=date, received=[arrived], text="hello there"))
        return [t for t in found if t.startswith("date:")]

    assert sent("Tue, 01 Dec 2026 09:58:00 +0000") == ["date:minutes"]
    assert sent("Fri, 04 Dec 2026 10:00:00 +0000") == ["date:ahead"]  # stamped in the future
    assert sent("Mon, 02 Nov 2026 10:00:00 +0000") == ["date:old"]
    assert sent("") == ["date:none"]
