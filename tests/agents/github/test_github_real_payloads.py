"""The webhook router on GitHub's real payloads: the example deliveries of every event the
merge gate listens to, as published in npm's `@octokit/webhooks-examples` (captured from
github.com and GitHub Enterprise Server). Downloaded once into ~/.cache/stepline-bench/; the
test skips, saying why, when npm or the registry cannot be reached."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from agents.github.events import TOPIC_MERGE_CHECK, MergeCheck
from agents.github.settings import GithubSettings
from agents.github.webhook import decide

PACKAGE = "@octokit/webhooks-examples@7.6.1"
CACHE = Path.home() / ".cache" / "stepline-bench" / "octokit-webhooks-examples-7.6.1"
EVENTS = ("check_suite", "check_run", "status", "pull_request_review", "pull_request")
PASSING = {"success", "neutral", "skipped"}


def _download() -> Path:
    target = CACHE / "package"
    if (target / "api.github.com" / "index.json").is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: cannot fetch the real webhook examples")
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [npm, "pack", PACKAGE, "--silent"],
            cwd=CACHE,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm pack {PACKAGE} timed out")
    archives = sorted(CACHE.glob("octokit-webhooks-examples-*.tgz"))
    if done.returncode != 0 or not archives:
        pytest.skip(f"npm pack {PACKAGE} failed: {done.stderr.strip()[:200]}")
    with tarfile.open(archives[-1]) as tar:
        tar.extractall(CACHE, filter="data")
    return target


def examples() -> list[tuple[str, dict[str, Any]]]:
    root = _download()
    found = []
    for index in sorted(root.glob("*/index.json")):
        for entry in json.loads(index.read_text(encoding="utf-8")):
            if entry["name"] in EVENTS:
                found += [(entry["name"], example) for example in entry["examples"]]
    return found


def merge_on(payload: dict[str, Any], label: str | None = None) -> GithubSettings:
    repo = payload["repository"]["full_name"]
    policy: dict[str, Any] = {"enabled": True}
    if label is not None:
        policy["required_label"] = label
    return GithubSettings.model_validate({"merge": {repo: policy}})


def expected_numbers(event: str, payload: dict[str, Any]) -> list[int] | None:
    """The pull requests a delivery should re-check, or None when nothing should happen."""
    action = payload.get("action")
    if event in ("check_suite", "check_run"):
        part = payload[event]
        if action != "completed" or part.get("conclusion") not in PASSING:
            return None
        return [p["number"] for p in part["pull_requests"]]
    if event == "status":
        return [] if payload["state"] == "success" else None
    if event == "pull_request_review":
        approved = action == "submitted" and payload["review"]["state"] == "approved"
        return [payload["pull_request"]["number"]] if approved else None
    return [payload["number"]] if action == "labeled" else None


def test_every_real_example_is_understood_and_routed():
    seen: dict[str, int] = {}
    rechecks = 0
    for event, payload in examples():
        label = (payload.get("label") or {}).get("name") if event == "pull_request" else None
        decision = decide(event, payload, merge_on(payload, label))
        # A real delivery is never answered as malformed.
        assert decision.status == 202, (event, payload.get("action"), decision.reason)
        seen[event] = seen.get(event, 0) + 1
        if event == "pull_request" and payload.get("action") not in ("labeled", "unlabeled"):
            continue
        checks = [
            MergeCheck(**data) for topic, data in decision.emits if topic == TOPIC_MERGE_CHECK
        ]
        wanted = expected_numbers(event, payload)
        if wanted is None:
            assert checks == [], (event, payload.get("action"), decision.reason)
            continue
        [check] = checks
        rechecks += 1
        assert check.numbers == wanted and check.repo == payload["repository"]["full_name"]
        if event != "pull_request_review" and event != "pull_request":
            head = payload["sha"] if event == "status" else payload[event]["head_sha"]
            assert check.head_sha == head
        # Off for the repository: acknowledged, and nothing waits for it.
        assert decide(event, payload, GithubSettings()).emits == [], (event, payload.get("action"))
    assert set(seen) == set(EVENTS) and rechecks >= 10, seen
