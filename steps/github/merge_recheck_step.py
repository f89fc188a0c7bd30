"""Run the merge gate again when something it waits for changed (CI, label, approval).

While GitHub still computes mergeability, the step emits the check to itself with a delay
(`agents.github.automerge.read_again`): durable, bounded, and no attempt of `retries` is spent
on waiting, so those stay for real failures.
"""

from agents.github import services
from agents.github.events import TOPIC_MERGE_CHECK, TOPIC_MERGED, MergeCheck, installation

config = {
    "type": "event",
    "name": "RecheckMerge",
    "description": "Re-evaluates auto-merge on check, status, label and approval deliveries",
    "flows": ["github"],
    "subscribes": [TOPIC_MERGE_CHECK],
    "emits": [TOPIC_MERGED, TOPIC_MERGE_CHECK],
    "input": MergeCheck,
    "concurrency": 1,
}
_writes = services.settings().api.writes_per_minute
if _writes:
    # Its writes (the merge PUT, auto-merge arm or disarm) are paced per installation by the
    # runtime, across processes, as the review's are; read when the step loads.
    config["rate_limit"] = {"per_minute": _writes, "key": installation}


async def handler(data: MergeCheck, ctx):
    from agents.github.automerge import announce, read_again, recheck
    from agents.github.client import paced_by_runtime

    settings = services.settings()
    policy = settings.merge_policy(data.repo)
    if not policy.enabled:
        return
    clients = services.clients(settings)
    with paced_by_runtime(ctx):
        results = await recheck(clients, policy, data, ctx.state, services.repo_configs())
    waiting = [review.number for review, outcome in results if outcome.pending]
    for review, outcome in results:
        await announce(ctx, review, outcome, policy, cause=data.cause)
    if not waiting or await read_again(ctx, data, waiting, settings.api):
        return
    ctx.logger.warning(
        "stopped waiting for GitHub's mergeability; the next check or label delivery looks again",
        repo=data.repo,
        numbers=waiting,
        rechecks=data.rechecks,
    )
