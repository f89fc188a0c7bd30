"""One review of one pull request, from the request to the posted review.

PyGithub blocks, so its calls run in a worker thread; the LLM call is awaited. A second run for
the same head and trigger finds the marker of the first and posts nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from agents.github import repo_config
from agents.github.events import ReviewCompleted, ReviewRequest
from agents.github.files import ChangedFile, select
from agents.github.findings import BLOCKING, ReviewComment, ReviewResult, rule_score
from agents.github.memory import (
    Draft,
    drop_draft,
    load_draft,
    posted_fingerprints,
    remember_fingerprints,
    save_draft,
)
from agents.github.plan import PlanError
from agents.github.posting import (
    Placed,
    find_posted,
    place_comments,
    posted_findings,
    render_body,
)
from agents.github.publish import post_file_comment, post_review
from agents.github.reviewer import Frame, plan_review, review_with_llm
from agents.github.rules import review_rules
from agents.github.settings import GithubSettings
from app import Retry

__all__ = ["REVIEWED_GROUP", "Reviewer", "Skipped"]

log = logging.getLogger("stepline.github.review")

REVIEWED_GROUP = "github.reviewed"  # "<repo>#<number>" -> head sha last reviewed


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
    findings: set[str] = field(default_factory=set)  # fingerprints already on the PR
    said: list[str] = field(default_factory=list)  # what those findings said, where
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
        me = self.clients.login(req.installation_id)
        fetched.posted = find_posted(pull, head, trigger, me)
        if fetched.posted is not None:
            return fetched
        earlier = posted_findings(pull, me)
        fetched.findings, fetched.said = earlier.fingerprints, earlier.said
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
        # The base commit's `.stepline.yml` narrows the server's settings (never the head's).
        repo = await asyncio.to_thread(repo_config.for_pull, fetched.pull)
        s = repo.apply(self.settings)
        globs, max_comments = s.ignored_globs(), s.review.max_comments
        instructions = repo.instructions
        files, skipped = select(fetched.review_files, globs)
        notes = repo.notes(self.settings, req.repo) + [f"`{p}`: {why}" for p, why in skipped]
        if fetched.since:
            notes.insert(0, f"only commits since {fetched.since[:7]} were reviewed")
        rule_comments = []
        if s.review.rules:
            rule_comments = review_rules(files, large_file_lines=s.review.large_file_lines)
        # The AI's result is kept until it is on GitHub: a retry after a posting failure
        # posts it again instead of asking the LLM twice.
        draft_key = f"{key}@{fetched.head}:{req.trigger}"
        draft = await load_draft(state, draft_key)
        if draft is None:
            draft = await self._ai(req, fetched, files, list(notes), state, instructions)
            await save_draft(state, draft_key, draft)
        notes += draft.notes
        result, reviewer = draft.result, draft.reviewer
        if result is None:
            result = ReviewResult(
                summary=_rules_summary(rule_comments, len(files)), score=100, comments=[]
            )
            reviewer = reviewer or "built-in rules"
        # The built-in checks' verdict caps the score: text in the PR cannot talk it up.
        result = result.model_copy(update={"score": min(result.score, rule_score(rule_comments))})
        comments = rule_comments + result.comments
        # Positions are checked against the whole pull request's diff: that is what GitHub uses.
        patches = {f.path: f.patch for f in fetched.pr_files}
        known = fetched.findings | await posted_fingerprints(state, key)
        placed = place_comments(comments, patches, max_comments, known)
        blocking = sum(1 for c in rule_comments if c.severity in BLOCKING)
        await self._post_file_level(fetched, placed, state, key)

        def body_for(p: Placed) -> str:
            return render_body(result, p, notes, reviewer, fetched.head, req.trigger, blocking)

        posted = await asyncio.to_thread(
            post_review, fetched.pull, fetched.head, placed, body_for, result.score, blocking
        )
        await remember_fingerprints(state, key, [p.fingerprint for p in placed.inline])
        await drop_draft(state, draft_key)
        if state is not None:
            await state.set(REVIEWED_GROUP, key, fetched.head, ttl=90 * 24 * 3600)
        folded = len(placed.folded) + len(placed.refused)
        return self._completed(req, fetched, posted, _counts(comments), reviewer, folded=folded)

    async def _post_file_level(
        self, fetched: _Fetched, placed: Placed, state: Any, key: str
    ) -> None:
        """File-level comments go one by one, each remembered once posted, so a retry of the
        step does not post it twice; those GitHub refuses are listed in the summary."""
        for planned in list(placed.file_level):
            why = await asyncio.to_thread(post_file_comment, fetched.pull, fetched.head, planned)
            if why is None:
                await remember_fingerprints(state, key, [planned.fingerprint])
                continue
            placed.file_level.remove(planned)
            placed.refused.append((planned.comment, why))

    async def _ai(
        self,
        req: ReviewRequest,
        fetched: _Fetched,
        files: list[ChangedFile],
        notes: list[str],
        state: Any,
        instructions: str = "",
    ) -> Draft:
        llm = self.llm
        review = self.settings.review
        if not (review.llm and llm is not None and llm.configured and files):
            return Draft(None, "")
        frame = Frame(fetched.title, fetched.body, notes, instructions, fetched.said)
        try:
            plan = plan_review(
                llm,
                files,
                frame,
                max_input_tokens=review.max_input_tokens,
                max_total_tokens=review.max_total_tokens,
                max_calls=review.max_calls,
            )
            shown, changed = plan.changed_lines()
            log.info(
                "review of %s#%s: %d call(s), ~%d tokens, %d of %d changed lines shown",
                req.repo,
                req.number,
                len(plan.calls),
                plan.estimated_tokens,
                shown,
                changed,
            )
            if not plan.calls:  # the budget holds nothing of this PR: the rules review alone
                return Draft(None, "built-in rules", plan.not_reviewed)
            done = await review_with_llm(
                llm, plan, frame, max_input_tokens=review.max_input_tokens, state=state
            )
        except Retry:  # the LLM server said "later": the runtime re-schedules the review
            raise
        except Exception as exc:  # LLMError, a plan that cannot be made: the rules still review
            # A plan's refusal names the setting to change: the log and the review say it.
            why = str(exc) if isinstance(exc, PlanError) else exc.__class__.__name__
            log.warning(
                "LLM review of %s#%s failed, using built-in rules: %s", req.repo, req.number, why
            )
            notes = [f"{_AI_FAILED}: {why}" if isinstance(exc, PlanError) else _AI_FAILED]
            return Draft(None, "built-in rules (AI review failed)", notes)
        if done.result is None:
            return Draft(None, "built-in rules (AI review failed)", [_AI_FAILED])
        return Draft(done.result, "AI reviewer + built-in rules", plan.not_reviewed + done.notes)

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


_AI_FAILED = "AI review unavailable; built-in checks only"


def _rules_summary(comments: list[ReviewComment], n_files: int) -> str:
    if not comments:
        return f"Built-in checks found nothing to flag in {n_files} file(s)."
    counts = ", ".join(f"{n} {sev}" for sev, n in sorted(_counts(comments).items()))
    return f"Built-in checks flagged {len(comments)} finding(s) in {n_files} file(s): {counts}."
