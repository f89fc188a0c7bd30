"""Merge a reviewed pull request when its repository's policy allows it (off by default)."""

from agents.github import services
from agents.github.events import (
    TOPIC_MERGE_CHECK,
    TOPIC_MERGED,
    TOPIC_REVIEWED,
    MergeCheck,
    ReviewCompleted,
    installation,
)

config = {
    "type": "event",
    "name": "MergePullRequest",
    "description": "Auto-merge gated by score, label, author, mergeability and checks",
    "flows": ["github"],
    "subscribes": [TOPIC_REVIEWED],
    "emits": [TOPIC_MERGED, TOPIC_MERGE_CHECK],
    "input": ReviewCompleted,
    "concurrency": 1,
}
_writes = services.settings().api.writes_per_minute
if _writes:
    # Its writes (the merge PUT, auto-merge arm or disarm) are paced per installation by the
    # runtime, across processes, as the review's are; read when the step loads.
    config["rate_limit"] = {"per_minute": _writes, "key": installation}


async def handler(data: ReviewCompleted, ctx):
    from agents.github.automerge import announce, attempt, remember
    from agents.github.client import paced_by_runtime

    settings = services.settings()
    policy = settings.merge_policy(data.repo)
    if not policy.enabled:
        return
    # Check and label deliveries carry no review: they find this one when they re-run the gate.
    await remember(ctx.state, data)
    clients = services.clients(settings)
    with paced_by_runtime(ctx):
        outcome = await attempt(clients, policy, data, services.repo_configs(), ctx.state)
    await announce(ctx, data, outcome, policy, cause="review posted")
    if outcome.pending:
        check = MergeCheck(
            repo=data.repo,
            numbers=[data.number],
            head_sha=data.head_sha,
            installation_id=data.installation_id,
            cause="mergeability was being computed",
        )
        key = f"{data.repo}#{data.number}@{data.head_sha}:{data.trigger}:mergeable"
        wait = settings.api.mergeable_wait  # GitHub needs a moment: read again after it
        await ctx.emit(TOPIC_MERGE_CHECK, check.model_dump(), key=key, delay=wait)
