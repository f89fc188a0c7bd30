"""config/github.yaml hot reload, the start-up check, and the daily report's counters."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agents.github import plugin, services
from agents.github.report import build_report, record
from agents.github.settings import SettingsStore
from app.testing import Harness


def write(path: Path, text: str, bump: int) -> None:
    path.write_text(text)
    # Same-second edits must still be seen: move the mtime on explicitly.
    stamp = 1_700_000_000 + bump
    os.utime(path, (stamp, stamp))


def test_hot_reload_keeps_last_good_settings_and_names_the_key(tmp_path, caplog):
    path = tmp_path / "github.yaml"
    store = SettingsStore(path)
    assert store.current().report.cron == "0 9 * * *"  # no file: defaults
    write(path, "repositories: [acme/api]\nslack:\n  channels: {acme/api: '#api'}\n", 1)
    assert store.current().repositories == ["acme/api"]
    assert store.current().channel_for("ACME/api") == "#api"
    with caplog.at_level(logging.ERROR):
        write(path, "repositories: [acme/api]\nreview:\n  max_input_tokenz: 5\n", 2)
        assert store.current().repositories == ["acme/api"]
    assert "review.max_input_tokenz" in caplog.text and "keeping the last good" in caplog.text
    write(path, "merge:\n  acme/api: {min_score: 150}\n", 3)
    assert store.current().repositories == ["acme/api"]
    assert "merge.acme/api.min_score" in (store.last_error or "")
    write(path, "report: {cron: '0 9 * *'}\n", 4)
    assert store.current().repositories == ["acme/api"]
    assert "report.cron" in (store.last_error or "")
    write(path, "review: {debounce_seconds: 300, debounce_max_wait: 60}\n", 5)
    assert store.current().review.debounce_seconds == 20
    assert "debounce_max_wait must be at least debounce_seconds" in (store.last_error or "")
    write(path, "repositories: [\n", 6)
    assert store.current().repositories == ["acme/api"]
    assert "not valid YAML" in (store.last_error or "")
    write(path, "report: {cron: '30 8 * * 1-5', timezone: Europe/Paris}\n", 7)
    assert store.current().report.timezone == "Europe/Paris" and store.last_error is None


@pytest.fixture
def github_env(monkeypatch, tmp_path):
    for name in (
        "GITHUB_TOKEN",
        "GITHUB_APP_ID",
        "GITHUB_APP_PRIVATE_KEY_FILE",
        "GITHUB_WEBHOOK_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STEPLINE_CONFIG_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no stray .env
    services.reset()
    yield monkeypatch
    services.reset()


def test_status_lists_what_is_missing(github_env, tmp_path):
    nothing = plugin.status()
    assert not nothing.configured and nothing.enabled is None
    assert "GITHUB_WEBHOOK_SECRET" in nothing.turn_on
    github_env.setenv("GITHUB_TOKEN", "ghp_x")
    half = plugin.status()
    assert half.configured and len(half.problems) == 1
    assert "GITHUB_WEBHOOK_SECRET is not set" in half.problems[0]
    github_env.setenv("GITHUB_WEBHOOK_SECRET", "s3cret-value")
    assert plugin.status().problems == []
    github_env.delenv("GITHUB_TOKEN")
    github_env.setenv("GITHUB_APP_ID", "12")
    github_env.setenv("GITHUB_APP_PRIVATE_KEY_FILE", str(tmp_path / "nope.pem"))
    assert [p.split(" ")[0] for p in plugin.status().problems] == ["GITHUB_APP_PRIVATE_KEY_FILE"]
    (tmp_path / "nope.pem").write_text("not a key")
    assert "not a PEM private key" in plugin.status().problems[0]


def test_enabled_key_is_reported_only_when_set(github_env, tmp_path):
    (tmp_path / "github.yaml").write_text("enabled: false\n")
    services.reset()
    assert plugin.status().enabled is False


async def test_report_counts_once_per_event_and_reads_the_previous_day():
    day1 = datetime(2024, 5, 1, 15, tzinfo=UTC)
    day2 = datetime(2024, 5, 2, 9, tzinfo=UTC)
    async with Harness(steps=[]) as h:
        state = h.state
        writes = [
            record(state, "opened", "acme/api", "7", now=day1),
            record(state, "opened", "acme/api", "7", now=day1),  # a redelivery
            record(state, "opened", "acme/api", "8", now=day1),
            record(state, "reviewed", "acme/api", "7@h1:auto", score=80, now=day1),
            record(state, "reviewed", "acme/api", "7@h1:auto", score=80, now=day1),
            record(state, "reviewed", "acme/api", "8@h9:auto", score=60, now=day1),
            record(state, "merged", "acme/web", "3", now=day1),
            record(state, "opened", "acme/api", "9", now=day2),  # today: not in the report
        ]
        await asyncio.gather(*writes)  # concurrent writers lose nothing
        report = await build_report(state, now=day2)
        empty = await build_report(state, now=datetime(2024, 5, 20, 9, tzinfo=UTC))
    assert report.day == "2024-05-01"
    api, web = report.repos["acme/api"], report.repos["acme/web"]
    assert (api.opened, api.reviews, api.average_score, api.merged) == (2, 2, 70.0, 0)
    assert (web.opened, web.reviews, web.average_score, web.merged) == (0, 0, None, 1)
    assert "acme/api: 2 opened, 2 reviewed (average score 70), 0 merged" in report.text()
    assert empty.empty and "No pull request activity" in empty.text()


async def test_report_day_follows_the_time_zone():
    late = datetime(2024, 5, 1, 23, 30, tzinfo=UTC)  # already May 2nd in Tokyo
    async with Harness(steps=[]) as h:
        await record(h.state, "opened", "acme/api", "1", timezone="Asia/Tokyo", now=late)
        tokyo = await build_report(
            h.state, timezone="Asia/Tokyo", now=datetime(2024, 5, 3, 1, tzinfo=UTC)
        )
    assert tokyo.day == "2024-05-02" and tokyo.repos["acme/api"].opened == 1
