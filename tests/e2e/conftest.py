"""Fixtures for end-to-end tests: a real `stepline` subprocess on a free port, and (for the
Workbench) Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import SteplineProcess
from tests.support import free_port, write_steps

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]

# An example app for the Workbench: two flows, every step kind, an orphan topic each way,
# a step that dead-letters until it is "healed" through state, a stream and a secret.
WORKBENCH_STEPS: dict[str, str] = {
    "orders/place_order_step.py": """
        from pydantic import BaseModel, Field

        class Order(BaseModel):
            item: str
            qty: int = Field(1, ge=1)
            email: str = "buyer@example.com"

        config = {"type": "api", "name": "PlaceOrder", "path": "/orders", "method": "POST",
                  "description": "Take an order and start fulfilment.", "flows": ["orders"],
                  "emits": ["order.placed"], "body": Order}

        async def handler(req, ctx):
            order_id = await ctx.state.increment("counters", "orders")
            await ctx.state.set("orders", f"o{order_id}", req.body.model_dump())
            ctx.logger.info("order accepted", order_id=order_id, item=req.body.item)
            await ctx.emit("order.placed", {"id": order_id, **req.body.model_dump()})
            return {"status": 201, "body": {"id": order_id}}
    """,
    "orders/get_order_step.py": """
        config = {"type": "api", "name": "GetOrder", "path": "/orders/{order_id}",
                  "method": "GET", "flows": ["orders"]}

        async def handler(req, ctx):
            order = await ctx.state.get("orders", f"o{req.path_params['order_id']}")
            if order is None:
                return {"status": 404, "body": {"error": "no such order"}}
            return order
    """,
    "orders/reserve_step.py": """
        config = {"type": "event", "name": "ReserveStock", "flows": ["orders"],
                  "subscribes": ["order.placed"], "emits": ["stock.reserved", "stock.missing"]}

        async def handler(data, ctx):
            ctx.logger.info("reserving stock", item=data["item"], qty=data["qty"])
            await ctx.emit("stock.reserved", data)
    """,
    "orders/charge_step.py": """
        config = {"type": "event", "name": "ChargeCard", "flows": ["orders"],
                  "subscribes": ["stock.reserved"], "emits": ["payment.captured"]}

        async def handler(data, ctx):
            ctx.logger.info("charging card", order_id=data["id"])
            await ctx.emit("payment.captured", data)
    """,
    "orders/receipt_step.py": """
        config = {"type": "event", "name": "SendReceipt", "flows": ["orders"],
                  "subscribes": ["payment.captured"]}

        async def handler(data, ctx):
            await ctx.stream("receipts", {"order": data["id"], "email": data["email"]})
            ctx.logger.info("receipt sent", order_id=data["id"])
    """,
    "ops/nightly_step.py": """
        config = {"type": "cron", "name": "NightlyReport", "cron": "0 2 * * *",
                  "flows": ["ops"], "emits": ["report.ready"]}

        async def handler(ctx):
            count = await ctx.state.get("counters", "orders", 0)
            ctx.logger.info("nightly report", orders=count)
            await ctx.emit("report.ready", {"orders": count})
    """,
    "ops/mail_report_step.py": """
        config = {"type": "event", "name": "MailReport", "flows": ["ops"],
                  "subscribes": ["report.ready"]}

        async def handler(data, ctx):
            ctx.logger.info("report mailed", orders=data["orders"])
    """,
    "ops/flaky_step.py": """
        config = {"type": "event", "name": "FlakyImport", "flows": ["ops"],
                  "subscribes": ["import.requested"], "retries": 1}

        async def handler(data, ctx):
            if not await ctx.state.get("switches", "import_healed", False):
                raise RuntimeError(f"upstream refused batch {data.get('batch')}")
            ctx.logger.info("import done", batch=data.get("batch"))
            await ctx.state.set("imports", str(data.get("batch")), "done")
    """,
    "ops/remember_token_step.py": """
        config = {"type": "api", "name": "SaveCredentials", "path": "/credentials",
                  "method": "PUT", "flows": ["ops"]}

        async def handler(req, ctx):
            await ctx.state.set("credentials", "api_token", req.body["token"], ttl=3600)
            ctx.logger.info("credentials saved", token=req.body["token"])
            return {"status": 204}
    """,
}


Server = SteplineProcess


def start_server(
    command: str,
    workdir: Path,
    steps: Path,
    env: dict[str, str] | None = None,
    wait_path: str = "/healthz",
) -> Server:
    """Run `stepline COMMAND` and wait until it answers; the caller stops it with stop_server."""
    server = SteplineProcess(
        steps,
        workdir / f"{command}-{free_port()}.db",
        command=command,
        cwd=workdir,
        wait_path=wait_path,
        env={
            "STEPLINE_CONFIG_DIR": str(workdir / "config"),
            "STEPLINE_LOG_LEVEL": "WARNING",
            **(env or {}),
        },
    )
    return server.start()


def stop_server(server: Server) -> None:
    server.stop()


@pytest.fixture(scope="package")
def workbench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workbench")


@pytest.fixture(scope="package")
def workbench_steps(workbench_dir: Path) -> Path:
    return write_steps(workbench_dir / "steps", WORKBENCH_STEPS)


@pytest.fixture(scope="package")
def dev_server(workbench_dir: Path, workbench_steps: Path) -> Iterator[Server]:
    """`stepline dev` over the example steps, shared by the Workbench browser tests."""
    server = start_server("dev", workbench_dir, workbench_steps)
    yield server
    stop_server(server)


@pytest.fixture
def launch_server(workbench_dir: Path, workbench_steps: Path) -> Iterator[Callable[..., Server]]:
    """Start extra servers (e.g. `stepline start` with other settings); stopped afterwards."""
    started: list[Server] = []

    def launch(
        command: str, env: dict[str, str] | None = None, steps: Path | None = None, **kw: Any
    ) -> Server:
        server = start_server(command, workbench_dir, steps or workbench_steps, env, **kw)
        started.append(server)
        return server

    yield launch
    for server in started:
        stop_server(server)


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; run scripts/ensure-chromium.sh")
        pytest.skip(f"{CHROMIUM} is missing (run scripts/ensure-chromium.sh as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context per test; page errors (uncaught JS exceptions) fail the test."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
