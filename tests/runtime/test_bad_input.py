"""Bad input is a 4xx with a reason on every route, before any handler or check runs: huge
integers, non-finite numbers, deep nesting, lone surrogates and NUL, hostile ids and paths."""

from __future__ import annotations

import sqlite3

import pytest

from app.testing import Harness
from tests.support import write_steps

STEPS = {
    "hook_step.py": """
        config = {"type": "api", "name": "Hook", "path": "/webhooks/thing", "method": "POST",
                  "emits": ["thing.seen"]}

        async def handler(req, ctx):
            # A webhook checks its signature here; bad bodies must be refused before.
            await ctx.emit("thing.seen", {"body": req.body})
            return {"status": 202, "body": {"trace_id": ctx.trace_id}}
    """,
    "seen_step.py": """
        config = {"type": "event", "name": "Seen", "subscribes": ["thing.seen"]}

        async def handler(data, ctx):
            pass
    """,
}

HOSTILE = {
    "an integer of 5,000 digits": b'{"n": ' + b"7" * 5000 + b"}",
    "a 4,301-digit integer at the top": b"1" * 4301,
    "an infinite float": b'{"x": 1e999}',
    "NaN": b'{"x": NaN}',
    "-Infinity": b"[-Infinity]",
    "a lone surrogate": b'{"name": "\\ud800"}',
    "a lone low surrogate as a key": b'{"\\udc00": 1}',
    "a NUL character": b'{"name": "a\\u0000b"}',
    "a surrogate sent as UTF-8 bytes": b'{"name": "\xed\xa0\x80"}',
    "a lone surrogate in a UTF-16 body": '{"name": "\\ud800"}'.encode("utf-16"),
    "nesting 201 deep": b"[" * 201 + b"]" * 201,
    "nesting 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("what", list(HOSTILE))
async def test_a_hostile_json_body_is_400_with_a_reason(tmp_path, what):
    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        r = await app.post(
            "/webhooks/thing", content=HOSTILE[what], headers={"content-type": "application/json"}
        )
        assert r.status_code == 400, (what, r.status_code, r.text)
        assert r.json()["error"].startswith("request body is not valid JSON: ")
        assert app.emitted("thing.seen") == []


async def test_valid_unicode_and_escapes_still_pass(tmp_path):
    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        body = (
            '{"emoji": "\\ud83d\\ude00", "slash": "\\\\ud800", "deep": '
            + "[" * 150
            + "]" * 150
            + ', "big": '
            + "9" * 4300
            + "}"
        )
        r = await app.post(
            "/webhooks/thing", content=body.encode(), headers={"content-type": "application/json"}
        )
        assert r.status_code == 202, r.text
        await app.drain()
        data = app.emitted("thing.seen")[0].data["body"]
        assert data["emoji"] == "\U0001f600" and data["slash"] == "\\ud800"


async def test_a_replay_id_must_be_ascii_digits_in_range(tmp_path):
    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        for ids in (["1" * 29], ["\u0663"], ["-1"], [""], ["12a"]):
            r = await app.post("/_stepline/events/replay", json={"ids": ids})
            assert r.status_code == 422, (ids, r.text)
            assert "ids" in r.text


async def test_admin_json_errors_are_400_and_oversize_chunked_bodies_413(tmp_path):
    async with Harness([write_steps(tmp_path / "s", STEPS)], body_limit=1000) as app:
        broken = await app.post(
            "/_stepline/emit", content=b'{"topic": ', headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]

        async def chunks():
            for _ in range(20):
                yield b" " * 100

        big = await app.post(
            "/_stepline/emit", content=chunks(), headers={"content-type": "application/json"}
        )
        assert big.status_code == 413 and "STEPLINE_BODY_LIMIT" in big.json()["error"]
        lone = await app.post(
            "/_stepline/emit",
            content=b'{"topic": "thing.seen", "key": "\\ud800", "data": {}}',
            headers={"content-type": "application/json"},
        )
        assert lone.status_code == 400 and "surrogate" in lone.json()["error"]
        state = await app.request(
            "PUT",
            "/_stepline/state/g/k",
            content=b'{"value": 1e999}',
            headers={"content-type": "application/json"},
        )
        assert state.status_code == 400 and "out of range" in state.json()["error"]


async def test_workbench_static_path_with_nul_is_404(tmp_path):
    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        for path in ("/workbench/static/%00.js", "/workbench/static/a%00b.css"):
            r = await app.get(path)
            assert r.status_code == 404, (path, r.text)


async def test_non_finite_state_is_refused_with_a_reason(tmp_path):
    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        for value in (float("inf"), float("nan"), {"a": [float("-inf")]}):
            with pytest.raises(ValueError, match="NaN or Infinity"):
                await app.state.set("g", "k", value)
        assert await app.state.get("g", "k") is None


ODD_RESPONSES = {
    "odd_step.py": """
        config = {"type": "api", "name": "Odd", "path": "/odd/{what}", "method": "GET"}

        async def handler(req, ctx):
            if req.path_params["what"] == "nan":
                return {"score": float("nan")}
            return {"text": "a" + chr(0xD800) + "b"}
    """,
}


async def test_a_non_finite_response_is_a_handler_error_that_says_so(tmp_path):
    async with Harness([write_steps(tmp_path / "s", ODD_RESPONSES)]) as app:
        r = await app.get("/odd/nan")
        assert r.status_code == 500 and r.headers["x-trace-id"] in r.json()["error"]
        await app.drain()
        (span,) = await app.spans(trace_id=r.headers["x-trace-id"])
        assert span.status == "failed" and "NaN or Infinity" in (span.error or "")
        escaped = await app.get("/odd/surrogate")
        assert escaped.status_code == 200 and escaped.json() == {"text": "a\ud800b"}


FAILING = {
    "fail_step.py": """
        config = {"type": "event", "name": "Fail", "subscribes": ["x"], "retries": 1}

        async def handler(data, ctx):
            raise RuntimeError("always")
    """
}


async def test_replay_takes_only_ascii_row_ids(tmp_path):
    async with Harness([write_steps(tmp_path / "s", FAILING)]) as app:
        for i in range(3):
            await app.emit("x", {"i": i})
        await app.drain()
        dead = await app.dead_letters()
        assert len(dead) == 3
        arabic = "".join(chr(0x0660 + int(c)) for c in dead[0].id)  # the same number
        for ids in ([arabic], ["9" * 29], [dead[0].id + "\u00b2"]):
            assert await app.replay(ids) == 0, ids
        assert len(await app.dead_letters()) == 3
        assert await app.replay([dead[0].id]) == 1


async def test_replay_takes_more_ids_than_sqlite_takes_parameters(make_app):
    # A dead-letter list of a big outage, replayed by id: with one parameter an id, past
    # SQLite's bound on parameters the replay failed with "too many SQL variables" (a 500).
    async with make_app(FAILING) as app:
        for i in range(2):
            await app.emit("x", {"i": i})
        await app.drain()
        dead = [d.id for d in await app.dead_letters()]
        # SQLite's own bound on this machine (32,766 by default, builds raise it).
        most = sqlite3.connect(":memory:").getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        others = [str(n) for n in range(10**7, 10**7 + most + 10)]  # ids no letter has
        r = await app.post("/_stepline/events/replay", json={"ids": [*others, *dead]})
        assert r.status_code == 200 and r.json() == {"replayed": 2}, r.text
