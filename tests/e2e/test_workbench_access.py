"""Who may open the Workbench: `start` refuses it without STEPLINE_WORKBENCH_TOKEN, and with
the token asks for it (login form and HttpOnly cookie in the browser, bearer for the API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.e2e.conftest import Server

TOKEN = "wb-" + "k7" * 12


def test_start_without_token_refuses_workbench_and_api(
    launch_server: Callable[..., Server],
) -> None:
    server = launch_server("start")
    page = httpx.get(f"{server.url}/workbench")
    assert page.status_code == 403
    assert "STEPLINE_WORKBENCH_TOKEN" in page.text
    assert "<form" not in page.text  # no login form: there is no token to log in with
    for path in ("/_stepline/steps", "/_stepline/state", "/_stepline/events"):
        api = httpx.get(server.url + path)
        assert api.status_code == 403, path
        assert "STEPLINE_WORKBENCH_TOKEN" in api.json()["error"]
    # Even a guessed cookie or bearer gets nowhere.
    assert (
        httpx.get(
            f"{server.url}/_stepline/steps", headers={"authorization": "Bearer anything"}
        ).status_code
        == 403
    )
    assert (
        httpx.post(f"{server.url}/workbench/login", data={"token": "anything"}).status_code == 403
    )
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_start_with_token_needs_it_for_the_api(launch_server: Callable[..., Server]) -> None:
    server = launch_server("start", {"STEPLINE_WORKBENCH_TOKEN": TOKEN})
    assert httpx.get(f"{server.url}/_stepline/steps").status_code == 401
    wrong = httpx.get(f"{server.url}/_stepline/steps", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert TOKEN not in wrong.text
    ok = httpx.get(f"{server.url}/_stepline/steps", headers={"authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert {s["name"] for s in ok.json()["steps"]} >= {"PlaceOrder", "NightlyReport"}
    assert httpx.get(f"{server.url}/workbench/api/steps/PlaceOrder").status_code == 401
    # Bound to 127.0.0.1, a request for another host name (DNS rebinding) is refused even
    # with the token, and so is a cross-site form post.
    rebound = httpx.get(
        f"{server.url}/_stepline/steps",
        headers={"authorization": f"Bearer {TOKEN}", "host": "evil.example"},
    )
    assert rebound.status_code == 403
    cross_site = httpx.post(
        f"{server.url}/workbench/login",
        data={"token": TOKEN},
        headers={"origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    assert "set-cookie" not in cross_site.headers


def test_login_form_sets_an_httponly_strict_cookie(
    browser: Any, launch_server: Callable[..., Server]
) -> None:
    server = launch_server("start", {"STEPLINE_WORKBENCH_TOKEN": TOKEN})
    context = browser.new_context()
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        response = page.goto(f"{server.url}/workbench")
        assert response is not None and response.status == 401
        expect(page.get_by_role("heading", name="Stepline Workbench")).to_be_visible()
        page.get_by_label("Workbench token").fill("not-the-token")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("not right")
        assert context.cookies() == []

        page.get_by_label("Workbench token").fill(TOKEN)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#view").get_by_role("heading", name="Flow: ops")).to_be_visible()
        (cookie,) = context.cookies()
        assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (
            "stepline_session",
            True,
            "Strict",
            "/",
        )
        # The page's own API calls ride on the cookie; scripts cannot read it.
        page.locator("#nav").get_by_role("link", name="Events").click()
        expect(page.locator("#view").get_by_role("heading", name="Dead letters")).to_be_visible()
        assert page.evaluate("document.cookie") == ""

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_label("Workbench token")).to_be_visible()
        assert context.cookies() == []
    finally:
        context.close()
