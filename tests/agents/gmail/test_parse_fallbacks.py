"""When the modern parser cannot read a mail at all, the compat32 parser and then the raw
text still give a mail, and the verdict's reasons say what could not be read.

The inputs are ones the stdlib really refuses (found by fuzzing `email.message_from_bytes`
with the default policy): an RFC 2231 parameter name with its `*` but no value makes the
modern parser raise `IndexError` while it builds the message, the same in a part's
Content-Disposition makes only that part unreadable, and a MIME tree nested thousands deep
(a known way to choke mail software) is read as raw text without trying them; under that cap
both fail only when the stack is short, which a process of its own makes so.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agents.gmail.message import ParsedEmail
from agents.gmail.parse import parse_gmail_full, parse_raw
from agents.gmail.settings import SpamSettings
from agents.gmail.spam import assess_spam
from tests.agents.gmail.conftest import eml
from tests.agents.gmail.world import World

HEAD = "From: Shop <deals@shop.example>\nSubject: Big sale\nMessage-ID: <1@shop.example>\n"
REFUSED = "the modern mail parser failed (IndexError)"


def broken_content_type() -> bytes:
    html = "<p>Cheap <b>pills</b> at http://pills.example/buy</p>"
    return f"{HEAD}Content-Type: text/html; charset*\n\n{html}\n".encode()


def nested(depth: int) -> bytes:
    opened = "".join(
        f"Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n" for i in range(depth)
    )
    return f"{HEAD}MIME-Version: 1.0\n{opened}Content-Type: text/plain\n\ndeep text\n".encode()


def test_a_header_the_modern_parser_refuses_is_read_with_compat32() -> None:
    parsed = parse_raw(broken_content_type())
    assert parsed.problems == [REFUSED]
    # compat32 read the structure too: the HTML became text, not raw markup
    assert (parsed.subject, parsed.from_address) == ("Big sale", "deals@shop.example")
    assert parsed.content_type == "text/html"
    assert parsed.text == "Cheap pills at http://pills.example/buy"
    assert [link.href for link in parsed.links] == ["http://pills.example/buy"]


def test_a_mime_tree_too_deep_to_parse_is_read_as_raw_text_at_once() -> None:
    parsed = parse_raw(nested(1500))
    # The stdlib parsers are not tried: they spent 3-6 s of CPU on it before a RecursionError.
    assert parsed.problems == ["1500 nested MIME parts (more than 200): read as raw text"]
    assert (parsed.subject, parsed.message_id) == ("Big sale", "<1@shop.example>")
    assert parsed.text.startswith("--b0\nContent-Type: multipart/mixed; boundary=b1")
    assert parsed.header_names == ["content-type", "from", "message-id", "mime-version", "subject"]
    parsed.model_dump_json()
    assert parse_raw(nested(20)).problems == []  # real mail's depth parses as usual


def test_a_mail_both_parsers_fail_on_is_read_as_raw_text() -> None:
    # Under the container cap the parsers fail only when the stack is short: a low recursion
    # limit, in a process of its own, makes both of them fail on a tree 150 deep.
    script = (
        "import sys\n"
        "from agents.gmail.parse import parse_raw\n"
        "raw = sys.stdin.buffer.read()\n"
        "sys.setrecursionlimit(150)\n"
        "parsed = parse_raw(raw)\n"
        "sys.setrecursionlimit(10_000)\n"
        "print(parsed.model_dump_json())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=nested(150),
        capture_output=True,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
        timeout=60,
    )
    parsed = ParsedEmail.model_validate_json(done.stdout)
    assert parsed.problems == [
        "the modern mail parser failed (RecursionError)",
        "the compat32 mail parser failed (RecursionError)",
        "read as raw text",
    ]
    assert (parsed.subject, parsed.message_id) == ("Big sale", "<1@shop.example>")
    assert parsed.text.startswith("--b0\nContent-Type: multipart/mixed; boundary=b1")


def test_a_part_whose_header_is_refused_is_skipped_and_the_others_read() -> None:
    raw = (
        f"{HEAD}MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n"
        "--XX\nContent-Type: text/plain\nContent-Disposition: inline; filename*\n\n"
        "part one\n--XX\nContent-Type: text/plain\n\npart two\n--XX--\n"
    ).encode()
    parsed = parse_raw(raw)
    assert parsed.problems == ["MIME part 1 skipped (IndexError)"]  # by the modern parser
    assert parsed.text == "part two"


async def test_the_verdict_names_what_could_not_be_read() -> None:
    verdict = await assess_spam(parse_raw(broken_content_type()), SpamSettings(use_llm=False))
    assert f"could not read: {REFUSED}" in verdict.reasons


def test_gmail_full_format_with_a_bad_body_or_a_nameless_header_does_not_raise() -> None:
    message = {
        "id": "m1",
        "internalDate": "soon",
        "payload": {
            "mimeType": "multipart/alternative",
            "headers": [{"value": "no name"}, {"name": "Subject", "value": "Hello"}, "junk"],
            "parts": [
                {"mimeType": "text/plain", "body": {"data": "abcde"}},
                {"mimeType": "text/html", "body": {"data": "PGI-aGk8L2I-"}},  # <b>hi</b>
            ],
        },
    }
    parsed = parse_gmail_full(message)
    assert (parsed.id, parsed.subject, parsed.text) == ("m1", "Hello", "hi")
    assert parsed.problems == ["text/plain part is not base64; skipped"]
    assert parsed.internal_date_ms is None
    assert parse_gmail_full({}).text == ""


async def test_mail_the_parsers_refuse_is_triaged_by_the_flow_not_dead_lettered(
    world: World,
) -> None:
    g = world.gmail
    phish = eml("phishing.eml")
    assert parse_raw(phish).problems == []
    broken = phish.replace(b'charset="utf-8"', b'charset="utf-8"; format*')
    refused = g.add_message(broken)
    bomb = g.add_message(nested(1500))
    await world.poll()
    assert await world.h.dead_letters() == []
    assert "SPAM" in g.labels_of(refused) and "INBOX" not in g.labels_of(refused)
    [spam] = world.h.emitted("gmail.spam.detected")
    assert spam.data["id"] == refused
    assert f"could not read: {REFUSED}" in spam.data["reasons"]
    [checked] = [m.data for m in world.h.emitted("gmail.email.checked") if m.data["id"] == bomb]
    assert checked["subject"] == "Big sale"
    assert checked["problems"] == ["1500 nested MIME parts (more than 200): read as raw text"]
