"""GitHub writes are paced by the runtime, not by sleeps in the client: every step that writes
(the review, the merge, its re-check) has a rate limit per installation, so across processes
no more than `api.writes_per_minute` merge runs start a minute; past it a delivery waits as
scheduled and runs when the window frees. Through the loopback fake GitHub and PyGithub."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from gh_payloads import pull_request
from test_github_flow import CONFIG, deliver, start_flow

from agents.github.client import GithubClients
from agents.github.settings import ApiSettings
from tests.fakes.github_server import FakePull, file_entry
from tests.support import until

CLEAN = "@@ -1,1 +1,2 @@\n x = 1\n+y = 2"
PACED = (
    CONFIG.replace("max_retry_wait: 0.2}", "max_retry_wait: 0.2, writes_per_minute: 2}")
    + "merge:\n  acme/api: {enabled: true}\n"
)
MERGE_PUT = r"/repos/acme/api/pulls/\d+/merge"


def add_ready_pull(github: Any, number: int) -> None:
    head = f"head{number:04d}"
    files = [file_entry("src/calc.py", CLEAN), file_entry("tests/test_calc.py", CLEAN)]
    github.add_pull(
        "acme/api", FakePull(number=number, head_sha=head, labels=["automerge"], files=files)
    )
    github.check_runs[head] = [
        {"id": number, "name": "ci", "status": "completed", "conclusion": "success"}
    ]


async def test_merges_past_the_write_budget_wait_for_the_next_minute(monkeypatch, tmp_path):
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()]
    async with start_flow(monkeypatch, tmp_path, PACED, clock=lambda: now[0]) as started:
        h, github, _ = started
        for number in (8, 9, 10):
            add_ready_pull(github, number)
            opened = pull_request("opened", number=number, head=f"head{number:04d}")
            assert (await deliver(h, "pull_request", opened, f"d-{number}")).status_code == 202

        async def held() -> list[dict[str, Any]]:
            await h.runtime.writer.flush()
            h.runtime.engine.wake(None)
            events = (await h.get("/_stepline/events")).json()
            merging = [q for q in events["scheduled"] if q["step"] == "MergePullRequest"]
            return merging if len(github.merges) == 2 else []

        # Three reviews, two merges in the minute; the third merge waits for the window.
        [waiting] = await until("two merges and one held back", held, timeout=30)
        assert len(github.reviews) == 3 and now[0] < waiting["due"] <= now[0] + 60
        assert len(github.calls(MERGE_PUT, "PUT")) == 2
        now[0] += 61
        await h.drain(timeout=20)
        assert sorted(m["number"] for m in github.merges) == [8, 9, 10]
        assert len(github.calls(MERGE_PUT, "PUT")) == 3

        # The re-check writes too (merge, auto-merge arm/disarm): the same budget per step.
        for step in ("MergePullRequest", "RecheckMerge"):
            detail = (await h.get(f"/workbench/api/steps/{step}")).json()
            assert "at most 2 per minute per key installation()" in detail["flow_control"]


def test_the_client_no_longer_sleeps_between_writes_and_says_so(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="stepline.github"):
        GithubClients(api=ApiSettings(seconds_between_writes=1.0))
    [record] = [r for r in caplog.records if "seconds_between_writes" in r.getMessage()]
    assert "deprecated and ignored" in record.getMessage()
