"""The HTTP surface in-process: admin API input errors, masking, handler failures."""

from __future__ import annotations

from app.testing import Harness
from tests.support import write_steps

STEPS = {
    "login_step.py": """
        config = {"type": "api", "name": "Login", "path": "/login", "method": "POST",
                  "emits": ["user.login"]}

        async def handler(req, ctx):
            ctx.logger.info("login", user=req.body["user"], password=req.body["password"])
            await ctx.emit("user.login", {"user": req.body["user"]})
            if req.body["user"] == "crash":
                raise RuntimeError("handler bug")
            return {"status": 200, "body": {"ok": True}, "headers": {"x-extra": "1"}}
    """,
    "audit_step.py": """
        config = {"type": "event", "name": "Audit", "subscribes": ["user.login"]}

        async def handler(data, ctx):
            ctx.logger.info("audit", token="ghp_" + "a" * 36)
    """,
}


async def test_traces_and_logs_are_served_with_secrets_masked(tmp_path):
    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        r = await app.post("/login", json={"user": "ann", "password": "hunter2"})
        assert r.status_code == 200 and r.headers["x-extra"] == "1"
        await app.drain()
        trace = (await app.get(f"/_stepline/traces/{r.headers['x-trace-id']}")).json()
        assert [s["step"] for s in trace["spans"]] == ["Login", "Audit"]
        assert trace["spans"][0]["emitted"] == ["user.login"]
        text = str(trace["logs"])
        assert "hunter2" not in text and "ghp_" not in text and "***" in text
        listed = (await app.get("/_stepline/traces")).json()["traces"]
        assert listed[0]["trace_id"] == r.headers["x-trace-id"] and listed[0]["status"] == "ok"


async def test_a_failing_handler_answers_500_with_its_trace_and_emits_nothing(tmp_path):
    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        r = await app.post("/login", json={"user": "crash", "password": "x"})
        assert r.status_code == 500 and r.headers["x-trace-id"] in r.json()["error"]
        await app.drain()
        assert app.emitted("user.login") == []
        spans = await app.spans(trace_id=r.headers["x-trace-id"])
        assert spans[0].status == "failed" and "handler bug" in spans[0].error


async def test_hostile_bodies_get_400_not_500(tmp_path):
    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        for body in (b"[" * 200_000, b"\xff\xfe", b'{"user": '):
            r = await app.post("/login", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400, (body[:10], r.text)


async def test_admin_api_rejects_bad_input_with_4xx(tmp_path):
    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        bad_ttl = await app.request("PUT", "/_stepline/state/g/k", json={"value": 1, "ttl": -5})
        assert bad_ttl.status_code == 422
        assert (await app.request("DELETE", "/_stepline/state/g/missing")).status_code == 404
        assert (await app.get("/_stepline/traces/nope")).status_code == 404
        emit = await app.post("/_stepline/emit", json={"topic": "nobody", "data": {}})
        assert emit.status_code == 404 and "no step subscribes" in emit.json()["error"]
        replay = await app.post("/_stepline/events/replay", json={"ids": ["12345"]})
        assert replay.status_code == 404
        cross = await app.post(
            "/_stepline/emit",
            json={"topic": "user.login", "data": {}},
            headers={"origin": "http://evil.example"},
        )
        assert cross.status_code == 403


async def test_admin_bounds_and_client_trace_ids(tmp_path):
    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        for query in ("limit=99999999999999999999", "limit=-1", "limit=0"):
            assert (await app.get(f"/_stepline/traces?{query}")).status_code == 422
        huge_ttl = await app.request("PUT", "/_stepline/state/g/k", json={"value": 1, "ttl": 1e308})
        assert huge_ttl.status_code == 422
        deep = ('{"topic": "user.login", "data": ' + "[" * 900 + "]" * 900 + "}").encode()
        nested = await app.post(
            "/_stepline/emit", content=deep, headers={"content-type": "application/json"}
        )
        assert nested.status_code == 400 and "nested deeper than" in nested.json()["error"]
        ok = await app.post(
            "/login", json={"user": "a", "password": "b"}, headers={"x-trace-id": "order-42"}
        )
        assert ok.headers["x-trace-id"] == "order-42"
        hostile = await app.post(
            "/login", json={"user": "a", "password": "b"}, headers={"x-trace-id": "../../x' OR 1=1"}
        )
        assert hostile.status_code == 200 and hostile.headers["x-trace-id"] != "../../x' OR 1=1"
        plain = await app.post(
            "/login",
            content=b'{"user": "a", "password": "b"}',
            headers={"content-type": "text/plain"},
        )
        assert plain.status_code == 200


KEYED = {
    "keyed_step.py": """
        def pull_request(data):
            return data["number"]

        config = {"type": "event", "name": "Keyed", "subscribes": ["pr.changed"],
                  "key": pull_request, "concurrency_per_key": 1,
                  "debounce": {"seconds": 5, "key": lambda data: data["repo"]}}

        async def handler(data, ctx):
            pass
    """,
}


async def test_a_step_keyed_by_a_function_is_listed_with_its_name(tmp_path):
    # The Workbench reads /_stepline/steps first: a key function must not make it a 500.
    async with Harness([write_steps(tmp_path / "s", KEYED)]) as app:
        r = await app.get("/_stepline/steps")
        assert r.status_code == 200, r.text
        (step,) = r.json()["steps"]
        assert step["key"] == "pull_request()" and step["debounce"]["key"] == "fn()"
        assert step["debounce"]["seconds"] == 5 and step["concurrency_per_key"] == 1
