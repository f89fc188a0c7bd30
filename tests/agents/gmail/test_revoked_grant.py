"""The user revokes Stepline's Gmail access while the app runs (Google then answers
`invalid_grant` on refresh): the flow records it once where every process sees it, `/readyz`
and `stepline gmail status` name it with the fix, the poll stops asking Google, mail steps
dead-letter at once; after `stepline gmail connect` (a new token file) it all resumes."""

from __future__ import annotations

import asyncio
import datetime
import json
from pathlib import Path

import pytest
from google.oauth2.credentials import Credentials
from typer.testing import CliRunner

from agents.gmail.cli import app as gmail_cli
from agents.gmail.oauth import save_token
from tests.agents.gmail.conftest import eml
from tests.agents.gmail.world import World
from tests.fakes.gmail_server import MODIFY_SCOPE

FIX = "stepline gmail connect"


def revoke(world: World) -> None:
    """What removing the app at myaccount.google.com does: the refresh token stops working."""
    world.gmail.revoke(json.loads(world.token_file.read_text())["refresh_token"])


def reconnect(world: World) -> None:
    """What `stepline gmail connect` leaves behind: a new grant in the token file."""
    access, refresh = world.gmail.issue_token()
    old = json.loads(world.token_file.read_text())
    expiry = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(hours=1)
    creds = Credentials(
        token=access,
        refresh_token=refresh,
        token_uri=old["token_uri"],
        client_id=old["client_id"],
        client_secret=old["client_secret"],
        scopes=[MODIFY_SCOPE],
        expiry=expiry,
    )
    save_token(creds, world.token_file)


async def readyz(world: World) -> tuple[int, list[str], str]:
    r = await world.h.get("/readyz")
    return r.status_code, r.json().get("reasons", []), r.text


async def poll_logs(world: World, level: str) -> list[str]:
    return [e.message for e in await world.h.logs(step="GmailPoll") if e.level == level]


async def gmail_status(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple:
    monkeypatch.setenv("STEPLINE_DB", str(tmp_path / "stepline.db"))
    # the command runs its own event loop, as from a shell: not inside this test's loop
    result = await asyncio.to_thread(CliRunner().invoke, gmail_cli, ["status"])
    return result.exit_code, result.output


async def test_a_revoked_grant_is_recorded_once_named_and_not_hammered(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = world.secrets()
    assert (await readyz(world))[:2] == (200, [])
    revoke(world)
    waiting = world.gmail.add_message(eml("ham_plain.eml"))
    await world.poll()

    record = await world.h.state.get("gmail.status", "grant")
    assert record["status"] == "revoked" and record["since"]
    assert FIX in record["fix"] and record["token_file"] == str(world.token_file)
    status, reasons, text = await readyz(world)
    assert status == 503
    assert len(reasons) == 1 and reasons[0].startswith("flow gmail is not ready: Gmail access")
    assert "invalid_grant" in reasons[0] and FIX in reasons[0]
    code, out = await gmail_status(world, tmp_path, monkeypatch)
    assert code == 1 and "revoked" in out and FIX in out, out
    for name, value in secrets.items():
        assert value not in text and value not in out and value not in json.dumps(record), name

    # Further polls ask Google nothing, fail nothing, and warn no more.
    asked = len(world.gmail.requests)
    for _ in range(3):
        await world.poll()
    assert len(world.gmail.requests) == asked
    warnings = await poll_logs(world, "warning")
    assert len(warnings) == 1 and FIX in warnings[0]
    assert await poll_logs(world, "error") == [] and await world.h.dead_letters() == []
    assert await world.h.state.get("gmail.status", "grant") == record  # recorded once

    reconnect(world)
    assert (await readyz(world))[:2] == (200, [])  # the new grant is given its chance
    await world.poll()
    assert await world.h.state.get("gmail.status", "grant") is None
    assert (await readyz(world))[:2] == (200, [])
    received = [m.data["id"] for m in world.h.emitted("gmail.email.received")]
    assert waiting in received  # the mail that came meanwhile is read after all
    assert any("works again" in m for m in await poll_logs(world, "info"))
    code, out = await gmail_status(world, tmp_path, monkeypatch)
    assert code == 0 and "ok" in out, out


async def test_a_mail_step_that_meets_a_revoked_grant_dead_letters_at_once_with_the_fix(
    world: World,
) -> None:
    mid = world.gmail.add_message(eml("urgent_outage.eml"))
    revoke(world)
    await world.h.emit("gmail.message.new", {"id": mid, "source": "gmail"}, key=f"gmail:{mid}")
    await world.h.drain(timeout=20)
    dead = await world.h.dead_letters()
    assert [(d.step, d.attempts) for d in dead] == [("GmailProcessEmail", 1)]
    assert FIX in dead[0].error and "revoked" in dead[0].error
    assert json.loads(world.token_file.read_text())["refresh_token"] not in dead[0].traceback


async def test_push_notices_while_revoked_are_acknowledged_and_skipped_until_reconnect(
    world: World,
) -> None:
    revoke(world)
    await world.h.emit("gmail.sync.requested", {"history_id": "1"}, key="push:1")
    await world.h.drain(timeout=20)
    assert (await world.h.state.get("gmail.status", "grant"))["status"] == "revoked"
    asked = len(world.gmail.requests)
    await world.h.emit("gmail.sync.requested", {"history_id": "2"}, key="push:2")
    await world.h.drain(timeout=20)
    assert len(world.gmail.requests) == asked and await world.h.dead_letters() == []
    waiting = world.gmail.add_message(eml("ham_plain.eml"))
    reconnect(world)
    await world.h.emit("gmail.sync.requested", {"history_id": "3"}, key="push:3")
    await world.h.drain(timeout=20)
    assert await world.h.state.get("gmail.status", "grant") is None
    assert waiting in [m.data["id"] for m in world.h.emitted("gmail.email.received")]
