"""Signs read from how a mail is built (pictures, fonts, links, encodings, dates, relays), each
on a mail built here byte for byte as a sender's software writes it, beside the same mail
built cleanly: the sign fires on the trick and not on its clean twin."""

from __future__ import annotations

import asyncio
import base64

import pytest

from agents.gmail.parse import parse_raw
from agents.gmail.rules import find_signs
from agents.gmail.settings import SpamSettings
from agents.gmail.spam import assess_spam

HEAD = (
    "Return-Path: <news@shop.example>\n"
    "Received: from mx.shop.example (mx.shop.example [203.0.113.5]) by mx.example.com"
    " (Postfix) with ESMTP id 4F1A2; Mon, 02 Sep 2024 10:00:05 +0000\n"
    "Received: from app3.shop.example (app3.shop.example [10.1.0.3]) by mx.shop.example"
    " (Postfix) with ESMTP id 77B01; Mon, 02 Sep 2024 10:00:02 +0000\n"
    "From: Shop News <news@shop.example>\n"
    "To: me@example.com\n"
    "Subject: Autumn catalogue\n"
    "Date: Mon, 02 Sep 2024 10:00:00 +0000\n"
    "Message-ID: <cat-2024-09@shop.example>\n"
    "MIME-Version: 1.0\n"
)
PROSE = (
    "Our autumn catalogue is out. This season we have new walking boots, rain jackets in six"
    " colours and a repair service for anything you bought from us in the last ten years."
    " Opening hours over the holidays are on the shop page, and the Tuesday evening talks"
    " start again in October with a session on caring for leather."
)


def build(head: str, body: str) -> bytes:
    return (head + body).replace("\n", "\r\n").encode("utf-8")


def signs(raw: bytes) -> dict[str, str]:
    return find_signs(parse_raw(raw))


def related(html: str) -> bytes:
    """HTML with its picture attached as a multipart/related part, as mailers send it."""
    gif = base64.b64encode(b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!").decode()
    return build(
        HEAD,
        'Content-Type: multipart/related; boundary="REL"\n\n'
        "--REL\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n"
        f"{html}\n"
        "--REL\nContent-Type: image/gif\nContent-Transfer-Encoding: base64\n"
        f"Content-ID: <pic1@shop.example>\n\n{gif}\n--REL--\n",
    )


def html_mail(html: str) -> bytes:
    return build(HEAD, f"Content-Type: text/html; charset=utf-8\n\n{html}\n")


def plain_mail(text: str, *, charset: str = "utf-8", cte: str = "7bit", head: str = HEAD) -> bytes:
    head = f"{head}Content-Type: text/plain; charset={charset}\nContent-Transfer-Encoding: {cte}\n"
    return (head.replace("\n", "\r\n")).encode() + b"\r\n" + text.encode("utf-8") + b"\r\n"


def test_the_clean_catalogue_fires_no_sign_of_its_build() -> None:
    """The twins below start from this mail: any sign it fired would make them meaningless."""
    assert signs(plain_mail(PROSE)) == {}


def test_an_image_only_mail_is_found_and_a_picture_with_its_text_is_not() -> None:
    trick = related('<html><body><a href="https://shop.example/sale">'
                    '<img src="cid:pic1@shop.example"></a></body></html>')  # fmt: skip
    clean = related(f'<html><body><p>{PROSE}</p><img src="cid:pic1@shop.example"></body></html>')
    assert "image_mostly" in signs(trick)
    assert not {"image_mostly", "many_images"} & set(signs(clean))


def test_text_in_a_tiny_font_is_found_and_the_same_text_at_a_readable_size_is_not() -> None:
    filler = "weather report garden hose bicycle recipe for soup and bread"
    trick = html_mail(f'<p>{PROSE}</p><p><font size="1" color="#fefefe">{filler}</font></p>'
                      f'<p style="font-size:2px">{filler}</p>')  # fmt: skip
    clean = html_mail(f'<p>{PROSE}</p><p><font size="3">{filler}</font></p>'
                      f'<p style="font-size:12px">{filler}</p>')  # fmt: skip
    assert "tiny_font" in signs(trick)
    assert "tiny_font" not in signs(clean)


def test_links_to_many_domains_are_found_and_many_links_to_one_site_are_not() -> None:
    hosts = ["cheap-meds.example", "win-now.example", "loans4u.example", "dating.example",
             "casino-royal.example", "free-ringtones.example"]  # fmt: skip
    trick = plain_mail(PROSE + "\n\n" + "\n".join(f"http://www.{h}/go?id=7" for h in hosts))
    clean = plain_mail(PROSE + "\n\n" + "\n".join(f"https://shop.example/{p}" for p in range(1, 7)))
    assert signs(trick)["link_many_domains"] == "links to 6 different domains"
    assert "link_many_domains" not in signs(clean)


def test_plain_ascii_sent_base64_is_found_and_base64_for_accented_text_is_not() -> None:
    ascii_b64 = base64.encodebytes(PROSE.encode()).decode()
    accented = base64.encodebytes(f"{PROSE} Caf\u00e9 cr\u00e8me.".encode()).decode()
    assert "base64_plain_text" in signs(plain_mail(ascii_b64, cte="base64"))
    # non-ASCII text is what base64 is for: no dodge
    assert "base64_plain_text" not in signs(plain_mail(accented, cte="base64"))
    assert "base64_plain_text" not in signs(plain_mail(PROSE))


def test_a_charset_that_lies_is_found_and_named_as_not_fully_read() -> None:
    text = f"{PROSE} Preis: 20 \u20ac, Gr\u00f6\u00dfe M."
    trick = plain_mail(text, charset="us-ascii", cte="8bit")  # UTF-8 bytes labelled ASCII
    clean = plain_mail(text, charset="utf-8", cte="8bit")
    assert "charset_mismatch" in signs(trick)
    assert "charset_mismatch" not in signs(clean)
    verdict = asyncio.run(assess_spam(parse_raw(trick), SpamSettings(use_llm=False)))
    assert "text does not decode in its declared charset" in verdict.reasons
    assert (
        "could not read: text not in its declared charset 'us-ascii'; part read as UTF-8"
        in verdict.reasons
    )
    assert not any("could not read" in r for r in asyncio.run(
        assess_spam(parse_raw(clean), SpamSettings(use_llm=False))).reasons)  # fmt: skip


@pytest.mark.parametrize(
    "date", ["Mon, 32 Sep 2024 25:61:00 +0000", "2024-09-02 10:00", "yesterday at ten"]
)
def test_a_malformed_date_is_found_and_a_well_formed_one_is_not(date: str) -> None:
    trick = plain_mail(PROSE).replace(b"Mon, 02 Sep 2024 10:00:00 +0000", date.encode())
    found = signs(trick)
    assert "date_malformed" in found and date[:20] in found["date_malformed"]
    assert "date_malformed" not in signs(plain_mail(PROSE))


# a spam tool's own Received lines below the real hop: the host that really connected
# (dsl-9.isp.example) claims, one line down, to be a big mailer's server
FORGED = (
    "Received: from mail.shop.example (dsl-9.isp.example [198.51.100.9]) by mx.example.com"
    " (Postfix) with SMTP id 9C2E1; Mon, 02 Sep 2024 10:00:05 +0000\n"
    "Received: from unknown (HELO 192.0.2.77) by rly-xl04.mx.aol.com with SMTP;"
    " Mon, 02 Sep 2024 09:59:50 +0000\n"
)


def test_a_relay_line_the_sender_wrote_for_another_host_breaks_the_chain() -> None:
    chain = HEAD[HEAD.index("Received:") : HEAD.index("From:")]
    found = signs(plain_mail(PROSE, head=HEAD.replace(chain, FORGED)))
    assert "relay_chain_break" in found and "rly-xl04.mx.aol.com" in found["relay_chain_break"]
    # the clean chain: the hop below is by the host that connected (mx.shop.example)
    assert "relay_chain_break" not in signs(plain_mail(PROSE))


@pytest.mark.parametrize(
    ("stamp", "fires"),
    [
        ("Tue, 03 Sep 2024 09:00:02 +0000", True),  # 23 h after the hop that received it
        ("Mon, 02 Sep 2024 10:20:02 +0000", False),  # a server clock 20 minutes fast
        ("Mon, 02 Sep 2024 19:00:02 +0900", False),  # the same moment, in another zone
        ("Mon, 02 Sep 2024 09:00:02 +0000", False),  # an hour earlier: the usual order
    ],
)
def test_relay_stamps_going_back_in_time_are_found_and_clock_skew_is_not(
    stamp: str, fires: bool
) -> None:
    head = HEAD.replace("Mon, 02 Sep 2024 10:00:02 +0000", stamp)
    found = signs(plain_mail(PROSE, head=head))
    assert ("relay_time_backwards" in found) is fires
    if fires:
        assert found["relay_time_backwards"] == "a relay is stamped 23 h after the next one"
