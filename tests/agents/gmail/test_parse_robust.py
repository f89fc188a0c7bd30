"""The parser never raises: malformed headers, lying charsets, broken MIME, plain junk.

Each input is a shape real spam has (the stdlib's modern header parser raises `IndexError`
on `Message-Id: <>`); the mail must still come out readable, with the problem named.
"""

from __future__ import annotations

import pytest

from agents.gmail.parse import parse_raw


def mail(headers: str, body: bytes = b"Hello there, cheap offer inside.\n") -> bytes:
    return headers.replace("\n", "\r\n").encode("utf-8", "surrogateescape") + b"\r\n" + body


def test_empty_message_id_is_read_raw_and_the_rest_of_the_mail_survives() -> None:
    parsed = parse_raw(
        mail("From: Bank <bank@inherit.example>\nSubject: bank inheritance\nMessage-Id: <>\n")
    )
    assert parsed.message_id == "<>"
    assert parsed.subject == "bank inheritance"
    assert parsed.from_address == "bank@inherit.example"
    assert "cheap offer" in parsed.text
    assert any("Message-ID header unreadable" in p for p in parsed.problems)


@pytest.mark.parametrize(
    "headers",
    [
        "From: <<<@@@>>>\nTo: ,,,;;;\nSubject: =?utf-8?b?!!!notbase64?=\n",
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=\nSubject: x\n",
        "From: a@b.example\nContent-Type: text/plain; charset=no-such-charset\n",
        "From: a@b.example\nDate: Mon, 99 Foo 20022 99:99:99 +9999\nMessage-ID: <a@b@c>>\n",
        'From: a@b.example\nIn-Reply-To: <\nReferences: >>>\nReply-To: "unterminated\n',
        "From: a@b.example\nContent-Transfer-Encoding: base64\nSubject: x\n",
        "\xff\xfe: \x00\nFrom: caf\udce9 <x@y.example>\n",
    ],
)
def test_malformed_headers_never_raise(headers: str) -> None:
    parsed = parse_raw(mail(headers, b"=?= !! \xff\xfe body text\n"))
    assert isinstance(parsed.text, str)
    parsed.model_dump_json()  # storable in an event: no lone surrogates left


def test_a_lying_charset_is_decoded_leniently_and_flagged() -> None:
    body = "Prix: 20 \u20ac, d\u00e9j\u00e0 vu".encode()
    parsed = parse_raw(
        mail("From: a@b.example\nContent-Type: text/plain; charset=us-ascii\n", body)
    )
    assert "20 \u20ac" in parsed.text
    assert parsed.structure.charset_mismatch
    # read in a charset it does not declare, the text is a guess: named as not fully read
    assert parsed.problems == ["text not in its declared charset 'us-ascii'; part read as UTF-8"]


def test_bytes_no_charset_can_read_are_counted_as_unreadable() -> None:
    """0x81 and 0x8d are neither UTF-8 nor cp1252: the last resort replaces them."""
    head = "From: a@b.example\nContent-Type: text/plain; charset=us-ascii\n"
    parsed = parse_raw(mail(head, b"Cost \x81\x8d 5\n"))
    assert parsed.text == "Cost \ufffd\ufffd 5"
    assert parsed.problems == [
        "text not in its declared charset 'us-ascii'; part read as cp1252, 2 bytes unreadable"
    ]


def test_a_part_in_its_declared_charset_has_no_problem() -> None:
    body = "Prix: 20 \u20ac".encode("iso-8859-15")
    parsed = parse_raw(
        mail("From: a@b.example\nContent-Type: text/plain; charset=iso-8859-15\n", body)
    )
    assert parsed.text == "Prix: 20 \u20ac"
    assert parsed.problems == [] and not parsed.structure.charset_mismatch


def test_unknown_charset_is_named_in_the_problems() -> None:
    parsed = parse_raw(mail("From: a@b.example\nContent-Type: text/plain; charset=default\n"))
    assert "cheap offer" in parsed.text
    assert parsed.problems == ["unknown charset 'default'; part read as UTF-8"]


def test_plain_ascii_sent_as_base64_is_flagged() -> None:
    import base64

    body = base64.encodebytes(b"Buy now, limited offer, act today.")
    parsed = parse_raw(
        mail(
            "From: a@b.example\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n",
            body,
        )
    )
    assert parsed.text == "Buy now, limited offer, act today."
    assert parsed.structure.base64_text


def test_bytes_that_are_not_a_mail_at_all_still_give_a_mail() -> None:
    for raw in (b"", b"\x00\x01\x02" * 100, b"no headers here\njust text", b":\n:\n\n:"):
        parsed = parse_raw(raw)
        assert isinstance(parsed.text, str) and isinstance(parsed.problems, list)


def test_hidden_and_tiny_html_text_and_images_are_counted() -> None:
    html = (
        b"<html><body><p>Great offer</p>"
        b"<div style='display:none'>meeting notes budget review</div>"
        b"<font size=1>tiny words for filters</font>"
        b"<img src='http://x.example/a.gif'><img src='http://x.example/b.gif'>"
        b"</body></html>"
    )
    parsed = parse_raw(mail("From: a@b.example\nContent-Type: text/html\n", html))
    assert parsed.text.splitlines()[0] == "Great offer"
    assert "meeting notes" not in parsed.text  # hidden text is not what the reader sees
    assert parsed.structure.hidden_chars == len("meeting notes budget review")
    assert parsed.structure.tiny_font_chars == len("tiny words for filters")
    assert parsed.structure.images == 2 and parsed.structure.html_only


def test_envelope_headers_are_read_and_junk_in_them_never_raises() -> None:
    parsed = parse_raw(
        mail(
            "From: Shop <news@shop.example>\nReturn-Path: <bounce-77@mailer.example>\n"
            "Precedence: Bulk\nX-Priority: 1 (Highest)\nContent-Transfer-Encoding: 8bit\n"
        )
    )
    assert parsed.return_path == "bounce-77@mailer.example"
    assert (parsed.precedence, parsed.priority) == ("bulk", "1")
    assert parsed.structure.encodings == ["8bit"]
    assert "return_path" not in parsed.metadata()  # state keeps what the flow shows, no more
    junk = parse_raw(mail("From: a@b.example\nReturn-Path: <<@>\nX-Priority:\nPrecedence: ;\n"))
    assert junk.priority == "" and isinstance(junk.return_path, str)


def test_html_markup_is_counted_for_the_model() -> None:
    html = (
        b"<html><body><center><table><tr><td bgcolor='#ff0000'>"
        b"<font color=red size=5>FREE</font> V<!-- x -->iagra"
        b"<span style='color: blue'>now</span></td></tr></table>"
        b"<table><tr><td><font>more</font></td></tr></table></center></body></html>"
    )
    s = parse_raw(mail("From: a@b.example\nContent-Type: text/html\n", html)).structure
    assert (s.tables, s.font_tags, s.comments, s.center_tags) == (2, 2, 1, 1)
    assert s.colored_tags == 3  # bgcolor, color=, style color
    assert s.html_tags >= 12


def test_a_multipart_whose_boundary_is_missing_is_read_as_text() -> None:
    parsed = parse_raw(
        mail(
            'From: a@b.example\nContent-Type: multipart/alternative; boundary="=Part 07"\n',
            b"--= Part 07\r\nContent-Type: text/plain\r\n\r\nNEED A WEBSITE? Call now\r\n",
        )
    )
    assert "NEED A WEBSITE? Call now" in parsed.text
    assert any("boundary not found" in p for p in parsed.problems)
