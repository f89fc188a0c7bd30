"""Per-key concurrency above one, run against every backend: `concurrency_per_key: n` runs up
to n deliveries of a key at once, whichever process claims, and the rest of that key wait."""

from __future__ import annotations

from app.types import Batch
from tests.support import until

THREE = {
    "three_step.py": """
        import asyncio

        config = {"type": "event", "name": "Three", "subscribes": ["job"], "emits": [],
                  "key": "k", "concurrency_per_key": 3, "concurrency": 16}

        async def handler(data, ctx):
            now = await ctx.state.increment("running", data["k"])
            await ctx.state.update("most", data["k"], lambda v: max(v or 0, now))
            while not await ctx.state.get("gate", "open"):
                await asyncio.sleep(0.01)
            await ctx.state.update("done", data["k"], lambda v: [*(v or []), data["i"]])
            await ctx.state.increment("running", data["k"], -1)
    """,
}


async def test_concurrency_per_key_of_three_runs_three_of_a_key_at_once(make_app):
    async with make_app(THREE) as app:
        jobs = [{"k": "a", "i": i} for i in range(8)] + [{"k": "b", "i": i} for i in range(2)]
        await app.runtime.backend.write(
            Batch(messages=[app.runtime.message("job", j) for j in jobs])
        )
        app.runtime.engine.wake(None)

        async def running() -> bool:
            return await app.state.list("running") == {"a": 3, "b": 2}

        await until("3 runs of key a and 2 of key b", running)
        # The 4th of key a waits for one of its 3 to settle, whichever process asks.
        assert await app.runtime.backend.claim({"Three": 10}, {"Three": 5.0}) == []
        await app.state.set("gate", "open", True)
        await app.drain()
        assert await app.state.list("most") == {"a": 3, "b": 2}
        done = await app.state.list("done")
        assert sorted(done["a"]) == list(range(8)) and sorted(done["b"]) == [0, 1]
