"""Merge a reviewed pull request when its repository's policy allows it (off by default)."""

import asyncio

from agents.github import services
from agents.github.events import TOPIC_MERGED, TOPIC_REVIEWED, ReviewCompleted
from agents.github.merge import merge_if_allowed

config = {
    "type": "event",
    "name": "MergePullRequest",
    "description": "Auto-merge gated by score, label, mergeability and checks",
    "flows": ["github"],
    "subscribes": [TOPIC_REVIEWED],
    "emits": [TOPIC_MERGED],
    "input": ReviewCompleted,
}


async def handler(data: ReviewCompleted, ctx):
    settings = services.settings()
    policy = settings.merge_policy(data.repo)
    if not policy.enabled:
        return
    outcome = await asyncio.to_thread(merge_if_allowed, services.clients(settings), policy, data)
    if not outcome.merged:
        ctx.logger.info("merge refused", repo=data.repo, number=data.number, reason=outcome.reason)
        return
    ctx.logger.info("merged", repo=data.repo, number=data.number, method=policy.method)
    merged = {
        "repo": data.repo,
        "number": data.number,
        "title": data.title,
        "url": data.url,
        "merged_by": "stepline",
    }
    await ctx.emit(TOPIC_MERGED, merged, key=f"{data.repo}#{data.number}")
