"""A stalled engine is never silent: a backend bug in a claim or a cron read is logged, work
resumes within seconds of the bug (or outage) ending, a dead cron task is restarted, and an
engine whose claims keep failing while writes still work makes /readyz and /healthz 503."""

from __future__ import annotations

import logging

import httpx

from app.backends.sqlite import SQLiteBackend
from app.runtime import Runtime
from app.server import create_app
from app.settings import Settings
from tests.runtime.test_health import STEPS, _logged, until
from tests.support import write_steps


class _BuggyBackend(SQLiteBackend):
    """A backend with a bug (not a backend error) in claim and in last_fire, twice each."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.bugs = {"claim": 2, "last_fire": 2}

    def _bug(self, where: str) -> None:
        if self.bugs[where]:
            self.bugs[where] -= 1
            raise KeyError(f"a bug in {where}")

    async def claim(self, wants, lease):  # type: ignore[no-untyped-def]
        self._bug("claim")
        return await super().claim(wants, lease)

    async def last_fire(self, step: str) -> float | None:
        self._bug("last_fire")
        return await super().last_fire(step)


CRON = {
    **STEPS,
    "tick_step.py": """
    config = {"type": "cron", "name": "Tick", "cron": "* * * * *"}

    async def handler(ctx):
        await ctx.state.increment("done", "ticks")
""",
}


async def test_a_backend_bug_never_stops_work_silently(tmp_path, caplog):
    steps = write_steps(tmp_path / "s", CRON)
    settings = Settings(steps=[steps], db=tmp_path / "b.db", mode="dev", poll_interval=0.02)
    caplog.set_level(logging.ERROR)
    runtime = Runtime(settings, backend=_BuggyBackend(settings))
    transport = httpx.ASGITransport(app=create_app(runtime, manage=False))
    async with (
        runtime,
        httpx.AsyncClient(transport=transport, base_url="http://stepline.test") as client,
    ):
        # The engine logs the claim's failure and goes on; the cron task, which the bug
        # ends, is logged with its cause, reported by /readyz and restarted.
        await until(
            lambda: _logged(caplog, "cannot claim work (1 failures in a row): KeyError"),
            "the engine to log the bug",
        )
        await until(
            lambda: _logged(caplog, "the cron task stopped: KeyError"),
            "the cron task's death to be logged",
        )
        await runtime.emit("job", {"i": 1})
        await until(lambda: _done(runtime), "the engine to run the job after the bug")

        async def cron_back() -> bool:
            task = runtime.cron._task
            return not runtime.task_errors and task is not None and not task.done()

        await until(cron_back, "the cron task to be restarted", 30)
        r = await client.get("/readyz")
        assert r.status_code == 200, r.text


async def _done(runtime: Runtime) -> bool:
    return await runtime.state.get("done", "jobs") == 1


async def test_claims_that_keep_failing_while_writes_work_make_readyz_503(tmp_path, caplog):
    steps = write_steps(tmp_path / "s", STEPS)
    settings = Settings(steps=[steps], db=tmp_path / "c.db", mode="dev", poll_interval=0.02)
    caplog.set_level(logging.ERROR)
    backend = _BuggyBackend(settings)
    backend.bugs["claim"] = 1_000_000  # until the test mends it
    runtime = Runtime(settings, backend=backend)
    transport = httpx.ASGITransport(app=create_app(runtime, manage=False))
    async with (
        runtime,
        httpx.AsyncClient(transport=transport, base_url="http://stepline.test") as client,
    ):
        # The API still stores what it accepts; nothing is processed.
        assert (await client.post("/take", json={"i": 1})).status_code == 202

        async def unready() -> bool:
            r = await client.get("/readyz")
            return r.status_code == 503 and "cannot claim work" in r.text

        await until(unready, "/readyz to say the engine cannot claim")
        r = await client.get("/healthz")
        assert r.status_code == 503 and "KeyError: 'a bug in claim'" in r.text, r.text
        backend.bugs["claim"] = 0
        await until(lambda: _done(runtime), "the job to run once claims work again")

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await until(ready, "/readyz to be 200 after the engine's next claim")
