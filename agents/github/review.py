"""One review of one pull request, from the request to the posted review.

PyGithub blocks, so its calls run in a worker thread; the LLM call is awaited. A second run for
the same head and trigger finds the marker of the first and posts nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from agents.github.events import ReviewCompleted, ReviewRequest
from agents.github.files import ChangedFile, fit_budget, select
from agents.github.findings import BLOCKING, ReviewComment, ReviewResult, rule_score
from agents.github.posting import find_posted, place_comments, post_review, render_body
from agents.github.reviewer import review_with_llm
from agents.github.rules import review_rules
from agents.github.settings import GithubSettings

__all__ = ["REVIEWED_GROUP", "Reviewer", "Skipped"]

log = logging.getLogger("stepline.github.review")

REVIEWED_GROUP = "github.reviewed"  # "<repo>#<number>" -> head sha last reviewed
# Room the system prompt, title and description take out of the budget.
_PROMPT_OVERHEAD = 900


@dataclass
class Skipped:
    reason: str


@dataclass
class _Fetched:
    pull: Any
    head: str
    title: str
    body: str
    url: str
    pr_files: list[ChangedFile]
    review_files: list[ChangedFile]
    since: str | None
    posted: Any = None
    labels: list[str] = field(default_factory=list)


def _counts(comments: list[ReviewComment]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in comments:
        out[c.severity] = out.get(c.severity, 0) + 1
    return out


class Reviewer:
    """Holds the collaborators; `await run(request, state)` does one review."""

    def __init__(self, settings: GithubSettings, clients: Any, llm: Any | None) -> None:
        self.settings = settings
        self.clients = clients
        self.llm = llm

    def _fetch(self, req: ReviewRequest, last_head: str | None) -> _Fetched | Skipped:
        # Imported here so loading the steps does not pull in PyGithub before a review runs.
        from github import GithubException, RateLimitExceededException

        gh = self.clients.for_installation(req.installation_id)
        pull = gh.get_repo(req.repo).get_pull(req.number)
        if pull.state != "open":
            return Skipped(f"pull request is {pull.state}")
        if self.settings.skip_drafts and pull.draft:
            return Skipped("pull request is a draft")
        head = pull.head.sha
        trigger = req.trigger
        fetched = _Fetched(
            pull,
            head,
            pull.title or req.title,
            pull.body or "",
            pull.html_url or req.url,
            [],
            [],
            None,
        )
        fetched.posted = find_posted(pull, head, trigger)
        if fetched.posted is not None:
            return fetched
        fetched.pr_files = [ChangedFile.from_api(f) for f in pull.get_files()]
        fetched.review_files = fetched.pr_files
        since = last_head if req.action == "synchronize" and trigger == "auto" else None
        if since and since != head:
            try:
                changed = {f.filename: f for f in pull.base.repo.compare(since, head).files}
            except RateLimitExceededException:
                raise  # the next calls would hit the same limit: let the event be retried
            except GithubException as exc:
                # A force-push can make the old head unknown: review the whole PR instead.
                log.info(
                    "compare %s...%s failed (%s): reviewing all files", since, head, exc.status
                )
            else:
                fetched.since = since
                fetched.review_files = [
                    ChangedFile.from_api(changed[f.path])
                    for f in fetched.pr_files
                    if f.path in changed
                ]
        return fetched

    async def run(self, req: ReviewRequest, state: Any = None) -> ReviewCompleted | Skipped:
        key = f"{req.repo}#{req.number}"
        last_head = await state.get(REVIEWED_GROUP, key) if state is not None else None
        fetched = await asyncio.to_thread(self._fetch, req, last_head)
        if isinstance(fetched, Skipped):
            return fetched
        if fetched.posted is not None:
            return self._completed(req, fetched, fetched.posted, {}, "previous run")
        s = self.settings
        files, skipped = select(fetched.review_files, s.ignored_globs())
        notes = [f"`{path}`: {why}" for path, why in skipped]
        if fetched.since:
            notes.insert(0, f"only commits since {fetched.since[:7]} were reviewed")
        rule_comments = []
        if s.review.rules:
            rule_comments = review_rules(files, large_file_lines=s.review.large_file_lines)
        result, reviewer = await self._ai(req, fetched, files, notes, state)
        if result is None:
            result = ReviewResult(
                summary=_rules_summary(rule_comments, len(files)),
                score=rule_score(rule_comments),
                comments=[],
            )
            reviewer = reviewer or "built-in rules"
        comments = rule_comments + result.comments
        # Positions are checked against the whole pull request's diff: that is what GitHub uses.
        patches = {f.path: f.patch for f in fetched.pr_files}
        placed = place_comments(comments, patches, s.review.max_comments)
        blocking = sum(1 for c in rule_comments if c.severity in BLOCKING)
        body = render_body(result, placed, notes, reviewer, fetched.head, req.trigger, blocking)
        posted = await asyncio.to_thread(
            post_review, fetched.pull, fetched.head, body, placed.inline, result.score, blocking
        )
        if state is not None:
            await state.set(REVIEWED_GROUP, key, fetched.head, ttl=90 * 24 * 3600)
        return self._completed(
            req, fetched, posted, _counts(comments), reviewer, folded=len(placed.folded)
        )

    async def _ai(
        self,
        req: ReviewRequest,
        fetched: _Fetched,
        files: list[ChangedFile],
        notes: list[str],
        state: Any,
    ) -> tuple[ReviewResult | None, str]:
        llm = self.llm
        if not (self.settings.review.llm and llm is not None and llm.configured and files):
            return None, ""
        budget = max(300, self.settings.review.max_input_tokens - _PROMPT_OVERHEAD)
        fitted = fit_budget(files, budget, llm.count_tokens, llm.trim)
        notes.extend(fitted.notes)
        try:
            result = await review_with_llm(
                llm,
                title=fetched.title,
                description=fetched.body,
                diff_text=fitted.text,
                notes=list(notes),
                reviewed_paths=set(fitted.included),
                max_input_tokens=self.settings.review.max_input_tokens,
                state=state,
            )
        except Exception as exc:  # LLMError or anything else: the rules still review
            log.warning(
                "LLM review of %s#%s failed, using built-in rules: %s",
                req.repo,
                req.number,
                exc.__class__.__name__,
            )
            notes.append("AI review unavailable; built-in checks only")
            return None, "built-in rules (AI review failed)"
        return result, "AI reviewer + built-in rules"

    def _completed(
        self,
        req: ReviewRequest,
        fetched: _Fetched,
        posted: Any,
        counts: dict[str, int],
        reviewer: str,
        folded: int = 0,
    ) -> ReviewCompleted:
        return ReviewCompleted(
            repo=req.repo,
            number=req.number,
            head_sha=fetched.head,
            score=posted.score,
            comments=posted.comments,
            folded=folded,
            findings=counts,
            blocking=posted.blocking,
            reviewer=reviewer,
            review_id=posted.id,
            review_url=posted.url,
            url=fetched.url,
            title=fetched.title,
            installation_id=req.installation_id,
            trigger=req.trigger,
            already_posted=posted.already,
        )


def _rules_summary(comments: list[ReviewComment], n_files: int) -> str:
    if not comments:
        return f"Built-in checks found nothing to flag in {n_files} file(s)."
    counts = ", ".join(f"{n} {sev}" for sev, n in sorted(_counts(comments).items()))
    return f"Built-in checks flagged {len(comments)} finding(s) in {n_files} file(s): {counts}."
