"""Parsing real-shaped mail: multipart, charsets, base64url, HTML, authentication results."""

from __future__ import annotations

import base64

from agents.gmail.parse import b64url_decode, html_to_text, parse_auth_results, parse_raw
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
