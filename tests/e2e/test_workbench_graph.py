"""The flow graph as a reader sees it, measured from the DOM in Chromium: for the shipped
flows and for a 50-step flow, at 1440x900 and 1024x768, no box overlaps another box or a topic
label, no text sticks out of its box or is cut short, no edge runs through a box, the whole
flow fits the canvas when it opens, and zoom, pan and fit work."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ROOT, Server
from tests.support import write_steps

VIEWPORTS = [(1440, 900), (1024, 768)]
EPS = 0.75  # px: anti-aliasing, never a real overlap

# Runs in the page: every box, text and edge of the drawn graph, in screen pixels (boxes and
# texts) and in drawing units (edge samples and boxes, to test routing).
MEASURE = """() => {
  const svg = document.querySelector("svg.graph");
  const rect = (el) => { const r = el.getBoundingClientRect();
    return {x: r.left, y: r.top, r: r.right, b: r.bottom}; };
  const groups = [...svg.querySelectorAll("g.node, g.edge-label")];
  const boxes = groups.map((g) => {
    const box = g.querySelector("rect.box");
    const m = g.transform.baseVal.consolidate().matrix;
    return {id: g.dataset.step || g.dataset.id, label: g.classList.contains("edge-label"),
            step: "step" in g.dataset,
            screen: rect(box),
            local: {x: m.e, y: m.f, r: m.e + box.width.baseVal.value,
                    b: m.f + box.height.baseVal.value},
            name: [...g.querySelectorAll("text.name")].map((t) => t.textContent).join(""),
            texts: [...g.querySelectorAll("text")].map((t) => ({text: t.textContent,
                                                                box: rect(t)}))};
  });
  const edges = [...svg.querySelectorAll("path.edge")].map((p) => {
    const n = p.getTotalLength(); const pts = [];
    for (let i = 0; i <= 80; i++) { const q = p.getPointAtLength((n * i) / 80);
      pts.push([q.x, q.y]); }
    return {from: p.dataset.from, to: p.dataset.to, pts};
  });
  const tools = document.querySelector(".graph-tools");
  return {boxes, edges, canvas: rect(svg), drawing: rect(svg.querySelector("g.viewport")),
          tools: rect(tools)};
}"""


def overlap(a: dict[str, float], b: dict[str, float], eps: float = EPS) -> bool:
    return (
        a["x"] < b["r"] - eps
        and b["x"] < a["r"] - eps
        and a["y"] < b["b"] - eps
        and b["y"] < a["b"] - eps
    )


def inside(inner: dict[str, float], outer: dict[str, float], eps: float = EPS) -> bool:
    return (
        inner["x"] >= outer["x"] - eps
        and inner["r"] <= outer["r"] + eps
        and inner["y"] >= outer["y"] - eps
        and inner["b"] <= outer["b"] + eps
    )


def check_graph(page: Any, flow_steps: list[str]) -> dict[str, Any]:
    expect(page.locator(".graph-view[data-fitted=true]")).to_have_count(1)
    m = page.evaluate(MEASURE)
    boxes = m["boxes"]
    steps = {b["id"]: b for b in boxes if b["step"]}
    assert set(flow_steps) <= set(steps), sorted(set(flow_steps) - set(steps))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not overlap(a["screen"], b["screen"]), (a["id"], b["id"])
        for t in a["texts"]:
            assert inside(t["box"], a["screen"]), (a["id"], t["text"], "sticks out")
        assert not overlap(a["screen"], m["tools"]), (a["id"], "under the zoom buttons")
    for name, box in steps.items():  # wrapped maybe, never cut: the lines spell the name
        assert box["name"].split(" ", 1)[1] == name, box["name"]
    for e in m["edges"]:
        for b in boxes:
            if b["id"] in (e["from"], e["to"]):
                continue
            r = b["local"]
            through = [
                p
                for p in e["pts"]
                if r["x"] + 1 < p[0] < r["r"] - 1 and r["y"] + 1 < p[1] < r["b"] - 1
            ]
            assert not through, f"edge {e['from']} -> {e['to']} runs through {b['id']}"
    assert inside(m["drawing"], m["canvas"]), "the flow does not fit the canvas when opened"
    return m


@pytest.fixture
def shipped(launch_server: Callable[..., Server]) -> Server:
    return launch_server("dev", steps=ROOT / "steps")


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
@pytest.mark.parametrize("flow", ["github", "gmail"])
def test_shipped_flow_graphs_are_readable(
    page: Any, shipped: Server, flow: str, width: int, height: int
) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{shipped.url}/workbench#/flows/{flow}")
    members = page.evaluate(
        "async (f) => (await (await fetch('/_stepline/flows')).json()).flows[f]", flow
    )
    m = check_graph(page, members)
    # Other flows sharing a topic show as small stubs, not as full steps of this flow.
    stub = page.locator("svg.graph g.node-stub")
    expect(stub.first).to_be_visible()
    assert all(b["id"] in members for b in m["boxes"] if b["step"])
    scale = float(page.locator(".graph-view").get_attribute("data-zoom"))
    assert scale >= 0.6, f"fitted at {scale:.0%}: too small to read"


def big_flow() -> dict[str, str]:
    """50 steps in one flow: an API and a cron step, then branching chains, long names."""
    files = {
        "s00_step.py": """
        config = {"type": "api", "name": "ReceiveSupplierInvoiceBatch", "path": "/invoices",
                  "flows": ["big"], "emits": ["big.t0"]}

        async def handler(req, ctx):
            return {"status": 202}
    """,
        "cron_step.py": """
        config = {"type": "cron", "name": "NightlyReconciliation", "cron": "0 3 * * *",
                  "flows": ["big"], "emits": ["big.t0", "big.audit.requested"]}

        async def handler(ctx):
            pass
    """,
    }
    for i in range(1, 49):
        parent = i - 1 if i % 6 else max(0, i - 6)
        name = f"Step{i:02d}" + (
            "ReconcileLedgerEntriesWithPaymentProvider" if i % 7 == 0 else "Check"
        )
        emits = [f"big.t{i}"] + (["big.notice.sent"] if i % 11 == 0 else [])
        files[f"s{i:02d}_step.py"] = f'''
            config = {{"type": "event", "name": "{name}", "flows": ["big"],
                      "subscribes": ["big.t{parent}"], "emits": {emits!r}}}

            async def handler(data, ctx):
                pass
        '''
    return files


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_fifty_step_flow_has_no_overlaps_and_fits(
    page: Any, launch_server: Callable[..., Server], tmp_path: Path, width: int, height: int
) -> None:
    files = big_flow()
    assert len(files) == 50
    server = launch_server("dev", steps=write_steps(tmp_path / "steps", files))
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{server.url}/workbench#/flows/big")
    members = page.evaluate(
        "async () => (await (await fetch('/_stepline/flows')).json()).flows.big"
    )
    assert len(members) == 50
    check_graph(page, members)
    expect(page.locator(".edge-label", has_text="big.notice.sent")).to_contain_text("no subscriber")


def test_zoom_pan_and_fit(page: Any, shipped: Server) -> None:
    page.goto(f"{shipped.url}/workbench#/flows/gmail")
    view = page.locator(".graph-view")
    expect(view).to_have_attribute("data-fitted", "true")
    fitted = float(view.get_attribute("data-zoom"))
    port = page.locator("svg.graph g.viewport")
    page.get_by_role("button", name="Zoom in").click()
    expect(view).to_have_attribute("data-fitted", "false")
    assert float(view.get_attribute("data-zoom")) == pytest.approx(fitted * 1.25, rel=1e-3)
    before = port.get_attribute("transform")
    # Drag from a spot of empty canvas (a drag that starts on a step is a click on it).
    x, y = page.evaluate("""() => {
      const svg = document.querySelector("svg.graph"); const r = svg.getBoundingClientRect();
      for (let y = r.bottom - 20; y > r.top + 60; y -= 15)
        for (let x = r.left + 20; x < r.right - 20; x += 15)
          if (document.elementFromPoint(x, y) === svg) return [x, y];
      return null; }""")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 100, y - 50, steps=4)
    page.mouse.up()
    assert port.get_attribute("transform") != before
    page.get_by_role("button", name="Zoom out").click()
    page.get_by_role("button", name="Fit to view").click()
    expect(view).to_have_attribute("data-fitted", "true")
    assert float(view.get_attribute("data-zoom")) == pytest.approx(fitted, rel=1e-3)
    # A click on a step still opens it after panning.
    page.locator('svg.graph [data-step="GmailSpamFilter"]').click()
    expect(page.locator(".detail h2")).to_contain_text("GmailSpamFilter")
