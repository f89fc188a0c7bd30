"""Fixtures for the Gmail flow: a loopback Gmail, a stored token pointing at it, sample mail."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.oauth2.credentials import Credentials

from agents.gmail.api import GmailAPI
from agents.gmail.oauth import save_token

# the end-to-end world (Harness + loopback services), shared by the flow and learning tests
from tests.agents.gmail.world import servers, world, world_clock  # noqa: F401
from tests.fakes.common import LoopbackServer
from tests.fakes.gmail_server import MODIFY_SCOPE, FakeGmail

EML = Path(__file__).resolve().parents[2] / "data" / "eml"


def eml(name: str) -> bytes:
    return (EML / name).read_bytes()


@pytest.fixture
def gmail() -> Iterator[tuple[FakeGmail, str]]:
    fake = FakeGmail()
    with LoopbackServer(fake) as server:
        yield fake, server.url


@pytest.fixture
def gmail_env(
    gmail: tuple[FakeGmail, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[FakeGmail, str, Path]:
    """A connected account: token file written, every GMAIL_* variable pointing at the fake."""
    fake, url = gmail
    access, refresh = fake.issue_token()
    creds = Credentials(
        token=access,
        refresh_token=refresh,
        token_uri=f"{url}/token",
        client_id="client-id.apps.googleusercontent.com",
        client_secret="client-secret",
        scopes=[MODIFY_SCOPE],
        expiry=datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        + datetime.timedelta(hours=1),
    )
    token = tmp_path / "state" / "gmail-token.json"
    save_token(creds, token)
    monkeypatch.setenv("GMAIL_TOKEN_FILE", str(token))
    monkeypatch.setenv("GMAIL_API_URL", url)
    monkeypatch.setenv("GMAIL_TOKEN_URI", f"{url}/token")
    monkeypatch.setenv("STEPLINE_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "config").mkdir()
    return fake, url, token


@pytest.fixture
def api(gmail_env: tuple[FakeGmail, str, Path]) -> GmailAPI:
    return GmailAPI.connect()
