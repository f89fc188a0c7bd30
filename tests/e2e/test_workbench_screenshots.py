"""Takes the README's Workbench screenshots. Runs only when asked:

STEPLINE_SCREENSHOTS=docs/img .venv/bin/python -m pytest tests/e2e/test_workbench_screenshots.py
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ROOT, Server

OUT = os.environ.get("STEPLINE_SCREENSHOTS")
pytestmark = pytest.mark.skipif(not OUT, reason="set STEPLINE_SCREENSHOTS=DIR to take them")


def test_take_readme_screenshots(page: Any, dev_server: Server) -> None:
    out = Path(OUT or ".")
    out.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1440, "height": 820})
    trace = httpx.post(
        f"{dev_server.url}/orders", json={"item": "espresso machine", "qty": 1}
    ).headers["x-trace-id"]
    httpx.post(
        f"{dev_server.url}/_stepline/emit",
        json={"topic": "import.requested", "data": {"batch": 42}},
    )

    page.goto(f"{dev_server.url}/workbench#/flows/orders?step=PlaceOrder")
    expect(page.locator(".detail .runs")).to_be_visible()
    page.screenshot(path=str(out / "workbench-flows.png"))

    page.goto(f"{dev_server.url}/workbench#/traces/{trace}")
    expect(page.locator('.span[data-step="SendReceipt"]')).to_be_visible()
    page.screenshot(path=str(out / "workbench-trace.png"))
    assert (out / "workbench-flows.png").stat().st_size > 10_000


def test_take_shipped_flow_screenshot(page: Any, launch_server: Callable[..., Server]) -> None:
    out = Path(OUT or ".")
    server = launch_server("dev", steps=ROOT / "steps")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server.url}/workbench#/flows/github?step=ReviewPullRequest")
    expect(page.locator(".graph-view[data-fitted=true]")).to_have_count(1)
    expect(page.locator(".detail h2")).to_contain_text("ReviewPullRequest")
    page.screenshot(path=str(out / "workbench-github-flow.png"))
    assert (out / "workbench-github-flow.png").stat().st_size > 10_000
