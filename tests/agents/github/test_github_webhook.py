"""Signature checks and routing of real-shaped deliveries."""

from __future__ import annotations

import urllib.parse

from gh_payloads import SECRET, body, headers, issue_comment, ping, pull_request, sign

from agents.github.events import TOPIC_MERGED, TOPIC_OPENED, TOPIC_REVIEW_REQUESTED
from agents.github.settings import GithubSettings
from agents.github.webhook import (
    decide,
    is_command,
    parse_body,
    receive,
    signature_valid,
)

ALL = GithubSettings()


def topics(decision) -> list[str]:
    return [t for t, _ in decision.emits]


def test_signature_right_wrong_missing() -> None:
    raw = body(pull_request())
    assert signature_valid(SECRET, raw, sign(raw))
    assert not signature_valid(SECRET, raw, sign(raw, "another secret"))
    assert not signature_valid(SECRET, raw + b" ", sign(raw))
    assert not signature_valid(SECRET, raw, None)
    assert not signature_valid(SECRET, raw, "")
    assert not signature_valid(SECRET, raw, "sha1=" + sign(raw)[7:])
    assert not signature_valid(SECRET, raw, "sha256=zz\u00e9")


def test_github_documented_example_signature() -> None:
    # The example from GitHub's "Validating webhook deliveries" page.
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature_valid(SECRET, b"Hello, World!", expected)


def test_ping_answers_200() -> None:
    decision = decide("ping", ping(), ALL)
    assert decision.status == 200 and decision.emits == []


def test_opened_emits_opened_and_review_request() -> None:
    decision = decide("pull_request", pull_request("opened", installation=42), ALL)
    assert decision.status == 202
    assert topics(decision) == [TOPIC_OPENED, TOPIC_REVIEW_REQUESTED]
    request = decision.emits[1][1]
    assert request["repo"] == "acme/api" and request["number"] == 7
    assert request["head_sha"] == "head1111" and request["installation_id"] == 42
    assert request["trigger"] == "auto"


def test_review_actions() -> None:
    for action in ("reopened", "ready_for_review", "synchronize"):
        decision = decide("pull_request", pull_request(action, before="old0000"), ALL)
        assert topics(decision) == [TOPIC_REVIEW_REQUESTED], action
    sync = decide("pull_request", pull_request("synchronize", before="old0000"), ALL)
    assert sync.emits[0][1]["before_sha"] == "old0000"


def test_closed_merged_and_closed_unmerged() -> None:
    merged = decide("pull_request", pull_request("closed", merged=True), ALL)
    assert topics(merged) == [TOPIC_MERGED]
    assert merged.emits[0][1]["merged_by"] == "maintainer"
    closed = decide("pull_request", pull_request("closed", merged=False), ALL)
    assert closed.status == 202 and closed.emits == []


def test_drafts_bots_and_allow_list_are_skipped() -> None:
    draft = decide("pull_request", pull_request(draft=True), ALL)
    assert draft.emits == [] and "draft" in draft.reason
    keep_drafts = GithubSettings(skip_drafts=False)
    assert topics(decide("pull_request", pull_request(draft=True), keep_drafts))
    bot = decide("pull_request", pull_request(author="dependabot[bot]", author_type="Bot"), ALL)
    assert bot.emits == [] and "bot" in bot.reason
    only_web = GithubSettings(repositories=["acme/web", "tools/*"])
    outside = decide("pull_request", pull_request(repo="acme/api"), only_web)
    assert outside.emits == [] and "acme/api" in outside.reason
    assert topics(decide("pull_request", pull_request(repo="tools/cli"), only_web))


def test_ignored_events_and_actions_are_acknowledged() -> None:
    for event, payload in [
        ("push", {"ref": "refs/heads/main", "repository": {"full_name": "acme/api"}}),
        ("star", {"action": "created"}),
        ("pull_request", pull_request("labeled")),
        ("pull_request", pull_request("edited")),
        ("pull_request_review", {"action": "submitted"}),
        ("issue_comment", issue_comment(action="edited")),
    ]:
        decision = decide(event, payload, ALL)
        assert decision.status == 202 and decision.emits == [], (event, decision.reason)


def test_review_command_needs_write_access_and_a_pull_request() -> None:
    ok = decide("issue_comment", issue_comment("/review please", association="OWNER"), ALL)
    assert topics(ok) == [TOPIC_REVIEW_REQUESTED]
    assert ok.emits[0][1]["trigger"] == "comment-555"
    for association in ("CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "NONE"):
        refused = decide("issue_comment", issue_comment(association=association), ALL)
        assert refused.emits == [] and association in refused.reason
    assert decide("issue_comment", issue_comment(on_pull=False), ALL).emits == []
    assert decide("issue_comment", issue_comment("LGTM, ship it"), ALL).emits == []


def test_review_command_is_a_whole_word() -> None:
    assert is_command("/review", "/review") and is_command("  /review now", "/review")
    assert is_command("/review\nplease", "/review")
    for text in ("/reviewer", "/reviews", "/review_all", "please /review", "/revie"):
        assert not is_command(text, "/review"), text
    other = decide("issue_comment", issue_comment("/reviewer", association="OWNER"), ALL)
    assert other.emits == [] and "not a review command" in other.reason


def test_unsigned_delivery_refused_outside_dev() -> None:
    raw = body(pull_request())
    # the runtime hands handlers lower-cased header names
    unsigned = {k.lower(): v for k, v in headers("pull_request", raw, secret=None).items()}
    refused, _ = receive(unsigned, raw, ALL, None, dev=False)
    assert refused.status == 503 and refused.emits == []
    assert "GITHUB_WEBHOOK_SECRET" in refused.reason
    accepted, _ = receive(unsigned, raw, ALL, None, dev=True)
    assert accepted.status == 202 and topics(accepted) == [TOPIC_OPENED, TOPIC_REVIEW_REQUESTED]


def test_odd_payloads_get_4xx_not_exceptions() -> None:
    assert decide(None, {}, ALL).status == 400
    assert decide("pull_request", ["not", "an", "object"], ALL).status == 400
    assert decide("pull_request", {"action": "opened", "repository": {}}, ALL).status == 400
    bad = decide("pull_request", {"action": "opened", "pull_request": "x"}, ALL)
    assert bad.status == 400


def test_form_encoded_delivery_is_parsed() -> None:
    raw = urllib.parse.urlencode({"payload": body(ping()).decode()}).encode()
    assert parse_body(raw, "application/x-www-form-urlencoded")["zen"]
    assert parse_body(body(ping()), "application/json")["hook_id"] == 292430182


def test_a_signed_form_delivery_is_held_to_the_same_limits_as_a_json_body() -> None:
    # GitHub's other content type: the runtime's body parser does not read it, the flow does.
    good = body(pull_request()).decode()
    hostile = {
        "a lone surrogate": good.replace('"title": "', '"title": "\\ud800', 1),
        "NaN": good.replace('"number": 7,', '"number": NaN,', 1),
        "a 5,000-digit integer": good.replace('"number": 7,', '"number": ' + "7" * 5000 + ",", 1),
        "a NUL": good.replace('"title": "', '"title": "\\u0000', 1),
    }
    for what, text in hostile.items():
        assert text != good, what
        raw = urllib.parse.urlencode({"payload": text}).encode()
        form = {k.lower(): v for k, v in headers("pull_request", raw).items()}
        form["content-type"] = "application/x-www-form-urlencoded"
        decision, _ = receive(form, raw, ALL, SECRET, dev=False)
        assert decision.status == 400 and decision.emits == [], (what, decision)
        assert decision.reason.startswith("body is not valid JSON: "), (what, decision.reason)


def test_disabled_flow_acknowledges_without_work() -> None:
    decision = decide("pull_request", pull_request(), GithubSettings(enabled=False))
    assert decision.status == 202 and decision.emits == []
