"""Review one pull request: built-in checks always, the AI reviewer when configured.

The debounce (`review.debounce_seconds`, `review.debounce_max_wait` in config/github.yaml) and
the rate limit (`api.reviews_per_minute`) are read when the step loads, so a change to them
takes effect at the next restart.
"""

from agents.github import services
from agents.github.events import (
    TOPIC_REVIEW_REQUESTED,
    TOPIC_REVIEWED,
    ReviewRequest,
    installation,
    pull_request,
)

_review = services.settings().review
_writes = services.settings().api.reviews_per_minute

config = {
    "type": "event",
    "name": "ReviewPullRequest",
    "description": "Posts one review (summary + inline comments) per head commit",
    "flows": ["github"],
    "subscribes": [TOPIC_REVIEW_REQUESTED],
    "emits": [TOPIC_REVIEWED],
    "input": ReviewRequest,
    "retries": 3,
    # A large pull request is read in several LLM calls (review.max_calls, a few at a time).
    "timeout": 600,
    "concurrency": 4,
    # One review of a pull request at a time, in the order its pushes arrived (across every
    # process), so a review of an older head never posts after one of a newer head.
    "key": pull_request,
    "concurrency_per_key": 1,
}
if _writes:
    # GitHub's secondary limits hold per account: for an App, per installation. Paced by the
    # runtime across processes; a 403/429 with Retry-After re-schedules the run (no sleep).
    config["rate_limit"] = {
        "per_minute": _writes,
        "key": installation,
    }
if _review.debounce_seconds:
    # A burst of pushes is reviewed once, on its last delivery: the newest head.
    config["debounce"] = {
        "seconds": _review.debounce_seconds,
        "max_wait": _review.debounce_max_wait,
    }


async def handler(data: ReviewRequest, ctx):
    from agents.github.client import paced_by_runtime
    from agents.github.review import Reviewer, Skipped

    settings = services.settings()
    reviewer = Reviewer(settings, services.clients(settings), services.llm())
    with paced_by_runtime(ctx):
        outcome = await reviewer.run(data, ctx.state)
    if isinstance(outcome, Skipped):
        ctx.logger.info("review skipped", repo=data.repo, number=data.number, reason=outcome.reason)
        return
    ctx.logger.info(
        "review posted" if not outcome.already_posted else "review already posted",
        repo=data.repo,
        number=data.number,
        score=outcome.score,
        comments=outcome.comments,
    )
    key = f"{data.repo}#{data.number}@{outcome.head_sha}:{data.trigger}"
    await ctx.emit(TOPIC_REVIEWED, outcome.model_dump(), key=key)
