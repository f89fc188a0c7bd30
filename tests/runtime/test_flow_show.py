"""What `stepline steps`, `/_stepline/events` and the Workbench show of flow control, on every
backend: each key and limit a step declares (a debounce's own key, a step key that only the
debounce uses, a key function by its name), and scheduled deliveries by due time, which a
backlog of older deliveries does not hide."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from typer.testing import CliRunner

from app.backends import create_backend
from app.cli import app as cli
from app.settings import Settings
from app.types import Batch, Message
from tests.runtime.redis_support import URL, new_prefix
from tests.support import until

KEYS = {
    "keys_step.py": """
        config = {"type": "event", "name": "OwnDebounceKey", "subscribes": ["a"], "emits": [],
                  "debounce": {"seconds": 30, "key": "thread"}}
        async def handler(data, ctx):
            pass
    """,
    "step_key_step.py": """
        config = {"type": "event", "name": "StepKeyDebounce", "subscribes": ["b"], "emits": [],
                  "key": "repo/number", "debounce": {"seconds": 20, "max_wait": 120}}
        async def handler(data, ctx):
            pass
    """,
    "fn_key_step.py": """
        def by_account(data):
            return data["account"]

        config = {"type": "event", "name": "FnKey", "subscribes": ["c"], "emits": [],
                  "concurrency": 4, "key": by_account, "concurrency_per_key": 1,
                  "rate_limit": {"per_minute": 30, "key": lambda d: d["installation"]}}
        async def handler(data, ctx):
            pass
    """,
}

SHOWN = {
    "OwnDebounceKey": "debounce 30 s per key thread",
    "StepKeyDebounce": "debounce 20 s, at most 120 s per key repo/number",
    "FnKey": "4 at a time per process; key by_account(): 1 at a time; "
    "at most 30 per minute per key lambda at fn_key_step.py:7",
}

BACKLOG = {
    "held_step.py": """
        import asyncio

        config = {"type": "event", "name": "Held", "subscribes": ["held"], "emits": [],
                  "key": "k", "concurrency_per_key": 1}

        async def handler(data, ctx):
            while not await ctx.state.get("held", "go"):
                await asyncio.sleep(0.02)
    """,
    "later_step.py": """
        config = {"type": "event", "name": "Later", "subscribes": ["later"], "emits": []}

        async def handler(data, ctx):
            pass
    """,
}


def steps_cli(app: Any, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    s = app.settings
    for name, value in {
        "STEPLINE_STEPS": str(s.steps[0]),
        "STEPLINE_BACKEND": s.backend,
        "STEPLINE_DB": str(s.db),
        "STEPLINE_REDIS_PREFIX": s.redis_prefix,
    }.items():
        monkeypatch.setenv(name, value)
    return asyncio.to_thread(CliRunner().invoke, cli, ["steps", *args])


async def test_every_key_and_limit_is_shown(make_app, monkeypatch):
    async with make_app(KEYS) as app:
        for name, text in SHOWN.items():
            detail = (await app.get(f"/workbench/api/steps/{name}")).json()
            assert detail["flow_control"] == text
        listed = await steps_cli(app, monkeypatch)
        assert listed.exit_code == 0, listed.output
        for name, text in SHOWN.items():
            assert f"{name}: {text}; scheduled: 0" in " ".join(listed.stdout.split())


async def test_a_scheduled_delivery_shows_behind_a_backlog(make_app, monkeypatch):
    async with make_app(BACKLOG) as app:
        # 250 deliveries of one key: the first holds it, the rest queue behind, older by id.
        backlog = [app.runtime.message("held", {"k": "one", "i": i}) for i in range(250)]
        await app.runtime.backend.write(Batch(messages=backlog))
        await app.emit("later", {"n": 1}, delay=3600)

        async def later() -> list[dict[str, Any]]:
            events = (await app.get("/_stepline/events?limit=200")).json()
            assert all(q["step"] == "Held" for q in events["queued"])
            return events["scheduled"]

        (row,) = await until("the delayed emit", later)
        assert (row["step"], row["data"], row["status"]) == ("Later", {"n": 1}, "scheduled")
        assert 3500 < row["due"] - time.time() <= 3600

        detail = (await app.get("/workbench/api/steps/Later")).json()
        assert detail["next_due"] == row["due"]

        listed = await steps_cli(app, monkeypatch, "--json", "--limit", "5")
        graph = json.loads(listed.stdout)
        nodes = {n["id"]: n for n in graph["nodes"]}
        assert nodes["Later"]["scheduled"] == 1 and nodes["Later"]["next_due"] == row["due"]
        assert [(r["step"], r["id"], r["due"]) for r in graph["scheduled"]] == [
            ("Later", row["id"], row["due"])
        ]
        table = await steps_cli(app, monkeypatch, "--scheduled")
        text = " ".join(table.stdout.split())
        assert "Later: no flow control; scheduled: 1, next " in text
        assert "1 scheduled delivery, soonest first" in text
        assert "UTC (in 60 min)" in text, table.stdout
        await app.state.set("held", "go", True)


async def test_steps_json_masks_a_secret_the_app_holds_in_scheduled_data(make_app, monkeypatch):
    # A value the process was given as a secret (here an API key in the environment) has no
    # format the masking table knows: it is masked because it is registered by value, which
    # `stepline steps` must do as every other command that prints stored data does.
    secret = "q7Zp2xVw9rT4mK8nLc3d"
    async with make_app(BACKLOG) as app:
        await app.emit("later", {"note": f"partner key {secret}"}, delay=3600)
        await until("the delayed emit", lambda: app.runtime.backend.scheduled(1))
        monkeypatch.setenv("PARTNER_API_KEY", secret)  # set for the command only
        listed = await steps_cli(app, monkeypatch, "--json")
        (row,) = json.loads(listed.stdout)["scheduled"]
        assert row["step"] == "Later" and "partner key" in row["data"]["note"]
        assert secret not in listed.stdout


async def test_scheduled_counts_only_deliveries_due_in_the_future(tmp_path, backend_name):
    # A delayed emit whose time has come, before any worker has claimed it (Redis keeps it in
    # its retry set until a claim moves it back to the stream): due now, so queued, and the
    # count, the list and each delivery's status say so alike on both backends.
    settings = Settings(
        backend=backend_name, db=tmp_path / "s.db", REDIS_URL=URL, redis_prefix=new_prefix()
    )
    backend = create_backend(settings)
    now = [time.time()]
    backend.clock = lambda: now[0]
    await backend.open()
    try:
        await backend.write(
            Batch(
                messages=[
                    Message("t", {"n": n}, f"trace-{n}", ("A",), due=now[0] + delay)
                    for n, delay in enumerate((60, 3600))
                ]
            )
        )
        stats = (await backend.queue_stats())["A"]
        assert (stats["queued"], stats["scheduled"]) == (0, 2)
        now[0] += 61  # the first is due; nothing has claimed it
        stats = (await backend.queue_stats())["A"]
        assert (stats["queued"], stats["scheduled"], stats["in_flight"]) == (1, 1, 0)
        assert [r["data"] for r in await backend.scheduled()] == [{"n": 1}]
        shown = {r["data"]["n"]: r["status"] for r in await backend.queued()}
        assert shown == {0: "queued", 1: "scheduled"}
    finally:
        if backend_name == "redis":
            await backend.purge()  # type: ignore[attr-defined]
        await backend.close()
