"""Webhook intake: verify GitHub's signature, then decide what a delivery asks for.

Verification runs over the raw body before anything parses it. Routing is a pure function
of (event name, payload, settings), so every branch is testable without a server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from agents.github.events import (
    TOPIC_MERGE_CHECK,
    TOPIC_MERGED,
    TOPIC_OPENED,
    TOPIC_REVIEW_REQUESTED,
    MergeCheck,
    PullRequestEvent,
    ReviewRequest,
)
from agents.github.settings import GithubSettings, MergePolicy

__all__ = [
    "Decision",
    "decide",
    "is_command",
    "parse_body",
    "receive",
    "signature_valid",
]

REVIEW_ACTIONS = frozenset({"opened", "reopened", "ready_for_review", "synchronize"})
# Only people with write access may ask for a review: anyone can comment on a public repo.
TRUSTED_ASSOCIATIONS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
# Conclusions that can open the merge gate; any other leaves it shut, so nothing to look at.
_PASSING = frozenset({"success", "neutral", "skipped"})


@dataclass
class Decision:
    """What to answer and what to emit; `emits` is a list of (topic, data) pairs."""

    status: int
    reason: str
    emits: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def body(self) -> dict[str, Any]:
        return {"status": "accepted" if self.status < 300 else "rejected", "reason": self.reason}


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """True when `header` is GitHub's `sha256=<hex>` HMAC of `body` with `secret`."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("ascii", "replace"))


def is_command(body: str, command: str) -> bool:
    """True when `body` starts with `command` as a whole word: `/reviewer` is not `/review`."""
    return re.match(re.escape(command) + r"(?!\w)", body.strip()) is not None


def parse_body(body: bytes, content_type: str | None) -> Any:
    """The payload of a JSON or a form-encoded (`payload=...`) delivery; ValueError if neither.
    Read by the runtime's body parser, with its limits (huge integers, NaN, deep nesting, lone
    surrogates, NUL), which a form-encoded body otherwise never meets."""
    from app.server.body import parse_json  # the server's module: not when steps only load

    text = body.decode("utf-8")
    if (content_type or "").startswith("application/x-www-form-urlencoded"):
        values = parse_qs(text).get("payload")
        if not values:
            raise ValueError("form-encoded delivery without a 'payload' field")
        text = values[-1]
    return parse_json(text)


def receive(
    headers: Mapping[str, str],
    raw: bytes,
    settings: GithubSettings,
    secret: str | None,
    *,
    dev: bool,
) -> tuple[Decision, str]:
    """Verify, parse and route one delivery; also returns its de-duplication key.

    With `secret` None the signature is not checked under `stepline dev` (`dev` True); in any
    other mode the delivery is refused, since anyone could then trigger reviews.
    """
    if secret is None and not dev:
        reason = (
            "GITHUB_WEBHOOK_SECRET is not set: unsigned deliveries are accepted only under "
            "`stepline dev`; set it to the webhook's secret"
        )
        return Decision(503, reason), ""
    if secret is not None and not signature_valid(secret, raw, headers.get("x-hub-signature-256")):
        reason = "missing or invalid X-Hub-Signature-256: check the webhook's secret"
        return Decision(401, reason), ""
    # GitHub keeps the delivery id on a redelivery, so it is the natural de-duplication key.
    key = headers.get("x-github-delivery") or hashlib.sha256(raw).hexdigest()
    try:
        payload = parse_body(raw, headers.get("content-type"))
    except json.JSONDecodeError as exc:  # the body parser's BadBody says what is wrong
        return Decision(400, f"body is not valid JSON: {exc}"), key
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[..." JSON
        return Decision(400, "body is not valid JSON (set the webhook's content type to JSON)"), key
    return decide(headers.get("x-github-event"), payload, settings), key


def _is_bot(user: dict[str, Any] | None) -> bool:
    if not user:
        return False
    return user.get("type") == "Bot" or str(user.get("login", "")).endswith("[bot]")


def _repo_name(payload: dict[str, Any]) -> str:
    repo = payload.get("repository") or {}
    return str(repo.get("full_name") or "")


def _installation(payload: dict[str, Any]) -> int | None:
    inst = payload.get("installation") or {}
    value = inst.get("id")
    return int(value) if isinstance(value, int) else None


def decide(event: str | None, payload: Any, settings: GithubSettings) -> Decision:
    """Route one verified delivery. Never raises on odd payloads: it answers 4xx or ignores."""
    if not event:
        return Decision(400, "missing X-GitHub-Event header")
    if event == "ping":
        return Decision(200, "pong")
    if not isinstance(payload, dict):
        return Decision(400, "payload is not a JSON object")
    if not settings.enabled:
        return Decision(202, "github flow disabled in config (enabled: false)")
    try:
        if event == "pull_request":
            return _pull_request(payload, settings)
        if event == "issue_comment":
            return _issue_comment(payload, settings)
        if event in ("check_suite", "check_run"):
            return _check_completed(event, payload, settings)
        if event == "status":
            return _status(payload, settings)
        if event == "pull_request_review":
            return _review_submitted(payload, settings)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return Decision(400, f"malformed {event} payload: {exc.__class__.__name__} {exc}")
    return Decision(202, f"event {event!r} ignored")


def _skip_reason(payload: dict[str, Any], settings: GithubSettings) -> str | None:
    repo = _repo_name(payload)
    if not repo:
        return "payload has no repository.full_name"
    if not settings.allows(repo):
        return f"repository {repo} is not in `repositories`"
    return None


def _pull_request(payload: dict[str, Any], settings: GithubSettings) -> Decision:
    action = str(payload.get("action") or "")
    pr = payload["pull_request"]
    if not isinstance(pr, dict):
        raise TypeError("pull_request is not an object")
    if skip := _skip_reason(payload, settings):
        return Decision(202, skip)
    repo = _repo_name(payload)
    number = int(pr.get("number") or payload["number"])
    user = pr.get("user") or {}
    base: dict[str, Any] = {
        "repo": repo,
        "number": number,
        "title": str(pr.get("title") or ""),
        "author": str(user.get("login") or ""),
        "url": str(pr.get("html_url") or ""),
    }
    if action == "closed":
        if not pr.get("merged"):
            return Decision(202, "closed without merge ignored")
        merged_by = (pr.get("merged_by") or {}).get("login")
        event = PullRequestEvent(**base, merged_by=merged_by)
        return Decision(202, "merged", [(TOPIC_MERGED, event.model_dump())])
    if action in ("labeled", "unlabeled"):
        return _label_changed(action, payload, settings, number)
    if action not in REVIEW_ACTIONS:
        return Decision(202, f"pull_request action {action!r} ignored")
    if settings.skip_drafts and pr.get("draft"):
        return Decision(202, "draft pull request skipped (skip_drafts)")
    if settings.skip_bots and _is_bot(user):
        return Decision(202, f"bot author {base['author']} skipped (skip_bots)")
    request = ReviewRequest(
        **base,
        action=action,
        head_sha=(pr.get("head") or {}).get("sha"),
        before_sha=payload.get("before") if action == "synchronize" else None,
        installation_id=_installation(payload),
    )
    emits: list[tuple[str, dict[str, Any]]] = []
    if action == "opened":
        emits.append((TOPIC_OPENED, PullRequestEvent(**base).model_dump()))
    emits.append((TOPIC_REVIEW_REQUESTED, request.model_dump()))
    if action == "synchronize" and settings.merge_policy(repo).github_auto_merge:
        # GitHub keeps an armed auto-merge across a push by a writer: disarm until reviewed.
        emits.append(_merge_check(payload, [number], "new commits pushed"))
    return Decision(202, f"review requested ({action})", emits)


def _issue_comment(payload: dict[str, Any], settings: GithubSettings) -> Decision:
    if payload.get("action") != "created":
        return Decision(202, "issue_comment action ignored")
    issue = payload["issue"]
    comment = payload["comment"]
    if not issue.get("pull_request"):
        return Decision(202, "comment on an issue, not a pull request")
    if not is_command(str(comment.get("body") or ""), settings.review_command):
        return Decision(202, "comment is not a review command")
    if skip := _skip_reason(payload, settings):
        return Decision(202, skip)
    association = str(comment.get("author_association") or "NONE")
    if association not in TRUSTED_ASSOCIATIONS:
        command = settings.review_command
        return Decision(202, f"{command} ignored from {association} (no write access)")
    if _is_bot(comment.get("user")):
        return Decision(202, "review command from a bot ignored")
    if issue.get("state") == "closed":
        return Decision(202, "pull request is closed")
    request = ReviewRequest(
        repo=_repo_name(payload),
        number=int(issue["number"]),
        action="review_command",
        installation_id=_installation(payload),
        title=str(issue.get("title") or ""),
        author=str((issue.get("user") or {}).get("login") or ""),
        url=str(issue.get("html_url") or ""),
        trigger=f"comment-{comment.get('id')}",
    )
    emits = [(TOPIC_REVIEW_REQUESTED, request.model_dump())]
    return Decision(202, "review requested by comment", emits)


# ---- deliveries the merge gate waits for ------------------------------------------------------


def _merge_check(payload: dict[str, Any], numbers: list[int], cause: str) -> tuple[str, Any]:
    head = None
    for part in ("check_suite", "check_run"):
        head = head or (payload.get(part) or {}).get("head_sha")
    check = MergeCheck(
        repo=_repo_name(payload),
        numbers=numbers,
        head_sha=head or payload.get("sha"),
        installation_id=_installation(payload),
        cause=cause,
    )
    return TOPIC_MERGE_CHECK, check.model_dump()


def _merge_policy(payload: dict[str, Any], settings: GithubSettings) -> MergePolicy | Decision:
    """The repository's merge policy when it is on, else the answer that ignores the delivery."""
    if skip := _skip_reason(payload, settings):
        return Decision(202, skip)
    repo = _repo_name(payload)
    policy = settings.merge_policy(repo)
    if not policy.enabled:
        return Decision(202, f"auto-merge is off for {repo}: nothing waits for this")
    return policy


def _check_completed(event: str, payload: dict[str, Any], settings: GithubSettings) -> Decision:
    if payload.get("action") != "completed":
        return Decision(202, f"{event} action {payload.get('action')!r} ignored")
    policy = _merge_policy(payload, settings)
    if isinstance(policy, Decision):
        return policy
    part = payload[event]
    conclusion = part.get("conclusion")
    if conclusion not in _PASSING:
        return Decision(202, f"{event} concluded {conclusion}: the merge gate stays shut")
    # Pull requests from forks are not listed here; the head sha finds them instead. An entry
    # can name a pull request of another repository (one this commit is also the head of).
    here = (payload.get("repository") or {}).get("id")
    numbers = [
        int(p["number"])
        for p in part.get("pull_requests") or []
        if here is None or ((p.get("base") or {}).get("repo") or {}).get("id", here) == here
    ]
    name = part.get("name") or (part.get("app") or {}).get("name") or event
    emit = _merge_check(payload, numbers, f"{event} {name!r} completed ({conclusion})")
    return Decision(202, "merge gate re-checked", [emit])


def _status(payload: dict[str, Any], settings: GithubSettings) -> Decision:
    policy = _merge_policy(payload, settings)
    if isinstance(policy, Decision):
        return policy
    state, context = payload.get("state"), payload.get("context")
    if state != "success":
        return Decision(202, f"status {context!r} is {state}: the merge gate stays shut")
    if not payload.get("sha"):
        raise KeyError("sha")
    emit = _merge_check(payload, [], f"status {context!r} succeeded")
    return Decision(202, "merge gate re-checked", [emit])


def _label_changed(
    action: str, payload: dict[str, Any], settings: GithubSettings, number: int
) -> Decision:
    policy = _merge_policy(payload, settings)
    if isinstance(policy, Decision):
        return policy
    label = str((payload.get("label") or {}).get("name") or "")
    wanted = policy.required_label
    if not wanted or label.lower() != wanted.lower():
        return Decision(202, f"label {label!r} is not the merge label")
    if action == "unlabeled" and not policy.github_auto_merge:
        return Decision(202, "merge label removed: nothing is armed to disarm")
    emit = _merge_check(payload, [number], f"label {label!r} {action}")
    return Decision(202, "merge gate re-checked", [emit])


def _review_submitted(payload: dict[str, Any], settings: GithubSettings) -> Decision:
    if payload.get("action") != "submitted":
        return Decision(202, "pull_request_review action ignored")
    policy = _merge_policy(payload, settings)
    if isinstance(policy, Decision):
        return policy
    review = payload["review"]
    # An approval can satisfy branch protection's required reviews; nothing else opens a gate.
    if str(review.get("state") or "").lower() != "approved":
        return Decision(202, "review is not an approval: the merge gate is unchanged")
    number = int(payload["pull_request"]["number"])
    login = (review.get("user") or {}).get("login")
    emit = _merge_check(payload, [number], f"review approved by {login}")
    return Decision(202, "merge gate re-checked", [emit])
