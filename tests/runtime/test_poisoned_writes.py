"""One bad request or run never fails the others: a lone surrogate sent among normal requests is
refused alone at the edge, and a run whose result cannot be stored (a lone surrogate in a log
line or an emit key, NaN in emitted data) is set aside while everything committed with it is
stored, with zero reruns. Both backends."""

from __future__ import annotations

import asyncio

STEPS = {
    "ingest_step.py": """
        config = {"type": "api", "name": "Ingest", "path": "/ingest", "method": "POST",
                  "emits": ["item"]}

        async def handler(req, ctx):
            ctx.logger.info(f"ingesting {req.body['name']}")
            await ctx.emit("item", req.body, key=f"item-{req.body['i']}")
            return {"status": 202, "body": {"trace_id": ctx.trace_id}}
    """,
    "handle_step.py": """
        config = {"type": "event", "name": "Handle", "subscribes": ["item"], "emits": ["out"],
                  "retries": 3}

        async def handler(data, ctx):
            await ctx.state.increment("runs", str(data["i"]))
            poison = data.get("poison")
            # Text from outside (a mail header read with surrogateescape, say) can carry a
            # lone surrogate that no UTF-8 store accepts.
            bad = "name-" + chr(0xD800)
            ctx.logger.info(f"handling {bad if poison == 'log' else data['name']}")
            if poison == "key":
                await ctx.emit("out", {"i": data["i"]}, key=bad)
            elif poison == "nan":
                await ctx.emit("out", {"i": data["i"], "score": float("nan")})
            else:
                await ctx.emit("out", {"i": data["i"]})
    """,
    "out_step.py": """
        config = {"type": "event", "name": "Out", "subscribes": ["out"]}

        async def handler(data, ctx):
            await ctx.state.increment("out", str(data["i"]))
    """,
}


async def test_a_lone_surrogate_among_normal_requests_fails_only_itself(make_app):
    async with make_app(STEPS) as app:
        bodies = [b'{"i": %d, "name": "user %d"}' % (i, i) for i in range(60)]
        bodies[17] = b'{"i": 17, "name": "\\ud800"}'
        replies = await asyncio.gather(
            *(
                app.post("/ingest", content=b, headers={"content-type": "application/json"})
                for b in bodies
            )
        )
        codes = [r.status_code for r in replies]
        assert codes[17] == 400 and "surrogate" in replies[17].json()["error"]
        assert codes[:17] + codes[18:] == [202] * 59
        await app.drain(30)
        runs = await app.state.list("runs")
        assert runs == {str(i): 1 for i in range(60) if i != 17}
        assert await app.state.list("out") == runs
        assert await app.dead_letters() == []


async def test_an_unstorable_run_is_set_aside_and_the_rest_commit_once(make_app):
    async with make_app(STEPS) as app:
        poisons = {5: "log", 23: "key", 41: "nan"}
        await asyncio.gather(
            *(
                app.emit("item", {"i": i, "name": f"user {i}", "poison": poisons.get(i)})
                for i in range(60)
            )
        )
        await app.drain(30)
        runs = await app.state.list("runs")
        assert runs == {str(i): 1 for i in range(60)}, "a run was repeated"
        out = await app.state.list("out")
        # The bad log line is stored escaped; the run itself succeeded.
        assert out == {str(i): 1 for i in range(60) if i not in (23, 41)}
        dead = {d.data["i"]: d for d in await app.dead_letters()}
        assert sorted(dead) == [23, 41]
        for d in dead.values():
            assert d.step == "Handle" and "could not be stored" in d.error
        assert "surrogate" in dead[23].error
        assert "NaN or Infinity" in dead[41].error
        texts = [e.message for e in await app.logs(step="Handle")]
        assert "handling name-\\ud800" in texts
        handled = [s for s in await app.spans(step="Handle") if s.status != "ok"]
        assert {s.attempt for s in await app.spans(step="Handle")} == {1}
        assert len(handled) == 2 and all("could not be stored" in (s.error or "") for s in handled)


BAD_API = {
    "keyed_step.py": """
        config = {"type": "api", "name": "Keyed", "path": "/keyed/{n}", "method": "POST",
                  "emits": ["item"]}

        async def handler(req, ctx):
            n = int(req.path_params["n"])
            # A key built from outside text that carries a lone surrogate.
            key = f"k-{n}" + (chr(0xDC80) if n == 7 else "")
            await ctx.emit("item", {"i": n, "name": "x"}, key=key)
            return {"status": 202}
    """,
    "handle_step.py": STEPS["handle_step.py"],
    "out_step.py": STEPS["out_step.py"],
}


async def test_an_api_handler_emitting_what_cannot_be_stored_gets_500_alone(make_app):
    async with make_app(BAD_API) as app:
        replies = await asyncio.gather(*(app.post(f"/keyed/{n}") for n in range(30)))
        codes = [r.status_code for r in replies]
        assert codes[7] == 500 and "cannot be stored" in replies[7].json()["error"]
        assert codes[:7] + codes[8:] == [202] * 29
        await app.drain(30)
        assert await app.state.list("runs") == {str(n): 1 for n in range(30) if n != 7}


ODD_FIELDS = {
    "score_step.py": """
        config = {"type": "event", "name": "Score", "subscribes": ["mail"], "retries": 3}

        async def handler(data, ctx):
            await ctx.state.increment("runs", str(data["i"]))
            # A score that came out NaN, a header read with surrogateescape: worth logging.
            ctx.logger.info("scored", score=float("nan"), top=[float("inf")],
                            subject="re: " + chr(0xDC80))
    """,
}


async def test_odd_log_fields_neither_fail_the_run_nor_the_log_views(make_app):
    async with make_app(ODD_FIELDS) as app:
        await app.emit("mail", {"i": 1})
        await app.drain(30)
        assert await app.state.list("runs") == {"1": 1}
        assert await app.dead_letters() == []
        r = await app.get("/_stepline/logs", params={"step": "Score"})
        assert r.status_code == 200, r.text
        fields = [e["fields"] for e in r.json()["logs"] if e["message"] == "scored"]
        assert fields == [{"score": "nan", "top": ["inf"], "subject": "re: \\udc80"}]
