"""Run the merge gate again when something it waits for changed (CI, label, approval).

While GitHub still computes mergeability the handler raises, and the runtime's retry with
backoff is the delay before the next read (bounded by `retries`; see agents.github.automerge).
"""

from agents.github import services
from agents.github.automerge import MergeabilityPending, announce, recheck
from agents.github.events import TOPIC_MERGE_CHECK, TOPIC_MERGED, MergeCheck

config = {
    "type": "event",
    "name": "RecheckMerge",
    "description": "Re-evaluates auto-merge on check, status, label and approval deliveries",
    "flows": ["github"],
    "subscribes": [TOPIC_MERGE_CHECK],
    "emits": [TOPIC_MERGED],
    "input": MergeCheck,
    "retries": 6,
    "concurrency": 1,
}


async def handler(data: MergeCheck, ctx):
    settings = services.settings()
    policy = settings.merge_policy(data.repo)
    if not policy.enabled:
        return
    clients = services.clients(settings)
    results = await recheck(clients, policy, data, ctx.state, services.repo_configs())
    waiting = [review.number for review, outcome in results if outcome.pending]
    for review, outcome in results:
        await announce(ctx, review, outcome, policy, cause=data.cause)
    if not waiting:
        return
    if ctx.attempt < config["retries"]:
        raise MergeabilityPending(f"{data.repo} {waiting}: GitHub is computing mergeability")
    ctx.logger.warning(
        "stopped waiting for GitHub's mergeability; the next check or label delivery looks again",
        repo=data.repo,
        numbers=waiting,
        attempts=ctx.attempt,
    )
