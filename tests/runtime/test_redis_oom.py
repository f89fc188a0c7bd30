"""A Redis out of memory under `noeviction` refuses writes instead of dropping keys: the request
gets a 503 (nothing accepted), `/readyz` says Redis is out of memory until Redis takes writes
again (its own write probe tells, with no request to write), and nothing is lost. Runs its own
small redis-server, stopped by pid."""

from __future__ import annotations

import shutil
import uuid

import pytest
import redis
from redis import exceptions as rx

from app.testing import Harness
from tests.runtime.redis_support import RedisServer
from tests.support import write_steps

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed"),
]

STEPS = {
    "take_step.py": """
    config = {"type": "api", "name": "Take", "path": "/take", "method": "POST",
              "emits": ["job"]}

    async def handler(req, ctx):
        await ctx.emit("job", req.body)
        return {"status": 202}
""",
    "job_step.py": """
    config = {"type": "event", "name": "Job", "subscribes": ["job"]}

    async def handler(data, ctx):
        await ctx.state.increment("done", str(data["i"]))
""",
}


def _fill(url: str) -> int:
    """Write filler keys until Redis refuses with OOM; returns how many went in."""
    client = redis.Redis.from_url(url)
    n = 0
    try:
        while n < 100_000:
            client.set(f"filler:{n}", "x" * 10_000)
            n += 1
    except rx.OutOfMemoryError:
        pass
    finally:
        client.close()
    assert n < 100_000, "Redis never ran out of memory"
    # Right at the limit a small free lets a write through; well past it nothing does, as
    # when an operator lowers maxmemory under a full Redis.
    client = redis.Redis.from_url(url)
    client.config_set("maxmemory", "4mb")
    client.close()
    return n


async def test_out_of_memory_is_a_503_and_readyz_says_why_until_writes_work(tmp_path):
    server = RedisServer(tmp_path, "--maxmemory", "8mb", "--maxmemory-policy", "noeviction")
    server.start()
    prefix = f"oom-{uuid.uuid4().hex[:8]}"
    try:
        steps = write_steps(tmp_path / "s", STEPS)
        async with Harness(
            [steps],
            backend="redis",
            REDIS_URL=server.url,
            redis_prefix=prefix,
        ) as app:
            assert (await app.post("/take", json={"i": 0})).status_code == 202
            await app.drain()
            filled = _fill(server.url)
            refused = await app.post("/take", json={"i": 1})
            assert refused.status_code == 503 and "retry later" in refused.json()["error"]
            r = await app.get("/readyz")
            assert r.status_code == 503, r.text
            assert any("out of memory" in reason for reason in r.json()["reasons"]), r.text
            assert (await app.get("/livez")).status_code == 200

            client = redis.Redis.from_url(server.url)
            client.delete(*[f"filler:{i}" for i in range(filled)])
            # Nothing else writes now (the pod is out of rotation): the probe tells.
            r = await app.get("/readyz")
            assert r.status_code == 200, r.text
            # The probe's key does not outlive a prefix that is no longer used.
            assert 0 < client.ttl(f"{prefix}:probe") <= 86400
            assert (await app.post("/take", json={"i": 2})).status_code == 202
            await app.drain(20)
            assert (await app.get("/readyz")).status_code == 200
            assert await app.state.list("done") == {"0": 1, "2": 1}
            client.close()
    finally:
        server.stop()
