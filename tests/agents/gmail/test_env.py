"""GMAIL_* variables come from the environment or from `.env`, through one settings class."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.gmail import services
from agents.gmail.api import api_url
from agents.gmail.env import GmailEnv
from agents.gmail.oauth import credentials_file, token_file, token_uri
from agents.gmail.pubsub import certs_url

VARS = {
    "GMAIL_CREDENTIALS_FILE": "/secrets/client.json",
    "GMAIL_TOKEN_FILE": "/secrets/token.json",
    "GMAIL_WEBHOOK_TOKEN": "hook-from-dotenv",
    "GMAIL_API_URL": "http://127.0.0.1:9/",
    "GMAIL_TOKEN_URI": "http://127.0.0.1:9/token",
    "GMAIL_PUSH_CERTS_URL": "http://127.0.0.1:9/certs",
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_gmail_variable_is_read_from_dotenv(project: Path) -> None:
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in VARS.items()))
    assert str(credentials_file()) == VARS["GMAIL_CREDENTIALS_FILE"]
    assert str(token_file()) == VARS["GMAIL_TOKEN_FILE"]
    assert services.webhook_token() == VARS["GMAIL_WEBHOOK_TOKEN"]
    assert api_url() == VARS["GMAIL_API_URL"]
    assert token_uri() == VARS["GMAIL_TOKEN_URI"]
    assert certs_url() == VARS["GMAIL_PUSH_CERTS_URL"]
    # one field per variable: a new GMAIL_* variable cannot bypass the class
    assert {f"GMAIL_{name.upper()}" for name in GmailEnv.model_fields} == set(VARS)


def test_the_environment_wins_over_dotenv_and_defaults_apply(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / ".env").write_text("GMAIL_TOKEN_FILE=/from/dotenv.json\n")
    monkeypatch.setenv("GMAIL_TOKEN_FILE", "/from/env.json")
    assert str(token_file()) == "/from/env.json"
    assert services.webhook_token() is None  # unset: the endpoint stays disabled
    assert api_url() == "https://gmail.googleapis.com/"
    assert str(credentials_file()) == "credentials.json"
    assert "hook-secret" not in repr(GmailEnv(webhook_token="hook-secret"))  # never printed


def test_a_client_file_named_only_in_dotenv_turns_the_flow_on(project: Path) -> None:
    from agents.gmail import plugin

    assert not plugin.status().configured
    (project / ".env").write_text("GMAIL_CREDENTIALS_FILE=/secrets/missing-client.json\n")
    status = plugin.status()
    assert status.configured
    assert any("missing-client.json does not exist" in p for p in status.problems)
