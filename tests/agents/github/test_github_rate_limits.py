"""GitHub's two rate limits, as real PyGithub (with our capped retry) meets them.

Primary: the quota is used up; 403/429 with `x-ratelimit-remaining: 0` and the reset epoch.
Secondary: 403/429 with `retry-after`. Neither is slept through: the call fails at once with
GitHub's wait (a primary limit's until its reset, however soon), for the runtime to
re-schedule the step.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from github import Github, GithubException
from github.GithubException import RateLimitExceededExceedsMaxWait

from agents.github.client import GithubClients, github_wait
from agents.github.settings import ApiSettings, GithubEnv
from tests.fakes.github_server import FakeGithub, FakePull

REPO = "acme/api"
PULL = r"/repos/acme/api/pulls/7"


@pytest.fixture
def patient(fake_github: tuple[FakeGithub, str]) -> Iterator[Github]:
    """A client allowed to wait 3 s: enough for a reset at most 1 s ahead, not for an hour."""
    fake, url = fake_github
    fake.add_pull(REPO, FakePull(number=7, head_sha="head1111"))
    api = ApiSettings(max_retry_wait=3, retries=2)
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
def test_a_secondary_limit_is_not_slept_through_but_handed_back_with_its_wait(
    fake_github, patient, status
):
    fake, _ = fake_github
    fake.secondary_rate_limit(PULL, status=status, retry_after=2)
    with pytest.raises(RateLimitExceededExceedsMaxWait) as err:
        _ = patient.get_repo(REPO).get_pull(7).title
    # One call and no sleep: the runtime re-schedules the step after GitHub's wait.
    assert len(fake.calls(PULL, "GET")) == 1
    assert github_wait(err.value) == 2
    assert "secondary rate limit" in str(err.value) and "test-token" not in str(err.value)
    assert patient.get_repo(REPO).get_pull(7).head.sha == "head1111"  # the limit passed


def test_without_client_retries_the_wait_is_read_from_the_answer(fake_github):
    fake, url = fake_github
    fake.add_pull(REPO, FakePull(number=7, head_sha="head1111"))
    made = GithubClients(
        GithubEnv(token="test-token", api_url=url, _env_file=None), ApiSettings(retries=0)
    )
    fake.secondary_rate_limit(PULL, status=429, retry_after=7)
    with pytest.raises(GithubException) as err:
        _ = made.for_installation().get_repo(REPO).get_pull(7).title
    assert github_wait(err.value) == 7
    fake.secondary_rate_limit(PULL, status=404, retry_after=7)  # not a rate limit
    with pytest.raises(GithubException) as other:
        _ = made.for_installation().get_repo(REPO).get_pull(7).title
    assert github_wait(other.value) is None
    made.close()


@pytest.mark.parametrize("status", [403, 429])
def test_a_primary_limit_resetting_soon_is_handed_back_with_its_wait(fake_github, patient, status):
    fake, _ = fake_github
    fake.exhaust_quota(reset_in=2, status=status)
    # Within api.max_retry_wait (3 s), still not slept in the handler: one call, then the
    # wait until the reset goes to the runtime (ctx.retry_after through paced_by_runtime).
    with pytest.raises(RateLimitExceededExceedsMaxWait) as err:
        _ = patient.get_repo(REPO).get_pull(7).title
    assert len(fake.limited) == 1 and len(fake.calls(PULL, "GET")) == 1
    assert err.value.status == status
    assert 0 < (github_wait(err.value) or 0) <= 2.25
    assert "quota used up" in str(err.value) and "test-token" not in str(err.value)


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
    assert "rate limit" in text and "test-token" not in text
    assert 3000 < (github_wait(err.value) or 0) <= 3601


def test_a_long_secondary_limit_fails_at_once_with_a_clear_error(fake_github, patient):
    fake, _ = fake_github
    fake.secondary_rate_limit(PULL, status=403, retry_after=600, times=3)
    with pytest.raises(GithubException) as err:
        _ = patient.get_repo(REPO).get_pull(7).title
    assert len(fake.calls(PULL, "GET")) == 1
    assert err.value.status == 403 and "secondary rate limit" in str(err.value)
    assert github_wait(err.value) == 600
