"""Each family of rule signs fires on the trick it names, built here as a real mail would
carry it, and not on the ordinary mail beside it."""

from __future__ import annotations

import pytest

from agents.gmail.parse import parse_raw
from agents.gmail.rules import find_signs, score_rules
from tests.agents.gmail.conftest import eml

BASE = (
    "From: Anna Berg <anna@work.example>\n"
    "To: me@example.com\n"
    "Subject: Notes\n"
    "Date: Mon, 02 Sep 2024 10:00:00 +0000\n"
    "Message-ID: <n1@work.example>\n"
    "Received: from mx.work.example (mx.work.example [203.0.113.5]) by mx.example.com;"
    " Mon, 02 Sep 2024 10:00:05 +0000\n"
)


def mail(headers: str = BASE, body: str = "See you at the meeting.", ctype: str = "text/plain"):
    raw = f"{headers}Content-Type: {ctype}; charset=utf-8\n\n{body}\n"
    return parse_raw(raw.replace("\n", "\r\n").encode())


def test_the_plain_baseline_fires_nothing() -> None:
    assert find_signs(mail()) == {}


@pytest.mark.parametrize(
    ("sign", "headers", "body", "ctype"),
    [
        ("date_future", BASE.replace("02 Sep 2024 10:00:00", "02 Sep 2026 10:00:00"), None, None),
        ("date_past", BASE.replace("02 Sep 2024 10:00:00", "02 Jan 2020 10:00:00"), None, None),
        ("msgid_missing", BASE.replace("Message-ID: <n1@work.example>\n", ""), None, None),
        ("msgid_malformed", BASE.replace("<n1@work.example>", "n1-no-brackets"), None, None),
        ("name_shows_other_address",
         BASE.replace("Anna Berg <anna@", "\"billing@bank.example\" <anna@"), None, None),
        ("relay_helo_mismatch",
         BASE.replace("from mx.work.example (mx.work.example",
                      "from mail.bank.example (dsl-7.isp.example"),
         None, None),
        ("relay_no_rdns", BASE.replace("(mx.work.example [", "(unknown ["), None, None),
        ("subject_adv", BASE.replace("Subject: Notes", "Subject: ADV: cheap toner"), None, None),
        ("obfuscated_word", None, "Get V1agra and c1alis here.", None),
        ("spaced_word", None, "Totally F R E E for you.", None),
        ("zero_width", None, "Buy no\u200bw, pay la\u200bter.", None),
        ("link_userinfo", None, "Log in: http://www.bank.example@198.51.100.9/login", None),
        ("link_ip_host", None, "Open http://198.51.100.9/x now", None),
        ("link_punycode", None, "Visit https://xn--pypal-4ve.com/verify", None),
        ("link_text_mismatch", None,
         '<p><a href="https://evil.example/login">https://www.bank.example/login</a></p>',
         "text/html"),
        ("hidden_text", None, '<p>Hi</p><div style="display:none">budget meeting notes</div>',
         "text/html"),
        ("words_removal", None, "To be removed from our list, reply with REMOVE.", None),
        ("words_phishing", None, "Your account will be suspended: verify your account.", None),
        ("words_pharmacy", None, "Cheap pharmacy, no prescription needed.", None),
    ],
)  # fmt: skip
def test_each_trick_is_found(sign: str, headers: str | None, body: str | None, ctype) -> None:
    parsed = mail(headers or BASE, body or "See you at the meeting.", ctype or "text/plain")
    assert sign in find_signs(parsed)


def test_a_newsletter_linking_to_its_click_tracker_is_no_link_trick() -> None:
    body = '<p>Read it on <a href="https://clickthru.mailer.example/r?id=1">News.com</a></p>'
    assert "link_text_mismatch" not in find_signs(mail(body=body, ctype="text/html"))


def test_strong_signs_are_marked_for_the_combination() -> None:
    assert {"dmarc_fail", "name_shows_other_address", "link_text_mismatch"} <= set(
        score_rules(parse_raw(eml("phishing.eml"))).strong
    )


def test_a_forged_reply_does_not_cancel_a_failed_dmarc() -> None:
    """A reply quoting its thread lowers the score, but the sender writes those lines: beside
    a strong sign it counts nothing."""
    phish = (
        "From: Bank <alerts@bank.example>\nTo: me@example.com\n"
        "Date: Mon, 02 Sep 2024 10:00:00 +0000\nMessage-ID: <p1@bank.example>\n"
        "Authentication-Results: mx.example.com; dmarc=fail header.from=bank.example\n"
    )
    plain = mail(phish + "Subject: Your account\n", "Confirm your password today.")
    reply = mail(
        phish + "Subject: Re: Your account\nIn-Reply-To: <x1@bank.example>\n",
        "Confirm your password today.\n> earlier mail\n> quoted here",
    )
    assert "dmarc_fail" in score_rules(reply).fired
    assert "thread_reply" in find_signs(reply) and "thread_reply" not in score_rules(reply).fired
    assert score_rules(reply).score >= score_rules(plain).score
    # without a strong sign, a real reply still counts in the mail's favour
    ordinary = mail(
        BASE.replace("Subject: Notes", "Subject: Re: Notes") + "In-Reply-To: <n0@work.example>\n",
        "Fine by me.\n> shall we meet at ten?\n> Anna",
    )
    assert "thread_reply" in score_rules(ordinary).fired
