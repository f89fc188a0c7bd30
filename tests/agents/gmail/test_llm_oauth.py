"""The LLM spam source against the fake OpenAI server, and the OAuth connect flow."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from agents.gmail.oauth import SCOPE_MODIFY, connect, load_credentials
from agents.gmail.parse import parse_raw
from agents.gmail.settings import SpamSettings
from agents.gmail.spam import assess_spam
from agents.llm import LLMClient, LLMSettings
from tests.agents.gmail.conftest import eml
from tests.fakes.common import LoopbackServer
from tests.fakes.gmail_server import FakeGmail
from tests.fakes.openai_server import FakeOpenAI


async def test_llm_verdict_joins_the_score_and_sees_no_secrets() -> None:
    fake = FakeOpenAI()
    with LoopbackServer(fake) as server:
        llm = LLMClient(
            LLMSettings(
                OPENAI_API_KEY=fake.api_key, OPENAI_BASE_URL=f"{server.url}/v1", LLM_MAX_RETRIES=0
            )
        )
        fake.queue_replies(json.dumps({"spam_probability": 0.95, "reason": "credential phishing"}))
        mail = parse_raw(eml("ham_plain.eml"))
        mail = mail.model_copy(update={"text": mail.text + "\npassword: hunter2222"})
        verdict = await assess_spam(mail, SpamSettings(use_bayes=False), llm=llm)
        await llm.aclose()
    assert set(verdict.sources) == {"rules", "llm"} and verdict.sources["llm"] == 0.95
    # evidence adds up: the LLM's suspicion raises what the rules alone would say
    assert verdict.score > 10 * verdict.sources["rules"]
    assert "LLM (0.95): credential phishing" in verdict.reasons
    sent = json.dumps(fake.completion_requests())
    assert "hunter2222" not in sent and "alice@partner.org" in sent


async def test_llm_failure_falls_back_to_local_sources() -> None:
    fake = FakeOpenAI()
    with LoopbackServer(fake) as server:
        fake.inject(r"/v1/chat/completions", fake.server_error())
        llm = LLMClient(
            LLMSettings(
                OPENAI_API_KEY=fake.api_key, OPENAI_BASE_URL=f"{server.url}/v1", LLM_MAX_RETRIES=0
            )
        )
        verdict = await assess_spam(parse_raw(eml("phishing.eml")), SpamSettings(), llm=llm)
        await llm.aclose()
    assert set(verdict.sources) == {"rules"} and verdict.is_spam


def test_connect_runs_the_installed_app_flow_and_stores_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake token endpoint is http
    fake = FakeGmail()
    with LoopbackServer(fake) as server:
        monkeypatch.setenv("GMAIL_TOKEN_URI", f"{server.url}/token")
        client = tmp_path / "client.json"
        client.write_text(
            json.dumps(
                {
                    "installed": {
                        "client_id": "cid.apps.googleusercontent.com",
                        "client_secret": "csecret",
                        "auth_uri": f"{server.url}/auth",
                        "token_uri": f"{server.url}/token",
                        "redirect_uris": ["http://localhost"],
                    }
                }
            )
        )
        token = tmp_path / "new" / "token.json"
        urls: list[str] = []

        def browser(url: str) -> None:
            # what the user's browser does after consent: Google redirects to the local server
            urls.append(url)
            query = parse_qs(urlsplit(url).query)
            redirect = query["redirect_uri"][0]

            def follow() -> None:
                httpx.get(
                    redirect, params={"code": "good-code", "state": query["state"][0]}, timeout=10
                )

            threading.Timer(0.05, follow).start()

        creds = connect(
            client_file=client, token_path=token, host="localhost", on_url=browser, timeout=20
        )
    query = parse_qs(urlsplit(urls[0]).query)
    assert query["scope"] == [SCOPE_MODIFY] and query["access_type"] == ["offline"]
    assert creds.refresh_token and stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700
    assert json.loads(token.read_text())["refresh_token"] == creds.refresh_token
    assert load_credentials(token).refresh_token == creds.refresh_token


def test_connect_without_client_file_says_what_to_do(tmp_path: Path) -> None:
    from agents.gmail.errors import GmailError

    with pytest.raises(GmailError, match="GMAIL_CREDENTIALS_FILE"):
        connect(client_file=tmp_path / "missing.json", token_path=tmp_path / "t.json")
