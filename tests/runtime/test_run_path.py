"""The one run path: middleware hooks in order, and the outcomes a handler can raise
(`Permanent`, `Retry`), on every backend."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from app import Middleware, Permanent, Retry, Run
from app.types import Batch

FLAKY = {
    "ok_step.py": """
        config = {"type": "event", "name": "Fine", "subscribes": ["go"], "emits": ["done"]}

        async def handler(data, ctx):
            await ctx.emit("done", data)
    """,
    "done_step.py": """
        config = {"type": "event", "name": "Done", "subscribes": ["done"]}

        async def handler(data, ctx):
            pass
    """,
    "bad_step.py": """
        config = {"type": "event", "name": "Bad", "subscribes": ["bad"], "retries": 2}

        async def handler(data, ctx):
            raise ValueError("boom")
    """,
}


class Recorder(Middleware):
    def __init__(self, name: str, calls: list[tuple[str, str, str]]) -> None:
        self.name = name
        self.calls = calls

    def before_run(self, run: Run) -> None:
        self.calls.append((self.name, "before", run.name))

    def on_error(self, run: Run, exc: BaseException) -> None:
        self.calls.append((self.name, "error", f"{run.name}:{type(exc).__name__}"))

    def after_run(self, run: Run, outcome: str) -> None:
        self.calls.append((self.name, "after", f"{run.name}:{outcome}"))

    def on_commit(self, batch: Batch) -> None:
        self.calls.append((self.name, "commit", ",".join(sorted(s.step for s in batch.spans))))


class Broken(Middleware):
    def before_run(self, run: Run) -> None:
        raise RuntimeError("a broken metric")

    def after_run(self, run: Run, outcome: str) -> None:
        raise RuntimeError("another broken metric")


async def test_hooks_run_in_order_and_in_reverse(make_app):
    calls: list[tuple[str, str, str]] = []
    h = make_app(FLAKY)
    h.runtime.add_middleware(Recorder("a", calls))
    h.runtime.add_middleware(Recorder("b", calls))
    async with h:
        await h.emit("go", {"n": 1})
        await h.drain()
    runs = [c for c in calls if c[1] != "commit" and c[2].startswith("Fine")]
    assert runs == [
        ("a", "before", "Fine"),
        ("b", "before", "Fine"),
        ("b", "after", "Fine:ok"),
        ("a", "after", "Fine:ok"),
    ]
    commits = [c for c in calls if c[1] == "commit" and "Fine" in c[2]]
    assert [c[0] for c in commits] == ["b", "a"]  # after the run's writes were durable
    assert ("a", "after", "Done:ok") in calls


async def test_on_error_sees_the_exception_and_after_run_the_outcome(make_app):
    calls: list[tuple[str, str, str]] = []
    h = make_app(FLAKY)
    h.runtime.add_middleware(Recorder("a", calls))
    async with h:
        await h.emit("bad", {})
        await h.drain()
    mine = [c for c in calls if c[1] in ("error", "after")]
    assert mine == [
        ("a", "error", "Bad:ValueError"),
        ("a", "after", "Bad:retry"),
        ("a", "error", "Bad:ValueError"),
        ("a", "after", "Bad:dead"),
    ]


async def test_a_failing_hook_is_logged_and_the_run_goes_on(make_app, caplog):
    h = make_app(FLAKY)
    h.runtime.add_middleware(Broken())
    with caplog.at_level(logging.ERROR, logger="stepline.middleware"):
        async with h:
            await h.emit("go", {"n": 1})
            await h.drain()
            assert [s.status for s in await h.spans() if s.step == "Fine"] == ["ok"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("Broken.before_run failed for a run of Fine" in m for m in messages)
    assert any("Broken.after_run failed for a run of Fine" in m for m in messages)


async def test_middleware_may_refuse_a_run_with_permanent(make_app):
    class Refuse(Middleware):
        def before_run(self, run: Run) -> None:
            if run.name == "Fine":
                raise Permanent("refused by policy: Fine is switched off")

    h = make_app(FLAKY)
    h.runtime.add_middleware(Refuse())
    async with h:
        await h.emit("go", {"n": 1})
        await h.drain()
        dead = await h.dead_letters()
        assert [d.step for d in dead] == ["Fine"] and dead[0].attempts == 1
        assert "refused by policy" in dead[0].error
        assert h.emitted("done") == []


OUTCOMES = {
    "permanent_step.py": """
        from app import Permanent

        config = {"type": "event", "name": "Misconfigured", "subscribes": ["p"], "retries": 5}

        async def handler(data, ctx):
            await ctx.state.increment("runs", "misconfigured")
            raise Permanent("SLACK_CHANNEL is not set: set it or turn the flow off")
    """,
    "later_step.py": """
        from app import Retry

        config = {"type": "event", "name": "Later", "subscribes": ["r"], "retries": 2}

        async def handler(data, ctx):
            runs = await ctx.state.increment("runs", "later")
            await ctx.state.set("attempts", str(runs), ctx.attempt)
            if runs <= data["asks"]:
                raise Retry(delay=data["delay"], reason="provider said Retry-After")
            if data.get("fail_after"):
                raise RuntimeError("now really failing")
    """,
    "api_step.py": """
        from app import Retry

        config = {"type": "api", "name": "Busy", "path": "/busy", "method": "POST"}

        async def handler(req, ctx):
            raise Retry(delay=7.2, reason="the upstream is rate limited")
    """,
}


async def test_permanent_dead_letters_at_once_with_the_reason(make_app):
    async with make_app(OUTCOMES) as h:
        await h.emit("p", {})
        await h.drain()
        assert await h.state.get("runs", "misconfigured") == 1
        (dead,) = await h.dead_letters()
        assert dead.attempts == 1 and "SLACK_CHANNEL is not set" in dead.error


async def test_retry_does_not_use_up_attempts(make_app):
    async with make_app(OUTCOMES) as h:
        # Four "later"s with retries=2: plain failures would have dead-lettered after two.
        await h.emit("r", {"asks": 4, "delay": 0.01})
        await h.drain()
        assert await h.dead_letters() == []
        assert await h.state.get("runs", "later") == 5
        attempts = [await h.state.get("attempts", str(i)) for i in range(1, 6)]
        assert attempts == [1, 1, 1, 1, 1]
        statuses = [s.status for s in await h.spans() if s.step == "Later"]
        assert statuses == ["retrying"] * 4 + ["ok"]


async def test_retry_waits_the_delay_it_asks_for(make_app):
    async with make_app(OUTCOMES) as h:
        await h.emit("r", {"asks": 1, "delay": 3600})
        deadline = time.monotonic() + 10
        while await h.state.get("runs", "later") != 1 or h.runtime.engine.in_flight:
            assert time.monotonic() < deadline, "the first run of Later never finished"
            await asyncio.sleep(0.01)
        await h.runtime.writer.flush()
        (item,) = [q for q in await h.runtime.backend.queued(10) if q["step"] == "Later"]
        assert item["status"] == "scheduled"
        assert item["due"] - time.time() > 3000


async def test_retry_past_the_year_9999_is_refused_as_a_delayed_emit_is(make_app):
    # A due time past datetime's range left the delivery waiting for a key it did not have
    # (NaN in the Workbench): the handler's Retry(delay=1e308) now fails that run, saying why,
    # and the next attempt comes after the usual backoff.
    async with make_app(OUTCOMES) as h:
        await h.emit("r", {"asks": 1, "delay": 1e308})
        await h.drain()
        assert await h.state.get("runs", "later") == 2
        assert await h.dead_letters() == []
        errors = [s.error or "" for s in await h.spans() if s.step == "Later"]
        assert any("past the end of the year 9999" in e for e in errors), errors
    with pytest.raises(ValueError, match="year 9999"):
        Retry(delay=10**400)  # an int past float's range: not an OverflowError


async def test_plain_failures_after_retries_still_count_their_own_attempts(make_app):
    async with make_app(OUTCOMES) as h:
        await h.emit("r", {"asks": 2, "delay": 0.01, "fail_after": True})
        await h.drain()
        (dead,) = await h.dead_letters()
        # Two Retry runs, then two counted failures (retries=2).
        assert await h.state.get("runs", "later") == 4
        assert dead.attempts == 2 and "now really failing" in dead.error


async def test_retry_past_the_window_counts_as_an_attempt(make_app):
    async with make_app(OUTCOMES, retry_window=1e-6) as h:
        await h.emit("r", {"asks": 10, "delay": 0.01})
        await h.drain()
        (dead,) = await h.dead_letters()
        assert await h.state.get("runs", "later") == 2 and dead.attempts == 2
        assert "Retry-After" in dead.error


async def test_api_handler_asking_to_retry_gets_503_with_retry_after(make_app):
    async with make_app(OUTCOMES) as h:
        response = await h.post("/busy", json={})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "8"
        assert "rate limited" in response.json()["error"]


REFUSING = {
    "refuse_step.py": """
        from app import Permanent, Retry

        config = {"type": "api", "name": "Refuse", "path": "/refuse", "method": "POST"}

        async def handler(req, ctx):
            if req.body.get("later"):
                raise Retry(reason="the mailbox is being synced")
            raise Permanent("the account named is closed: send another account id")
    """,
}


async def test_api_permanent_is_a_422_with_the_reason_and_retry_always_says_when(make_app):
    class Gate(Middleware):
        def before_run(self, run: Run) -> None:
            if run.request is not None and run.request.query.get("gate") == "shut":
                raise Permanent("refused by policy: the gate is shut")

    h = make_app(REFUSING)
    h.runtime.add_middleware(Gate())
    async with h:
        refused = await h.post("/refuse", json={})
        assert refused.status_code == 422
        assert refused.json()["error"] == (
            "Refuse refused the request: the account named is closed: send another account id"
        )
        gated = await h.post("/refuse?gate=shut", json={"later": True})
        assert gated.status_code == 422 and "the gate is shut" in gated.json()["error"]
        later = await h.post("/refuse", json={"later": True})
        assert later.status_code == 503 and int(later.headers["retry-after"]) >= 1
        assert "being synced" in later.json()["error"]
