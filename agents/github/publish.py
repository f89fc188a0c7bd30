"""Send a placed review to GitHub so that no comment can cost the whole review.

GitHub refuses a review whole (422) when any one of its comments is invalid. When that happens
the comments are tried again as a PENDING review (which nobody sees and which is deleted at
once), in halves and then one by one, to find those GitHub refuses; the review is then posted
with the rest, and the refused ones are listed in its summary. Nothing here calls the LLM: the
result being posted was computed (and stored) before.

File-level comments (`subject_type: file`) exist only on the single-comment endpoint, so they
are posted one by one, before the review that lists any GitHub refused.
PyGithub blocks; callers run these functions in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from agents.github.client import github_reason
from agents.github.posting import Placed, Planned, PostedReview

__all__ = ["find_refused", "post_file_comment", "post_review"]

log = logging.getLogger("stepline.github.publish")


def _reason(exc: Exception) -> str:
    return github_reason(exc, "refused")


def _is_refusal(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 422


def post_file_comment(pull: Any, head: str, planned: Planned) -> str | None:
    """Post one file-level comment; the reason when GitHub refuses it, else None."""
    from github import GithubException

    p = planned.payload
    try:
        pull.create_review_comment(body=p["body"], commit=head, path=p["path"], subject_type="file")
    except GithubException as exc:
        if not _is_refusal(exc):
            raise
        return _reason(exc)
    return None


def _clear_pending(pull: Any) -> None:
    # GitHub allows one pending review per user: a probe left by a crashed run would block ours.
    for review in pull.get_reviews():
        if review.state == "PENDING":
            review.delete()


def find_refused(pull: Any, commit: Any, items: list[Planned]) -> list[tuple[Planned, str]]:
    """The comments GitHub refuses, each with its reason, found with pending-review probes."""
    from github import GithubException

    _clear_pending(pull)
    probes = {"left": 3 * len(items) + 1}

    def probe(group: list[Planned]) -> str | None:
        probes["left"] -= 1
        try:
            review = pull.create_review(commit=commit, comments=[p.payload for p in group])
        except GithubException as exc:
            if not _is_refusal(exc):
                raise
            return _reason(exc)
        review.delete()
        return None

    def bad(group: list[Planned]) -> list[tuple[Planned, str]]:
        if probes["left"] <= 0:
            return [(p, "not checked: too many refusals") for p in group]
        reason = probe(group)
        if reason is None:
            return []
        if len(group) == 1:
            return [(group[0], reason)]
        mid = len(group) // 2
        return bad(group[:mid]) + bad(group[mid:])

    return bad(items)


def post_review(
    pull: Any,
    head: str,
    placed: Placed,
    body_for: Callable[[Placed], str],
    score: int,
    blocking: int,
) -> PostedReview:
    """One COMMENT review pinned to `head`, so comments land on the diff that was reviewed.

    On a 422, the refused comments move from `placed.inline` to `placed.refused` and the
    review is posted with the rest (as a last resort with none); `body_for` renders the body
    for what is actually sent."""
    from github import GithubException

    commit = pull.base.repo.get_commit(head)

    def send() -> Any:
        return pull.create_review(
            commit=commit,
            body=body_for(placed),
            event="COMMENT",
            comments=[p.payload for p in placed.inline],
        )

    try:
        review = send()
    except GithubException as exc:
        if not _is_refusal(exc) or not placed.inline:
            raise
        log.warning("GitHub refused the review (%s): finding the refused comments", _reason(exc))
        refused = find_refused(pull, commit, placed.inline)
        _move(placed, refused)
        try:
            review = send()
        except GithubException as again:
            if not _is_refusal(again) or not placed.inline:
                raise
            # Each comment passed alone but not together: post the summary, list them all.
            _move(placed, [(p, "refused with the others") for p in placed.inline])
            review = send()
    url = review.html_url or ""
    return PostedReview(review.id, url, score, len(placed.posted), blocking, already=False)


def _move(placed: Placed, refused: list[tuple[Planned, str]]) -> None:
    gone = {id(p) for p, _ in refused}
    placed.inline = [p for p in placed.inline if id(p) not in gone]
    placed.refused += [(p.comment, why) for p, why in refused]
