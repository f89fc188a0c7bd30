"""The `Retry` window (STEPLINE_RETRY_WINDOW) counts from a delivery's first run, not from its
emit: a delayed emit of days, or a delivery that waited long for its key, may still say
"later" without using up an attempt, while a provider saying "later" forever still ends in a
dead letter. Run against every backend, on the runtime's injected clock."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support import until

DAY = 24 * 3600
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()

LATER = {
    "kick_step.py": """
        config = {"type": "event", "name": "Kick", "subscribes": ["kick"], "emits": ["ask"]}

        async def handler(data, ctx):
            await ctx.emit("ask", data, delay=data["delay"])
    """,
    "provider_step.py": """
        config = {"type": "event", "name": "Provider", "subscribes": ["ask"], "emits": [],
                  "retries": 1, "key": "k", "concurrency_per_key": 1}

        async def handler(data, ctx):
            runs = await ctx.state.increment("runs", str(data["i"]))
            if data.get("hold") and not await ctx.state.get("gate", "open"):
                ctx.retry_after(5, "on hold")  # keeps its key, and its attempt
            if runs <= data["later"]:
                ctx.retry_after(30, "429 Too Many Requests, Retry-After: 30")
            await ctx.state.set("attempt", str(data["i"]), ctx.attempt)
    """,
}


async def _runs(app, i: int) -> int:
    return await app.state.get("runs", str(i)) or 0


async def _ended(app, n: int) -> bool:
    """True once `n` runs of Provider have ended, their outcomes (and due times) committed."""
    await app.runtime.writer.flush()
    return len(await app.spans(step="Provider")) >= n


async def test_a_delayed_emit_of_two_days_may_still_say_later(make_app):
    clock = [START]
    async with make_app(LATER, clock=lambda: clock[0]) as app:
        await app.emit("kick", {"i": 1, "k": "a", "delay": 2 * DAY, "later": 1})
        await until("the delayed delivery", lambda: app.runtime.backend.pending("Provider"))
        clock[0] = START + 2 * DAY + 1
        app.runtime.engine.wake(None)
        await until("its first run to say later", lambda: _ended(app, 1))
        assert await app.dead_letters() == []
        clock[0] += 31
        await app.drain()
        # retries=1: the "later" did not use the one attempt, though the emit is 2 days old.
        assert await app.dead_letters() == []
        assert (await _runs(app, 1), await app.state.get("attempt", "1")) == (2, 1)


async def test_saying_later_for_longer_than_the_window_ends_in_a_dead_letter(make_app):
    clock = [START]
    async with make_app(LATER, clock=lambda: clock[0], retry_window=100) as app:
        await app.emit("kick", {"i": 1, "k": "a", "delay": 2 * DAY, "later": 1000})
        await until("the delayed delivery", lambda: app.runtime.backend.pending("Provider"))
        clock[0] = START + 2 * DAY
        for n in range(1, 5):  # runs at +0, +30, +60, +90 s: inside the window of 100 s
            app.runtime.engine.wake(None)
            await until(f"run {n} to say later", lambda n=n: _ended(app, n))
            assert await app.dead_letters() == []
            clock[0] += 30
        await app.drain()  # the run at +120 s is past the window: its "later" counts
        (dead,) = await app.dead_letters()
        assert await _runs(app, 1) == 5 and "Retry-After" in dead.error


async def test_a_delivery_that_waited_a_day_for_its_key_may_still_say_later(make_app):
    clock = [START]
    async with make_app(LATER, clock=lambda: clock[0]) as app:
        await app.emit("kick", {"i": 1, "k": "a", "delay": 0, "later": 0, "hold": True})
        await until("the first delivery to hold its key", lambda: _ended(app, 1))
        await app.emit("kick", {"i": 2, "k": "a", "delay": 0, "later": 1})
        await until("the second delivery", lambda: _pending_is(app, 2))
        clock[0] += DAY + 60  # the second has waited a day behind the first
        await app.state.set("gate", "open", True)
        app.runtime.engine.wake(None)
        await until("the second's first run to say later", lambda: _ended(app, 3))
        assert await app.state.get("attempt", "1") == 1
        assert await app.dead_letters() == []
        clock[0] += 31
        await app.drain()
        assert await app.dead_letters() == []
        assert (await _runs(app, 2), await app.state.get("attempt", "2")) == (2, 1)


async def _pending_is(app, n: int) -> bool:
    await app.runtime.writer.flush()
    return await app.runtime.backend.pending("Provider") == n


async def test_a_replayed_dead_letter_starts_a_new_window(make_app):
    clock = [START]
    async with make_app(LATER, clock=lambda: clock[0], retry_window=50) as app:
        await app.emit("kick", {"i": 1, "k": "a", "delay": 0, "later": 1000})
        for n in (1, 2):  # runs at +0 and +30 s say later inside the window
            await until(f"run {n} to say later", lambda n=n: _ended(app, n))
            clock[0] += 30
            app.runtime.engine.wake(None)
        [dead] = await until("the run at +60 s to be dead-lettered", app.dead_letters)
        clock[0] += 1000
        assert await app.runtime.backend.replay([dead.id]) == 1
        app.runtime.engine.wake(None)
        await until("the replayed run", lambda: _ended(app, 4))
        # Its "later" is inside the new window: scheduled again, not dead at once.
        assert await app.dead_letters() == []
        assert await _runs(app, 1) == 4
