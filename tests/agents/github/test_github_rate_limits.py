"""GitHub's two rate limits, as real PyGithub (with our capped retry) meets them.

Primary: the quota is used up; 403/429 with `x-ratelimit-remaining: 0` and the reset epoch.
Secondary: 403/429 with `retry-after`. Either is waited out when it fits `api.max_retry_wait`,
and fails the attempt at once when it does not.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from github import Github, GithubException
from github.GithubException import RateLimitExceededExceedsMaxWait

from agents.github.client import GithubClients
from agents.github.settings import ApiSettings, GithubEnv
from tests.fakes.github_server import FakeGithub, FakePull

REPO = "acme/api"
PULL = r"/repos/acme/api/pulls/7"


@pytest.fixture
def patient(fake_github: tuple[FakeGithub, str]) -> Iterator[Github]:
    """A client allowed to wait 3 s: enough for a reset at most 1 s ahead, not for an hour."""
    fake, url = fake_github
    fake.add_pull(REPO, FakePull(number=7, head_sha="head1111"))
    api = ApiSettings(seconds_between_writes=0, max_retry_wait=3, retries=2)
    made = GithubClients(GithubEnv(token="test-token", api_url=url, _env_file=None), api)
    yield made.for_installation()
    made.close()


def test_every_answer_reports_the_quota_like_github(patient):
    assert patient.get_repo(REPO).get_pull(7).title  # the client is lazy: read to fetch
    seen = patient.get_repo(REPO).get_pull(7).raw_headers
    assert seen["x-ratelimit-limit"] == "5000" and seen["x-ratelimit-resource"] == "core"
    assert (seen["x-ratelimit-used"], seen["x-ratelimit-remaining"]) == ("2", "4998")
    assert int(seen["x-ratelimit-reset"]) > time.time()
    assert "retry-after" not in seen


@pytest.mark.parametrize("status", [403, 429])
def test_a_short_secondary_limit_is_waited_out_and_succeeds(fake_github, patient, status):
    fake, _ = fake_github
    fake.secondary_rate_limit(PULL, status=status, retry_after=1)
    assert patient.get_repo(REPO).get_pull(7).head.sha == "head1111"
    first, second = fake.calls(PULL, "GET")
    assert fake.limited == [first]
    # The client honoured Retry-After: it did not come back before the advised second.
    assert second.received_at - first.received_at >= 0.95


@pytest.mark.parametrize("status", [403, 429])
def test_a_primary_limit_resetting_soon_is_waited_for_and_succeeds(fake_github, patient, status):
    fake, _ = fake_github
    fake.exhaust_quota(reset_in=1, status=status)
    # The fake refuses every call until the reset: success means the client waited for it.
    pull = patient.get_repo(REPO).get_pull(7)
    assert pull.head.sha == "head1111"
    assert len(fake.limited) == 1 and len(fake.calls(PULL, "GET")) == 2
    # A fresh window after the reset: this call is its first.
    assert pull.raw_headers["x-ratelimit-remaining"] == "4999"


@pytest.mark.parametrize("status", [403, 429])
def test_a_primary_limit_resetting_in_an_hour_fails_at_once(fake_github, patient, status):
    fake, _ = fake_github
    fake.exhaust_quota(reset_in=3600, status=status)
    with pytest.raises(RateLimitExceededExceedsMaxWait) as err:
        _ = patient.get_repo(REPO).get_pull(7).title
    # One call, no sleeping, no hammering: the engine's retry comes back later.
    assert len(fake.calls(PULL, "GET")) == 1
    assert err.value.status == status and err.value.wait is not None and err.value.wait > 3000
    text = str(err.value)
    assert "rate limit" in text and "api.max_retry_wait" in text and "test-token" not in text


def test_a_long_secondary_limit_fails_at_once_with_a_clear_error(fake_github, patient):
    fake, _ = fake_github
    fake.secondary_rate_limit(PULL, status=403, retry_after=600, times=3)
    with pytest.raises(GithubException) as err:
        _ = patient.get_repo(REPO).get_pull(7).title
    assert len(fake.calls(PULL, "GET")) == 1
    assert err.value.status == 403 and "secondary rate limit" in str(err.value)
