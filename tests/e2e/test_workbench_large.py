"""A project with 50 steps: the Flows view draws them all and the page stays usable.
(How fast it loads is measured in bench/, never asserted here.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import Server
from tests.support import write_steps

CHAINS, LENGTH = 5, 10  # five flows of ten steps: one API step, then nine event steps


def chain_steps() -> dict[str, str]:
    files = {}
    for c in range(CHAINS):
        files[f"c{c}/s0_step.py"] = f"""
            config = {{"type": "api", "name": "Start{c}", "path": "/chain/{c}",
                      "flows": ["chain{c}"], "emits": ["c{c}.t0"]}}

            async def handler(req, ctx):
                await ctx.emit("c{c}.t0", {{}})
                return {{"status": 202}}
        """
        for i in range(1, LENGTH):
            emits = f'["c{c}.t{i}"]' if i < LENGTH - 1 else "[]"
            files[f"c{c}/s{i}_step.py"] = f"""
                config = {{"type": "event", "name": "Chain{c}Step{i}", "flows": ["chain{c}"],
                          "subscribes": ["c{c}.t{i - 1}"], "emits": {emits}}}

                async def handler(data, ctx):
                    pass
            """
    return files


def test_fifty_steps_are_all_drawn(
    page: Any, launch_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = launch_server("dev", steps=write_steps(tmp_path / "steps", chain_steps()))
    page.goto(f"{server.url}/workbench#/flows/chain3")
    graph = page.locator("svg.graph")
    expect(graph.locator("g.node[data-step]")).to_have_count(LENGTH)
    expect(page.locator(".flow-list a")).to_have_count(CHAINS)
    # Each step of the chain sits below the one that triggers it.
    ys = [
        graph.locator(f'[data-step="{name}"]').bounding_box()["y"]
        for name in ["Start3", *(f"Chain3Step{i}" for i in range(1, LENGTH))]
    ]
    assert ys == sorted(ys) and len(set(ys)) == LENGTH
    page.locator("#nav").get_by_role("link", name="Endpoints").click()
    expect(page.locator(".endpoint-item")).to_have_count(CHAINS)
