"""The delivery contract, run against every backend."""

from __future__ import annotations

import asyncio

CHAIN = {
    "start_step.py": """
        from pydantic import BaseModel

        class Order(BaseModel):
            id: int

        config = {"type": "api", "name": "Start", "path": "/orders", "method": "POST",
                  "body": Order, "emits": ["order.placed"]}

        async def handler(req, ctx):
            await ctx.emit("order.placed", req.body)
            return {"status": 202, "body": {"trace_id": ctx.trace_id}}
    """,
    "charge_step.py": """
        config = {"type": "event", "name": "Charge", "subscribes": ["order.placed"],
                  "emits": ["order.charged"]}

        async def handler(data, ctx):
            await ctx.emit("order.charged", {"id": data["id"], "paid": True})
    """,
    "ship_step.py": """
        config = {"type": "event", "name": "Ship", "subscribes": ["order.charged"]}

        def handler(data, ctx):  # a plain def runs in a thread with a blocking context
            ctx.state.set("shipped", str(data["id"]), data)
    """,
}


async def test_chain_runs_every_step_under_one_trace(make_app):
    async with make_app(CHAIN) as app:
        response = await app.post("/orders", json={"id": 7})
        assert response.status_code == 202
        trace_id = response.json()["trace_id"]
        assert response.headers["x-trace-id"] == trace_id
        await app.drain()
        assert await app.state.get("shipped", "7") == {"id": 7, "paid": True}
        spans = await app.spans(trace_id=trace_id)
        assert [s.step for s in spans] == ["Start", "Charge", "Ship"]
        assert all(s.status == "ok" for s in spans)


async def test_api_emit_is_stored_before_the_response(make_app):
    async with make_app(CHAIN) as app:
        await app.runtime.engine.stop(0)  # nothing consumes: the emit must sit in the store
        response = await app.post("/orders", json={"id": 1})
        assert response.status_code == 202
        assert await app.runtime.backend.pending("Charge") == 1


FAN_OUT = {
    "src_step.py": """
        config = {"type": "event", "name": "Source", "subscribes": ["go"], "emits": ["fan"]}

        async def handler(data, ctx):
            await ctx.emit("fan", data)
    """,
    "good_step.py": """
        config = {"type": "event", "name": "Good", "subscribes": ["fan"]}

        async def handler(data, ctx):
            await ctx.state.increment("runs", "good")
    """,
    "bad_step.py": """
        config = {"type": "event", "name": "Bad", "subscribes": ["fan"], "retries": 3}

        async def handler(data, ctx):
            await ctx.state.increment("runs", "bad")
            if await ctx.state.get("switch", "fixed") is None:
                raise RuntimeError("payment gateway down")
            await ctx.state.set("done", "bad", data)
    """,
}


async def test_failing_subscriber_retries_then_dead_letters_without_rerunning_others(make_app):
    async with make_app(FAN_OUT) as app:
        await app.emit("go", {"n": 1})
        await app.drain()
        assert await app.state.get("runs", "good") == 1
        assert await app.state.get("runs", "bad") == 3
        dead = await app.dead_letters()
        assert len(dead) == 1
        assert dead[0].step == "Bad" and dead[0].attempts == 3
        assert "payment gateway down" in dead[0].error
        assert "RuntimeError" in dead[0].traceback
        statuses = [s.status for s in await app.spans(step="Bad")]
        assert statuses == ["retrying", "retrying", "failed"]

        await app.state.set("switch", "fixed", True)
        assert await app.replay() == 1
        await app.drain()
        assert await app.state.get("done", "bad") == {"n": 1}
        assert await app.dead_letters() == []
        assert await app.state.get("runs", "good") == 1


async def test_idempotency_key_delivers_once(make_app):
    async with make_app(FAN_OUT) as app:
        for _ in range(3):
            await app.emit("go", {"n": 1}, key="delivery-123")
        await app.emit("go", {"n": 2}, key="delivery-456")
        await app.drain()
        assert await app.state.get("runs", "good") == 2


TIMEOUT = {
    "slow_step.py": """
        import asyncio

        config = {"type": "event", "name": "Slow", "subscribes": ["go"], "timeout": 0.1,
                  "retries": 2}

        async def handler(data, ctx):
            await ctx.state.increment("runs", "slow")
            await asyncio.sleep(5)
    """,
}


async def test_timeout_counts_as_a_failed_attempt(make_app):
    async with make_app(TIMEOUT) as app:
        await app.emit("go", {})
        await app.drain()
        dead = await app.dead_letters()
        assert len(dead) == 1 and "did not finish within 0.1 s" in dead[0].error
        assert await app.state.get("runs", "slow") == 2


UNDECLARED = {
    "emit_step.py": """
        config = {"type": "event", "name": "Sneaky", "subscribes": ["go"], "emits": ["ok"],
                  "retries": 1}

        async def handler(data, ctx):
            topic = "not." + "declared"
            await ctx.emit(topic, {})
    """,
}


async def test_emit_of_undeclared_topic_fails_the_run_with_a_clear_error(make_app):
    async with make_app(UNDECLARED) as app:
        await app.emit("go", {})
        await app.drain()
        dead = await app.dead_letters()
        assert "UndeclaredTopic" in dead[0].error
        assert "add 'not.declared' to `emits`" in dead[0].error


INPUT_MODEL = {
    "typed_step.py": """
        from pydantic import BaseModel

        class Payment(BaseModel):
            amount: int

        config = {"type": "event", "name": "Typed", "subscribes": ["pay"], "input": Payment}

        async def handler(data, ctx):
            await ctx.state.set("paid", "amount", data.amount)
    """,
}


async def test_input_model_parses_and_bad_data_is_dead_lettered_at_once(make_app):
    async with make_app(INPUT_MODEL) as app:
        await app.emit("pay", {"amount": 5})
        await app.emit("pay", {"amount": "lots"})
        await app.drain()
        assert await app.state.get("paid", "amount") == 5
        dead = await app.dead_letters()
        assert len(dead) == 1 and dead[0].attempts == 1
        assert "does not match Payment" in dead[0].error


async def test_many_events_are_each_handled_once(make_app):
    async with make_app(FAN_OUT) as app:
        await asyncio.gather(*(app.emit("go", {"n": i}) for i in range(300)))
        await app.drain(timeout=30)
        assert await app.state.get("runs", "good") == 300


CAPPED = {
    "capped_step.py": """
        import asyncio

        config = {"type": "event", "name": "Capped", "subscribes": ["go"], "concurrency": 2}
        RUNNING = [0]

        async def handler(data, ctx):
            RUNNING[0] += 1
            await ctx.state.update("cap", "max", lambda m: max(m or 0, RUNNING[0]))
            await asyncio.sleep(0.05)
            RUNNING[0] -= 1
    """,
}


async def test_step_concurrency_is_a_hard_cap(make_app):
    async with make_app(CAPPED) as app:
        for i in range(12):
            await app.emit("go", {"i": i})
        await app.drain(timeout=30)
        assert await app.state.get("cap", "max") == 2
        assert len(await app.spans(step="Capped")) == 12


async def test_healthz_is_503_when_the_backend_is_gone(make_app):
    async with make_app({}) as app:
        assert (await app.get("/healthz")).status_code == 200
        await app.runtime.backend.close()
        down = await app.get("/healthz")
        assert down.status_code == 503 and down.json()["status"] == "unavailable"
