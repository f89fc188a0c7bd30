"""Parsing real-shaped mail: multipart, charsets, base64url, HTML, authentication results."""

from __future__ import annotations

import base64

import pytest

from agents.gmail import tokens
from agents.gmail.parse import (
    b64url_decode,
    html_to_text,
    parse_auth_results,
    parse_gmail_full,
    parse_raw,
)
from tests.agents.gmail.conftest import eml


def test_multipart_alternative_prefers_plain_text_in_its_charset() -> None:
    mail = parse_raw(eml("multipart_latin1.eml"))
    assert mail.from_name == "François Dupré" and mail.from_address == "francois@partner.fr"
    assert mail.subject == "Résumé de la réunion"  # RFC 2047 encoded word
    assert "Le résumé de la réunion est prêt. À bientôt !" in mail.text  # latin-1 QP
    assert "\r" not in mail.text
    assert [link.href for link in mail.links] == ["https://docs.partner.fr/r"]  # from the HTML


def test_base64_body_in_koi8r() -> None:
    mail = parse_raw(eml("koi8r_base64.eml"))
    assert mail.subject == "Встреча"
    assert mail.text == "Привет! Встреча в пятницу."


def test_html_only_mail_becomes_readable_text() -> None:
    mail = parse_raw(eml("html_only.eml"))
    assert mail.text.splitlines() == [
        "Your order \u2116 1234 has shipped \u2013 arriving Friday.",
        "Track it at shop.example.",
        "Price: 20 €",  # windows-1252 0x80
    ]
    assert "display:none" not in mail.text and "Order" not in mail.text  # head/style dropped


def test_html_to_text_drops_scripts_and_keeps_anchor_text() -> None:
    text, links = html_to_text(
        "<p>Hi&nbsp;there</p><script>steal()</script>"
        "<a href='https://x.example/a'>go <b>now</b></a>"
    )
    assert text == "Hi\xa0there\ngo now" or text == "Hi there\ngo now"
    assert links[0].href == "https://x.example/a" and links[0].text == "go now"


def test_base64url_without_padding_and_with_url_alphabet() -> None:
    data = bytes(range(250, 256)) + b"??>>"
    encoded = base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert "-" in encoded or "_" in encoded
    assert b64url_decode(encoded) == data
    assert b64url_decode(encoded[:10] + "\n" + encoded[10:]) == data


def test_only_the_topmost_authentication_results_header_counts() -> None:
    mail = parse_raw(eml("phishing.eml"))  # a forged "all pass" header sits below Gmail's
    assert (mail.auth.spf, mail.auth.dkim, mail.auth.dmarc) == ("fail", "fail", "fail")
    assert not mail.auth.passed
    assert parse_raw(eml("ham_plain.eml")).auth.passed


def test_auth_results_parsing_variants() -> None:
    auth = parse_auth_results("mx.google.com; spf=softfail smtp.mailfrom=a@b.c; dkim=none")
    assert auth.spf == "softfail" and auth.dkim == "none" and auth.dmarc is None
    assert auth.failed == ["spf"] and not auth.passed
    assert parse_auth_results(None, "Pass (sender SPF authorized)").spf == "pass"
    assert parse_auth_results("x; spf=pass; dkim=pass").passed  # no DMARC: SPF and DKIM
    assert not parse_auth_results("x; spf=pass").passed


LIST_MAIL = (
    b"From: News <news@list.example>\nTo: me@home.example\nSubject: Issue 12\n"
    b"X-Mailer: Bulk 2.1\nList-Id: <news.list.example>\nPrecedence: bulk\n"
    b"X-MSMail-Priority: Normal\nX-Mailer: again\n\nThis week's news.\n"
)


def test_the_header_names_a_mail_has_are_kept_lowercased_without_their_values() -> None:
    names = ["from", "list-id", "precedence", "subject", "to", "x-mailer", "x-msmail-priority"]
    assert parse_raw(LIST_MAIL).header_names == names
    # the same from Gmail's JSON; an entry with no name is no header
    headers = [{"name": "From", "value": "a@b.example"}, {"value": "x"}, {"name": "List-Id"}]
    full = parse_gmail_full({"payload": {"mimeType": "text/plain", "headers": headers}})
    assert full.header_names == ["from", "list-id"]
    assert "header_names" not in parse_raw(LIST_MAIL).metadata()  # not kept in state


def test_header_name_tokens_when_their_family_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    mail = parse_raw(LIST_MAIL)
    assert not [t for t in tokens.tokens(mail) if t.startswith("hdr")]  # off in the flow
    monkeypatch.setattr(tokens, "GROUPS", {"hdr-names", "hdr-count"})
    found = [t for t in tokens.tokens(mail) if t.startswith("hdr")]
    assert "hdr:list-id" in found and "hdr:x-msmail-priority" in found
    assert "hdrs:5" in found and not [t for t in found if "bulk" in t or "news" in t]
    monkeypatch.setattr(tokens, "GROUPS", {"hdr-sent"})
    sent = {t for t in tokens.tokens(mail) if t.startswith("hdr")}
    assert "hdr:x-mailer" in sent and "hdr:from" not in sent
