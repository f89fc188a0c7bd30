"""Spam rules, the combined score, and the priority classifier."""

from __future__ import annotations

import pytest

from agents.gmail.classify import assess
from agents.gmail.parse import AuthResults, ParsedEmail, parse_raw
from agents.gmail.priority import classify_priority, find_keywords, is_vip
from agents.gmail.rules import WEIGHTS, find_signs, score_rules
from agents.gmail.settings import GmailSettings, SpamSettings
from agents.gmail.spam import assess_spam
from tests.agents.gmail.conftest import eml


def test_phishing_trips_auth_sender_link_and_wording_rules() -> None:
    result = score_rules(parse_raw(eml("phishing.eml")))
    assert result.score > 0.95
    text = " | ".join(result.reasons)
    for expected in (
        "SPF fail",
        "DMARC fail",
        "Reply-To",
        "display name shows",
        "bare IP",
        "link text shows www.mybank.com",
        "phishing wording",
    ):
        assert expected in text


@pytest.mark.parametrize("name", ["ham_plain.eml", "multipart_latin1.eml", "html_only.eml"])
def test_ordinary_mail_stays_far_below_the_unsure_band(name: str) -> None:
    # The rules are a calibrated probability now: finding nothing gives their base rate, not
    # 0, and an HTML-only receipt carries one weak sign (HTML only) and nothing else.
    result = score_rules(parse_raw(eml(name)))
    assert result.score < 0.1
    assert result.reasons in ([], ["HTML only, no plain-text part"])


def test_reply_subject_without_a_thread_is_suspicious() -> None:
    mail = ParsedEmail(from_address="a@b.com", subject="RE: your invoice", in_reply_to="")
    # detected; how much it counts is the tuned weight's business (see rules.py)
    assert "fake_reply" in find_signs(mail)
    assert "fake_reply" not in find_signs(mail.model_copy(update={"in_reply_to": "<x@y>"}))


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("URGENT: server down", ["urgent"]),
        ("this is urgent!", ["urgent"]),
        ("(Urgent) please", ["urgent"]),
        ("needed urgently", []),
        ("non-urgent matter", ["urgent"]),  # a hyphen is a word boundary
        ("nonurgent matter", []),
        ("ACTION\n  REQUIRED by Friday", ["action required"]),
        ("asap", ["asap"]),
    ],
)
def test_keywords_match_whole_words_case_insensitively(text: str, found: list[str]) -> None:
    assert find_keywords(text, ["urgent", "action required", "asap"]) == found


def test_vip_exact_address_and_domain_wildcard() -> None:
    vips = ["boss@corp.com", "*@bigcustomer.com"]
    assert is_vip("Boss@Corp.com", vips) == "boss@corp.com"
    assert is_vip("anyone@bigcustomer.com", vips) == "*@bigcustomer.com"
    assert is_vip("anyone@sub.bigcustomer.com", vips) is None
    assert is_vip("boss@corp.com.evil", vips) is None


def test_vip_priority_needs_no_failed_authentication() -> None:
    spoofed = parse_raw(eml("vip_spoofed.eml"))
    result = classify_priority(spoofed, [], ["ceo@bigcorp.com"])
    assert result.priority == "normal" and "failed" in result.reasons[0]
    genuine = parse_raw(eml("vip_boss.eml"))
    assert classify_priority(genuine, [], ["*@bigcorp.com"]).priority == "high"


async def test_vip_skips_spam_only_when_authenticated() -> None:
    spam = SpamSettings(threshold=0.5)
    genuine = parse_raw(eml("vip_boss.eml"))
    verdict = await assess_spam(genuine, spam, vip="ceo@bigcorp.com")
    assert verdict.vip_exempt and verdict.score == 0 and not verdict.is_spam
    spoofed = parse_raw(eml("vip_spoofed.eml"))
    verdict = await assess_spam(spoofed, spam, vip="ceo@bigcorp.com")
    assert verdict.is_spam and not verdict.vip_exempt
    unauthenticated = genuine.model_copy(update={"auth": AuthResults()})
    assert not (await assess_spam(unauthenticated, spam, vip="ceo@bigcorp.com")).vip_exempt


async def test_spam_is_never_high_priority_and_threshold_applies() -> None:
    settings = GmailSettings()
    result = await assess(parse_raw(eml("phishing.eml")), settings)  # says URGENT, is spam
    assert result.spam.is_spam and result.priority.priority == "normal"
    urgent = await assess(parse_raw(eml("urgent_outage.eml")), settings)
    assert not urgent.spam.is_spam and urgent.priority.priority == "high"
    lenient = settings.model_copy(update={"spam": SpamSettings(threshold=1.0)})
    assert not (await assess(parse_raw(eml("phishing.eml")), lenient)).spam.is_spam


def test_every_sign_the_rules_can_find_has_a_weight() -> None:
    from agents.gmail.rules_content import FAMILIES

    names = set(WEIGHTS)
    assert {f"words_{f}" for f in FAMILIES} <= names
    assert {f"words_{f}_many" for f in FAMILIES} <= names
    phishing = find_signs(parse_raw(eml("phishing.eml")))
    assert set(phishing) <= names
