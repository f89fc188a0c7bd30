"""Workbench views a newcomer checks first: trace filters that tell the whole trace's story,
every view usable at 1024x768, stream names listed, a cron step's next run, and no "Sign out"
where there is no sign-in."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Server
from tests.support import write_steps

CHAIN = {
    "start_step.py": """
        config = {"type": "api", "name": "Start", "path": "/start", "flows": ["chain"],
                  "emits": ["chain.begun"]}

        async def handler(req, ctx):
            ctx.logger.info("chain started")
            for i in range(req.body.get("noise", 0)):
                ctx.logger.info("noise", i=i)
            await ctx.emit("chain.begun", req.body)
            return {"status": 202, "body": {"trace_id": ctx.trace_id}}
    """,
    "middle_step.py": """
        import asyncio

        config = {"type": "event", "name": "Middle", "flows": ["chain"],
                  "subscribes": ["chain.begun"], "emits": ["chain.checked"]}

        async def handler(data, ctx):
            while data.get("slow") and not await ctx.state.get("chain", "go"):
                await asyncio.sleep(0.05)   # held until the test lets it go
            await ctx.emit("chain.checked", data)
    """,
    "breaks_step.py": """
        config = {"type": "event", "name": "Breaks", "flows": ["chain"], "retries": 1,
                  "subscribes": ["chain.checked"]}

        async def handler(data, ctx):
            if data.get("fail"):
                raise RuntimeError("the last step broke")
    """,
}


@pytest.fixture
def chain(launch_server: Callable[..., Server], tmp_path: Path) -> Server:
    return launch_server("dev", steps=write_steps(tmp_path / "steps", CHAIN))


def wait_spans(server: Server, trace: str, count: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        got = httpx.get(f"{server.url}/_stepline/traces/{trace}")
        if got.status_code == 200 and len(got.json()["spans"]) >= count:
            return
        time.sleep(0.1)
    raise TimeoutError(f"trace {trace} did not reach {count} spans")


def test_step_filter_shows_the_whole_trace_and_status_agrees(page: Any, chain: Server) -> None:
    start = f"{chain.url}/start"
    # The slow trace starts first and ends last: by start time it is listed below the other.
    slow = httpx.post(start, json={"slow": True}).json()["trace_id"]
    failed = httpx.post(start, json={"fail": True}).json()["trace_id"]
    wait_spans(chain, failed, 3)
    httpx.put(f"{chain.url}/_stepline/state/chain/go", json={"value": True}).raise_for_status()
    wait_spans(chain, slow, 3)

    page.goto(f"{chain.url}/workbench#/traces")
    rows = page.locator("table.traces tbody tr")
    expect(rows).to_have_count(2)
    assert [rows.nth(i).get_attribute("data-trace") for i in range(2)] == [failed, slow]
    page.get_by_label("Step").select_option("Middle")
    row = page.locator(f'tr[data-trace="{failed}"]')
    expect(row).to_contain_text("failed")
    expect(row.locator("td").nth(3)).to_have_text("3")  # every span, not the one that matched
    page.get_by_label("Status").select_option("failed")
    expect(rows).to_have_count(1)
    expect(row).to_be_visible()
    page.get_by_label("Status").select_option("ok")
    expect(rows).to_have_count(1)
    expect(page.locator(f'tr[data-trace="{slow}"]')).to_contain_text("ok")
    page.locator(f'tr[data-trace="{slow}"]').click()
    expect(page.locator(".trace-summary")).to_contain_text("3 spans")
    page.goto(f"{chain.url}/workbench#/flows/chain?step=Breaks")  # retries: 1
    expect(page.locator(".detail .facts")).to_contain_text("1 attempt, 30 s")


def test_trace_ids_tell_rows_apart_and_the_logs_filter_needs_8_characters(
    page: Any, chain: Server
) -> None:
    ids = [httpx.post(f"{chain.url}/start", json={}).json()["trace_id"] for _ in range(3)]
    for trace in ids:
        wait_spans(chain, trace, 3)
    page.goto(f"{chain.url}/workbench#/logs")
    lines = page.locator("table.logs tbody tr", has_text="chain started")
    expect(lines).to_have_count(3)
    links = lines.locator(".trace-ref a")
    shown = {links.nth(i).inner_text(): links.nth(i).get_attribute("title") for i in range(3)}
    assert sorted(shown.values()) == sorted(ids)  # the full id in the tooltip
    assert all(text == f"{full[:8]}…{full[-4:]}" for text, full in shown.items())
    buttons = lines.locator("button.copy")
    assert sorted(buttons.nth(i).get_attribute("data-copy") for i in range(3)) == sorted(ids)

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    buttons.first.click()
    expect(buttons.first).to_have_text("✓")
    assert page.evaluate("navigator.clipboard.readText()") == buttons.first.get_attribute(
        "data-copy"
    )
    assert page.url.endswith("#/logs")  # copying does not open the trace

    field = page.locator('input[name="trace_id"]')
    hint = page.locator(".field .hint")
    field.fill(ids[0][:7])  # too short to tell traces apart: no filtering, and a hint why
    expect(hint).to_contain_text("at least 8 characters")
    expect(lines.locator("visible=true")).to_have_count(3)
    field.fill(ids[0][:8])
    expect(hint).to_have_text("ids starting with this")
    expect(lines.locator("visible=true")).to_have_count(1)
    field.fill(ids[1])
    expect(hint).to_have_text("exact id")
    visible = lines.locator("visible=true")
    expect(visible).to_have_count(1)
    assert visible.locator(".trace-ref a").get_attribute("title") == ids[1]
    field.fill(ids[1][:-1] + ("0" if ids[1][-1] != "0" else "1"))  # one character off: no match
    expect(lines.locator("visible=true")).to_have_count(0)

    # Newer lines push a trace's own out of the 300 the page loads: its full id fetches them.
    noisy = httpx.post(f"{chain.url}/start", json={"noise": 320}).json()["trace_id"]
    wait_spans(chain, noisy, 3)
    page.goto("about:blank")
    page.goto(f"{chain.url}/workbench#/logs")
    expect(page.locator("table.logs tbody tr", has_text="noise").first).to_be_visible()
    expect(lines).to_have_count(0)
    page.locator('input[name="trace_id"]').fill(ids[2])
    expect(lines.locator("visible=true")).to_have_count(1)
    assert lines.locator(".trace-ref a").first.get_attribute("title") == ids[2]
    # Close the live tail before the fixture stops the server: an open /logs/stream holds up
    # its graceful shutdown.
    page.goto("about:blank")


VIEWS = ["flows/orders", "endpoints", "traces", "logs", "state", "events", "streams"]


def test_every_view_fits_1024_by_768(page: Any, dev_server: Server) -> None:
    batch = uuid.uuid4().hex
    httpx.post(
        f"{dev_server.url}/_stepline/emit",
        json={
            "topic": "import.requested",
            "data": {"batch": f"{batch}-with-a-long-name-that-makes-the-error-text-very-long"},
        },
    )
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(f"{dev_server.url}/workbench#/events")
    expect(page.locator("tr[data-dead]", has_text=batch)).to_be_visible()
    for view in VIEWS:
        page.goto(f"{dev_server.url}/workbench#/{view}")
        expect(page.locator("#view h1").first).to_be_visible()
        page.wait_for_load_state("networkidle")
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 1024, f"{view}: the page is {wide} px wide"
        off = page.evaluate("""() => [...document.querySelectorAll(
            '#view button, #view a, #view input, #view select, #view textarea')]
            .filter((el) => el.offsetParent !== null && !el.closest('svg'))
            .map((el) => [el.textContent.trim() || el.name || el.tagName,
                          el.getBoundingClientRect().right])
            .filter(([, right]) => right > window.innerWidth + 0.5)""")
        assert off == [], f"{view}: controls off-screen: {off}"


def test_streams_list_names_and_cron_shows_its_next_run(page: Any, dev_server: Server) -> None:
    page.goto(f"{dev_server.url}/workbench#/streams")
    row = page.locator('tr[data-stream="receipts"]')
    expect(row).to_contain_text("SendReceipt")
    row.get_by_role("link", name="receipts").click()
    expect(page.locator(".live")).to_have_text("live: receipts")

    page.goto(f"{dev_server.url}/workbench#/flows/ops?step=NightlyReport")
    facts = page.locator(".detail .facts")
    expect(facts).to_contain_text("Next run")
    expect(facts).to_contain_text(" 02:00 UTC (in ")


STREAMER = {
    "ping_step.py": """
        config = {"type": "api", "name": "Ping", "path": "/ping", "flows": ["live"]}

        async def handler(req, ctx):
            await ctx.stream("pings", {"n": 1})
            await ctx.stream(f"room-{req.body['room']}", {"n": 1})  # a name made at run time
            return {"status": 200}
    """,
}


def test_streams_show_when_the_server_last_pushed_a_message(
    page: Any, launch_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = launch_server("dev", steps=write_steps(tmp_path / "steps", STREAMER))
    page.goto(f"{server.url}/workbench#/streams")
    pings = page.locator('tr[data-stream="pings"]')
    expect(pings.locator("td").nth(1)).to_have_text("Ping")
    expect(pings.locator("td").nth(2)).to_have_text("—")  # nothing pushed yet
    expect(page.locator('tr[data-stream="room-7"]')).to_have_count(0)
    httpx.post(f"{server.url}/ping", json={"room": 7}).raise_for_status()
    page.reload()  # this browser watched neither stream: the time is the server's
    expect(pings.locator("td").nth(2)).to_have_text(re.compile(r"\d\d:\d\d:\d\d\.\d{3}$"))
    room = page.locator('tr[data-stream="room-7"]')
    expect(room).to_contain_text("(named at run time)")
    expect(room.locator("td").nth(2)).not_to_have_text("—")


def test_no_sign_out_in_dev_and_plural_words(page: Any, dev_server: Server) -> None:
    page.goto(f"{dev_server.url}/workbench#/events")
    expect(page.locator("#view h1")).to_have_text("Events")
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    page.goto(f"{dev_server.url}/workbench#/flows/orders")
    expect(page.locator(".problems")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("(s)")


def test_step_file_is_named_as_in_the_project_and_copy_buttons_draw(
    page: Any, dev_server: Server
) -> None:
    trace = httpx.post(f"{dev_server.url}/orders", json={"item": "mug"}).headers["x-trace-id"]
    wait_spans(dev_server, trace, 4)
    page.goto(f"{dev_server.url}/workbench#/flows/orders?step=PlaceOrder")
    shown = page.locator(".detail .source-file")
    expect(shown).to_have_text("steps/orders/place_order_step.py")  # not the machine's path
    assert shown.get_attribute("title").endswith("/steps/orders/place_order_step.py")
    # The copy button's icon is drawn, not a character the font may lack (U+29C9 in DejaVu).
    button = page.locator(".detail .runs button.copy").first
    expect(button).to_be_visible()
    assert button.inner_text() == ""
    icon = button.locator(".copy-icon").bounding_box()
    assert icon is not None and icon["width"] >= 8 and icon["height"] >= 8
