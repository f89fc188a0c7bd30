"""Fixtures for the GitHub flow: a fake GitHub served on loopback and clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents.github.client import GithubClients
from agents.github.settings import ApiSettings, GithubEnv
from tests.fakes.common import LoopbackServer
from tests.fakes.github_server import FakeGithub

# No pauses between requests, and rate-limit waits capped far below a second.
FAST_API = ApiSettings(max_retry_wait=0.2, retries=2, per_page=2)


@pytest.fixture
def fake_github() -> Iterator[tuple[FakeGithub, str]]:
    service = FakeGithub()
    with LoopbackServer(service) as server:
        yield service, server.url


@pytest.fixture
def clients(fake_github: tuple[FakeGithub, str]) -> Iterator[GithubClients]:
    _, url = fake_github
    made = GithubClients(GithubEnv(token="test-token", api_url=url, _env_file=None), FAST_API)
    yield made
    made.close()
