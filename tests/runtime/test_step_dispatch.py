"""API steps are answered before FastAPI's router (app/server/dispatch.py), and answer exactly
as through it: the route FastAPI would pick, path and query parameters, the body limit, 405 and
404 for what no step serves, the OpenAPI listing, and the same answers under a root path,
where the router serves them."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from app.testing import Harness
from tests.support import write_steps

STEPS = {
    "any_item_step.py": """
        config = {"type": "api", "name": "AnyItem", "path": "/items/{item}", "method": "GET"}

        async def handler(req, ctx):
            return {"route": "any", "item": req.path_params["item"], "query": req.query}
    """,
    "special_item_step.py": """
        # Registered after /items/{item}: FastAPI's router gives GET /items/special to that one.
        config = {"type": "api", "name": "SpecialItem", "path": "/items/special",
                  "method": "GET"}

        async def handler(req, ctx):
            return {"route": "special"}
    """,
    "post_special_step.py": """
        # Same path, another method: not shadowed.
        config = {"type": "api", "name": "PostSpecial", "path": "/items/special",
                  "method": "POST", "emits": ["item.posted"]}

        async def handler(req, ctx):
            await ctx.emit("item.posted", req.body)
            return {"status": 201, "body": {"route": "post-special", "got": req.body},
                    "headers": {"x-made-by": "stepline"}}
    """,
    "page_step.py": """
        config = {"type": "api", "name": "Page", "path": "/pages/{n:int}", "method": "GET"}

        async def handler(req, ctx):
            return {"n": req.path_params["n"], "type": type(req.path_params["n"]).__name__}
    """,
    "livez_step.py": """
        # The health route is registered first and keeps the path.
        config = {"type": "api", "name": "Livez", "path": "/livez", "method": "GET"}

        async def handler(req, ctx):
            return {"route": "step"}
    """,
    "path_step.py": """
        config = {"type": "api", "name": "Path", "path": "/paths/{p:path}", "method": "GET"}

        async def handler(req, ctx):
            return {"path": req.path, "p": req.path_params["p"]}
    """,
    "posted_step.py": """
        config = {"type": "event", "name": "Posted", "subscribes": ["item.posted"]}

        async def handler(data, ctx):
            pass
    """,
}


async def test_step_routes_answer_as_fastapis_router_would(tmp_path):
    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        any_item = await app.get("/items/42?a=1&b=&a=2")
        assert any_item.status_code == 200
        assert any_item.json() == {"route": "any", "item": "42", "query": {"a": "2", "b": ""}}
        assert any_item.headers["x-trace-id"]
        assert (await app.get("/items/special")).json()["route"] == "any"
        posted = await app.post("/items/special", json={"x": 1})
        assert posted.status_code == 201 and posted.headers["x-made-by"] == "stepline"
        assert posted.json() == {"route": "post-special", "got": {"x": 1}}
        assert (await app.get("/pages/7")).json() == {"n": 7, "type": "int"}
        assert (await app.get("/pages/seven")).status_code == 404
        assert (await app.get("/livez")).json() == {"status": "ok"}
        assert (await app.request("DELETE", "/items/special")).status_code == 405
        assert (await app.get("/nothing/here")).status_code == 404
        paths = (await app.get("/openapi.json")).json()["paths"]
        assert {"/items/{item}", "/items/special", "/pages/{n}"} <= set(paths)


async def test_the_body_limit_holds_on_step_routes(tmp_path):
    async with Harness([write_steps(tmp_path / "s", STEPS)], body_limit=1000) as app:

        async def chunks():
            for _ in range(20):
                yield b" " * 100

        declared = await app.post("/items/special", content=b"[" + b" " * 1000 + b"]")
        streamed = await app.post("/items/special", content=chunks())
        for big in (declared, streamed):
            assert big.status_code == 413 and "STEPLINE_BODY_LIMIT" in big.json()["error"]
        assert app.emitted("item.posted") == []
        fits = await app.post("/items/special", content=b"[" + b" " * 900 + b"]")
        assert fits.status_code == 201 and fits.json()["got"] == []


async def test_under_a_root_path_the_router_serves_the_same_answers(tmp_path):
    async with Harness([write_steps(tmp_path / "s", STEPS)], body_limit=1000) as app:
        transport = httpx.ASGITransport(app=app.app, root_path="/api")
        async with httpx.AsyncClient(transport=transport, base_url="http://stepline.test") as c:
            any_item = await c.get("/api/items/42?a=1")
            assert any_item.json() == {"route": "any", "item": "42", "query": {"a": "1"}}
            assert (await c.get("/api/items/special")).json()["route"] == "any"
            assert (await c.get("/api/pages/7")).json() == {"n": 7, "type": "int"}
            assert (await c.get("/api/livez")).json() == {"status": "ok"}
            posted = await c.post("/api/items/special", json={"x": 1})
            assert posted.status_code == 201 and posted.json()["got"] == {"x": 1}
            big = await c.post("/api/items/special", content=b"[" + b" " * 1000 + b"]")
            assert big.status_code == 413


async def test_middleware_added_to_the_app_sees_step_requests(tmp_path):
    from starlette.middleware.cors import CORSMiddleware

    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        app.app.add_middleware(CORSMiddleware, allow_origins=["https://ui.example"])
        answer = await app.get("/items/42", headers={"origin": "https://ui.example"})
        assert answer.json()["item"] == "42"
        assert answer.headers["access-control-allow-origin"] == "https://ui.example"
        static = await app.get("/items/special", headers={"origin": "https://ui.example"})
        assert static.headers["access-control-allow-origin"] == "https://ui.example"


async def test_an_instrumented_middleware_stack_sees_step_requests(tmp_path):
    # As opentelemetry-instrumentation-fastapi's instrument_app does: it replaces the app
    # instance's build_middleware_stack with one wrapping the stack in its own middleware.
    seen: list[str] = []

    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        built = app.app.build_middleware_stack

        def instrumented() -> Any:
            inner = built()

            async def spans(scope: Scope, receive: Receive, send: Send) -> None:
                if scope["type"] == "http":
                    seen.append(scope["path"])
                await inner(scope, receive, send)

            return spans

        app.app.build_middleware_stack = instrumented  # type: ignore[method-assign]
        assert (await app.get("/items/42")).json()["item"] == "42"
        assert (await app.post("/items/special", json={})).status_code == 201
        assert seen == ["/items/42", "/items/special"]


async def test_a_step_sees_the_same_path_on_either_way_in(tmp_path):
    # Decoded '?', '#' and backslash come back escaped in req.path, as Starlette's
    # request.url.path (the FastAPI route's, under a root path) gives them.
    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        transport = httpx.ASGITransport(app=app.app, root_path="/api")
        async with httpx.AsyncClient(transport=transport, base_url="http://stepline.test") as c:
            for raw, path, param in (
                ("/paths/a%3Fb%23c%5Cd", "/paths/a%3Fb%23c%5Cd", "a?b#c\\d"),
                ("/paths/x%20y/z", "/paths/x y/z", "x y/z"),
            ):
                fast = (await app.get(raw)).json()
                routed = (await c.get("/api" + raw)).json()
                assert fast == {"path": path, "p": param}
                assert routed == {"path": "/api" + path, "p": param}
