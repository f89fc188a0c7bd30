"""The Workbench in Chromium against a real `stepline dev` process with example steps."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.e2e.conftest import Server

SECRET = "ghp_" + "Q" * 36


def open_view(page: Any, server: Server, view: str) -> None:
    page.goto(f"{server.url}/workbench#/{view}")


def test_every_view_opens_from_the_menu(page: Any, dev_server: Server) -> None:
    page.goto(f"{dev_server.url}/workbench")
    view = page.locator("#view")
    expect(view.get_by_role("heading", name="Flow: ops")).to_be_visible()
    expected = {
        "Endpoints": "Endpoints (3)",
        "Traces": "Traces",
        "Logs": "Logs",
        "State": re.compile(r"^(State|Groups)"),
        "Events": "Events",
        "Streams": "Streams",
        "Flows": "Flow: ops",
    }
    for link, heading in expected.items():
        page.locator("#nav").get_by_role("link", name=link, exact=True).click()
        expect(view.get_by_role("heading", name=heading).first).to_be_visible()
        # Shown errors only: a form's problem line waits hidden until there is one.
        expect(view.locator(".error").locator("visible=true")).to_have_count(0)
    assert page.title() == "Flows · Stepline Workbench"


def test_flows_draws_each_kind_and_flags_orphan_topics(page: Any, dev_server: Server) -> None:
    open_view(page, dev_server, "flows/orders")
    graph = page.locator("svg.graph")
    for step, kind in [
        ("PlaceOrder", "api"),
        ("GetOrder", "api"),
        ("ReserveStock", "event"),
        ("ChargeCard", "event"),
        ("SendReceipt", "event"),
    ]:
        expect(graph.locator(f'g.node-{kind}[data-step="{step}"]')).to_be_visible()
    expect(graph.locator(".edge-label", has_text="order.placed")).to_be_visible()
    expect(graph.locator(".node-topic", has_text="stock.missing")).to_be_visible()
    expect(page.locator(".problems")).to_contain_text("stock.missing")
    # Top to bottom: the API step that starts the flow sits above what it triggers.
    place = graph.locator('[data-step="PlaceOrder"]').bounding_box()
    charge = graph.locator('[data-step="ChargeCard"]').bounding_box()
    assert place["y"] + place["height"] < charge["y"]

    page.locator("#nav").get_by_role("link", name="Flows").click()
    page.locator(".flow-list").get_by_role("link", name=re.compile("^ops")).click()
    expect(graph.locator('g.node-cron[data-step="NightlyReport"]')).to_be_visible()
    expect(graph.locator(".node-topic", has_text="import.requested")).to_contain_text("no emitter")


def test_clicking_a_step_shows_config_source_and_runs(page: Any, dev_server: Server) -> None:
    trace = httpx.post(f"{dev_server.url}/orders", json={"item": "kettle"}).headers["x-trace-id"]
    open_view(page, dev_server, "flows/orders")
    page.locator('svg.graph [data-step="ReserveStock"]').click()
    detail = page.locator(".detail")
    expect(detail.get_by_role("heading", name=re.compile("ReserveStock"))).to_be_visible()
    expect(detail).to_contain_text("orders/reserve_step.py")
    expect(detail.locator("pre.code").first).to_contain_text('"subscribes"')
    detail.get_by_text("Source").click()
    expect(detail.locator("pre.source")).to_contain_text("async def handler(data, ctx)")
    expect(detail.locator(f'.runs a[href="#/traces/{trace}"]')).to_be_visible()


def test_endpoint_form_sends_a_request_and_links_its_trace(page: Any, dev_server: Server) -> None:
    item = f"lamp-{uuid.uuid4().hex[:6]}"
    open_view(page, dev_server, "endpoints")
    page.locator(".endpoint-item", has_text="/orders").filter(has_text="POST").click()
    expect(page.locator(".endpoint-panel")).to_contain_text("Body schema: Order")
    body = page.get_by_label("Body (JSON)")
    expect(body).to_have_value(re.compile('"item"'))  # prefilled from the schema
    body.fill(f'{{"item": "{item}", "qty": 3}}')
    page.get_by_label("Headers").fill("X-Request-Note: from the workbench")
    page.get_by_role("button", name="Send POST").click()
    expect(page.get_by_test_id("response-status")).to_have_text(re.compile(r"^201"))
    expect(page.get_by_test_id("response-body")).to_contain_text('"id"')

    page.locator(".response-head a").click()
    timeline = page.locator(".timeline")
    for step in ("PlaceOrder", "ReserveStock", "ChargeCard", "SendReceipt"):
        expect(timeline.locator(f'.span[data-step="{step}"]')).to_be_visible()
    place = timeline.locator('.span[data-step="PlaceOrder"]')
    expect(place.locator(".emitted")).to_contain_text("order.placed")
    expect(place).to_contain_text("order accepted")
    expect(place).to_contain_text(item)

    trace_id = page.url.rsplit("/", 1)[1]
    page.get_by_role("link", name="← All traces").click()
    expect(page.locator(f'tr[data-trace="{trace_id}"]')).to_contain_text("PlaceOrder")
    page.get_by_label("Status").select_option("failed")
    expect(page.locator(f'tr[data-trace="{trace_id}"]')).to_have_count(0)


def test_invalid_body_shows_the_422_reason(page: Any, dev_server: Server) -> None:
    open_view(page, dev_server, "endpoints?step=PlaceOrder")
    page.get_by_label("Body (JSON)").fill('{"qty": 0}')
    page.get_by_role("button", name="Send POST").click()
    expect(page.get_by_test_id("response-status")).to_have_text(re.compile(r"^422"))
    expect(page.get_by_test_id("response-body")).to_contain_text("does not match")


def test_dead_letter_is_inspected_and_replayed(page: Any, dev_server: Server) -> None:
    batch = uuid.uuid4().hex[:8]
    open_view(page, dev_server, "events")
    page.get_by_label("Topic").fill("import.requested")
    page.get_by_label("Data (JSON)").fill(f'{{"batch": "{batch}"}}')
    page.get_by_role("button", name="Emit", exact=True).click()
    row = page.locator("tr[data-dead]", has_text=f"upstream refused batch {batch}")
    expect(row).to_be_visible()
    row.get_by_role("button", name="Inspect").click()
    expect(page.locator("tr.inspect:visible")).to_contain_text(f'"batch": "{batch}"')
    expect(page.locator("tr.inspect:visible")).to_contain_text("Traceback")

    # Fix the cause, then replay just this delivery.
    healed = httpx.put(
        f"{dev_server.url}/_stepline/state/switches/import_healed", json={"value": True}
    )
    assert healed.status_code == 200, healed.text
    try:
        row.get_by_role("button", name="Replay").click()
        expect(row).to_have_count(0)
        expect(page.locator("#toasts")).to_contain_text("Replayed 1 delivery")
        # The State view shows what is stored when it opens: wait for the replayed run first.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and batch not in [
            k["key"]
            for k in httpx.get(f"{dev_server.url}/_stepline/state/imports").json().get("keys", [])
        ]:
            time.sleep(0.1)
        open_view(page, dev_server, "state/imports")
        expect(page.locator(f'tr[data-key="{batch}"]')).to_contain_text('"done"')
    finally:
        httpx.delete(f"{dev_server.url}/_stepline/state/switches/import_healed")


def test_state_value_is_edited_and_deleted_with_confirmation(page: Any, dev_server: Server) -> None:
    group = f"g{uuid.uuid4().hex[:6]}"
    base = f"{dev_server.url}/_stepline/state/{group}"
    httpx.put(f"{base}/colour", json={"value": {"name": "red"}, "ttl": 600}).raise_for_status()
    httpx.put(f"{base}/api_token", json={"value": SECRET}).raise_for_status()
    open_view(page, dev_server, f"state/{group}")
    row = page.locator('tr[data-key="colour"]')
    expect(row).to_contain_text('"name": "red"')
    expect(row).to_contain_text(re.compile(r"(9|10) min"))
    expect(page.locator('tr[data-key="api_token"]')).to_contain_text("***")
    expect(page.locator("body")).not_to_contain_text(SECRET)

    row.get_by_role("button", name="Edit").click()
    row.get_by_label("Value (JSON)").fill('{"name": "blue", "shade": 2}')
    row.get_by_role("button", name="Save").click()
    expect(page.locator('tr[data-key="colour"]')).to_contain_text('"shade": 2')
    stored = {k["key"]: k for k in httpx.get(base).json()["keys"]}
    assert stored["colour"]["value"] == {"name": "blue", "shade": 2}
    assert 500 < stored["colour"]["ttl"] <= 600  # the edit kept the key expiring

    page.locator('tr[data-key="colour"]').get_by_role("button", name="Delete").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_contain_text("Delete key “colour”")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator('tr[data-key="colour"]')).to_be_visible()
    page.locator('tr[data-key="colour"]').get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator('tr[data-key="colour"]')).to_have_count(0)
    assert [k["key"] for k in httpx.get(base).json()["keys"]] == ["api_token"]


def test_logs_tail_live_and_filter(page: Any, dev_server: Server) -> None:
    open_view(page, dev_server, "logs")
    expect(page.locator(".live")).to_have_text("live")
    item = f"vase-{uuid.uuid4().hex[:6]}"
    httpx.put(f"{dev_server.url}/credentials", json={"token": SECRET}).raise_for_status()
    httpx.post(f"{dev_server.url}/orders", json={"item": item}).raise_for_status()
    rows = page.locator("table.logs tbody tr:visible")
    # Both steps that log the item show up, each once.
    expect(rows.filter(has_text=item)).to_have_count(2)
    expect(rows.filter(has_text=item).filter(has_text="order accepted")).to_have_count(1)
    expect(rows.filter(has_text="credentials saved").first).to_contain_text("***")
    expect(page.locator("body")).not_to_contain_text(SECRET)
    page.get_by_label("Text").fill(item)
    expect(rows).to_have_count(2)
    page.get_by_label("Level").select_option("warning")
    expect(rows).to_have_count(0)
    page.get_by_label("Level").select_option("")
    page.get_by_label("Text").fill("")
    page.get_by_label("Step").fill("ChargeCard")
    expect(rows.filter(has_text="order accepted")).to_have_count(0)
    expect(rows.filter(has_text="charging card").first).to_be_visible()


def test_streams_show_messages_live(page: Any, dev_server: Server) -> None:
    open_view(page, dev_server, "streams/receipts")
    expect(page.locator(".live")).to_have_text("live: receipts")
    order = httpx.post(f"{dev_server.url}/orders", json={"item": "mug"}).json()["id"]
    expect(page.locator(".stream-message").first).to_contain_text(f'"order": {order}')
