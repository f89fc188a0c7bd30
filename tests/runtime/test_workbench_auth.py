"""The Workbench token in `start`: wrong tokens are logged and throttled per client, the sign-in
cookie is a session id revoked at sign-out (never the token), `/streams` needs the token too,
and a client cannot pick the trace its request joins."""

from __future__ import annotations

import logging

from app.testing import Harness
from tests.support import write_steps

TOKEN = "wb-token-0123456789abcdef"
STEPS = {
    "hello_step.py": """
        config = {"type": "api", "name": "Hello", "path": "/hello", "method": "GET"}

        async def handler(req, ctx):
            return {"trace_id": ctx.trace_id}
    """,
}


def start_app(tmp_path) -> Harness:
    return Harness([write_steps(tmp_path / "s", STEPS)], mode="start", workbench_token=TOKEN)


async def test_wrong_bearer_tokens_are_logged_and_throttled(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    async with start_app(tmp_path) as app:
        assert (await app.get("/_stepline/steps")).status_code == 401
        for i in range(10):
            r = await app.get("/_stepline/steps", headers={"authorization": f"Bearer guess{i}"})
            assert r.status_code == 401
        warnings = [
            r.getMessage()
            for r in caplog.records
            if "wrong Workbench token from 127.0.0.1" in r.getMessage()
        ]
        assert len(warnings) == 10 and not any("guess" in w for w in warnings)
        # Now even the right token waits: a guesser cannot tell a hit from the throttle.
        blocked = await app.get("/_stepline/steps", headers={"authorization": f"Bearer {TOKEN}"})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
        form = await app.post("/workbench/login", data={"token": TOKEN})
        assert form.status_code == 429 and "set-cookie" not in form.headers


async def test_the_cookie_is_a_session_revoked_at_sign_out(tmp_path):
    async with start_app(tmp_path) as app:
        wrong = await app.post("/workbench/login", data={"token": "nope"})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        ok = await app.post("/workbench/login", data={"token": TOKEN})
        assert ok.status_code == 303
        session = ok.cookies["stepline_session"]
        assert TOKEN not in ok.headers["set-cookie"] and len(session) >= 32
        app.client.cookies.clear()
        cookie = {"cookie": f"stepline_session={session}"}
        assert (await app.get("/_stepline/steps", headers=cookie)).status_code == 200
        out = await app.post("/workbench/logout", headers=cookie)
        assert out.status_code == 303
        assert (await app.get("/_stepline/steps", headers=cookie)).status_code == 401
        forged = {"cookie": f"stepline_session={TOKEN}"}
        assert (await app.get("/_stepline/steps", headers=forged)).status_code == 401


async def test_streams_need_the_token_in_start(tmp_path):
    async with start_app(tmp_path) as app:
        assert (await app.get("/streams/totals")).status_code == 401
        wrong = await app.get("/streams/totals", headers={"authorization": "Bearer x"})
        assert wrong.status_code == 401


async def test_a_client_trace_id_is_not_taken_in_start_but_a_traceparent_continues(tmp_path):
    async with start_app(tmp_path) as app:
        chosen = await app.get("/hello", headers={"x-trace-id": "someone-elses-trace"})
        assert chosen.status_code == 200
        assert chosen.json()["trace_id"] != "someone-elses-trace"
        parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        traced = await app.get("/hello", headers={"traceparent": parent})
        assert traced.json()["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        for bad in (
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "garbage",
        ):
            r = await app.get("/hello", headers={"traceparent": bad})
            assert r.json()["trace_id"] not in ("4bf92f3577b34da6a3ce929d0e0e4736", "0" * 32), bad


async def test_dev_still_takes_a_readable_trace_id(tmp_path):
    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        r = await app.get("/hello", headers={"x-trace-id": "order-42"})
        assert r.json()["trace_id"] == "order-42"
