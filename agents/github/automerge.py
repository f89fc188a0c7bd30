"""When to look at the merge gate again, and what to say when it opens or stays shut.

The gate (`agents.github.merge`) runs when a review lands, and again whenever something it
waits for changes: a check suite or run completes, a commit status succeeds, the required
label is added, a review is approved (`MergeCheck` events from the webhook). Those deliveries
carry no review, so the last review of each pull request is kept in state group
`github.merge.reviews`; a pull request without one is left alone.

GitHub answers `mergeable: null` until it has computed it after a push. The gate then looks
again later: `read_again` emits the check to itself with a delay (a durable delayed emit),
doubling the wait each time, `api.mergeable_rechecks` times at most; then it stops waiting and
logs why (the next check or label delivery looks again).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agents.github.events import TOPIC_MERGE_CHECK, TOPIC_MERGED, MergeCheck, ReviewCompleted
from agents.github.merge import ALREADY, MergeOutcome, merge_if_allowed
from agents.github.settings import ApiSettings, MergePolicy

__all__ = [
    "ARMED_GROUP",
    "MERGE_REVIEWS_GROUP",
    "announce",
    "attempt",
    "read_again",
    "recheck",
    "remember",
]

log = logging.getLogger("stepline.github.automerge")

MERGE_REVIEWS_GROUP = "github.merge.reviews"  # "<repo>#<number>" -> last ReviewCompleted
ARMED_GROUP = "github.merge.armed"  # "<repo>#<number>" -> head sha we armed auto-merge for
_KEEP = 30 * 24 * 3600


def _key(repo: str, number: int) -> str:
    return f"{repo.lower()}#{number}"


async def remember(state: Any, review: ReviewCompleted) -> None:
    await state.set(
        MERGE_REVIEWS_GROUP, _key(review.repo, review.number), review.model_dump(), ttl=_KEEP
    )


async def attempt(
    clients: Any, policy: MergePolicy, review: ReviewCompleted, repo_configs: Any, state: Any
) -> MergeOutcome:
    """One run of the gate; remembers whether GitHub's auto-merge is armed by us."""
    key = _key(review.repo, review.number)
    armed_for = await state.get(ARMED_GROUP, key)
    outcome = await asyncio.to_thread(
        merge_if_allowed, clients, policy, review, repo_configs, armed_for
    )
    if outcome.armed_now:
        await state.set(ARMED_GROUP, key, review.head_sha, ttl=_KEEP)
    elif armed_for is not None and not outcome.armed:
        await state.delete(ARMED_GROUP, key)  # merged, or disarmed by this attempt
    return outcome


def _pulls_with_head(clients: Any, check: MergeCheck) -> list[int]:
    """Open pull requests whose head is `check.head_sha` (blocking: PyGithub)."""
    if not check.head_sha:
        return []
    gh = clients.for_installation(check.installation_id)
    repo = gh.get_repo(check.repo)
    found = [p.number for p in repo.get_commit(check.head_sha).get_pulls() if p.state == "open"]
    if found:
        return found
    # GitHub documents this lookup for commits of the repository itself; a fork's head may not
    # be listed, so the open pull requests are searched by head (pages only when needed).
    return [p.number for p in repo.get_pulls(state="open") if p.head.sha == check.head_sha]


async def recheck(
    clients: Any, policy: MergePolicy, check: MergeCheck, state: Any, repo_configs: Any
) -> list[tuple[ReviewCompleted, MergeOutcome]]:
    """Run the gate again for each pull request the delivery concerns that has a review."""
    numbers = check.numbers or await asyncio.to_thread(_pulls_with_head, clients, check)
    results = []
    for number in dict.fromkeys(numbers):
        stored = await state.get(MERGE_REVIEWS_GROUP, _key(check.repo, number))
        if stored is None:
            # Not reviewed yet (or before auto-merge was on): the review's own attempt decides.
            log.info("merge re-check of %s#%s skipped: no review yet", check.repo, number)
            continue
        review = ReviewCompleted.model_validate(stored)
        results.append((review, await attempt(clients, policy, review, repo_configs, state)))
    return results


async def announce(
    ctx: Any, review: ReviewCompleted, outcome: MergeOutcome, policy: MergePolicy, cause: str
) -> None:
    """Log the outcome with its reason and cause; a merge is emitted once per pull request."""
    where = {"repo": review.repo, "number": review.number, "cause": cause}
    if not outcome.merged:
        message = "auto-merge armed on GitHub" if outcome.armed else "merge refused"
        ctx.logger.info(message, reason=outcome.reason, **where)
        return
    if outcome.reason == ALREADY:
        ctx.logger.info("already merged", **where)
    else:
        ctx.logger.info("merged", method=policy.method, reason=outcome.reason, **where)
    merged = {
        "repo": review.repo,
        "number": review.number,
        "title": review.title,
        "url": review.url,
        "merged_by": "stepline",
    }
    await ctx.emit(TOPIC_MERGED, merged, key=f"{review.repo}#{review.number}")


async def read_again(ctx: Any, check: MergeCheck, numbers: list[int], api: ApiSettings) -> bool:
    """Emit `check` for `numbers` to the re-check step after a delay, unless it was read
    again `api.mergeable_rechecks` times already; False when it stops waiting."""
    if check.rechecks >= api.mergeable_rechecks:
        return False
    delay = min(api.mergeable_wait * 2**check.rechecks, 300.0)
    again = check.model_copy(update={"numbers": numbers, "rechecks": check.rechecks + 1})
    await ctx.emit(TOPIC_MERGE_CHECK, again.model_dump(), delay=delay)
    return True
