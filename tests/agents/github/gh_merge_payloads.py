"""Deliveries the merge gate waits for, shaped like GitHub's (webhook events and payloads docs).

Trimmed to the fields a receiver may read. Of note: `check_suite.pull_requests` and
`check_run.pull_requests` list only pull requests whose head branch is in the same repository
(a fork's are missing), and a `status` delivery names a commit, never a pull request.
"""

from __future__ import annotations

from typing import Any

from gh_payloads import _user, pull_request, repository


def _pr_ref(number: int, head: str, repo: str, base_repo: str | None = None) -> dict[str, Any]:
    def ref(full: str) -> dict[str, Any]:
        found = repository(full)
        api = f"https://api.github.com/repos/{full}"
        ident = found["id"] + (0 if full == repo else 1)  # `repository()` has one id for all
        return {"id": ident, "url": api, "name": found["name"]}

    return {
        "url": f"https://api.github.com/repos/{base_repo or repo}/pulls/{number}",
        "id": number * 7,
        "number": number,
        "head": {"ref": "feature", "sha": head, "repo": ref(repo)},
        "base": {"ref": "main", "sha": "base0000", "repo": ref(base_repo or repo)},
    }


def check_suite(
    numbers: tuple[int, ...] = (7,),
    *,
    head: str = "head1111",
    conclusion: str | None = "success",
    action: str = "completed",
    repo: str = "acme/api",
    elsewhere: tuple[tuple[int, str], ...] = (),
) -> dict[str, Any]:
    """`elsewhere`: (number, base repository) of pull requests into other repositories."""
    others = [_pr_ref(n, head, repo, base) for n, base in elsewhere]
    return {
        "action": action,
        "check_suite": {
            "id": 118578147,
            "head_branch": "feature",
            "head_sha": head,
            "status": "completed" if action == "completed" else "queued",
            "conclusion": conclusion,
            "pull_requests": [_pr_ref(n, head, repo) for n in numbers] + others,
            "app": {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"},
        },
        "repository": repository(repo),
        "sender": _user("github-actions[bot]", "Bot"),
    }


def check_run(
    name: str = "tests",
    numbers: tuple[int, ...] = (7,),
    *,
    head: str = "head1111",
    conclusion: str | None = "success",
    repo: str = "acme/api",
) -> dict[str, Any]:
    return {
        "action": "completed",
        "check_run": {
            "id": 128620228,
            "name": name,
            "head_sha": head,
            "status": "completed",
            "conclusion": conclusion,
            "pull_requests": [_pr_ref(n, head, repo) for n in numbers],
            "check_suite": {"id": 118578147, "head_sha": head},
        },
        "repository": repository(repo),
        "sender": _user("github-actions[bot]", "Bot"),
    }


def status(
    state: str = "success", *, sha: str = "head1111", context: str = "ci/jenkins"
) -> dict[str, Any]:
    return {
        "id": 6805126730,
        "sha": sha,
        "name": "acme/api",
        "target_url": "https://ci.example.com/build/1",
        "context": context,
        "description": "The build succeeded",
        "state": state,
        "branches": [{"name": "feature", "commit": {"sha": sha}}],
        "repository": repository(),
        "sender": _user("ci-bot"),
    }


def labeled(
    label: str = "automerge", *, action: str = "labeled", number: int = 7
) -> dict[str, Any]:
    payload = pull_request(action, number=number)
    payload["label"] = {"id": 208045946, "name": label, "color": "0e8a16"}
    payload["pull_request"]["labels"] = [payload["label"]] if action == "labeled" else []
    return payload


def review_submitted(state: str = "approved", *, number: int = 7) -> dict[str, Any]:
    payload = pull_request("submitted", number=number)
    payload["review"] = {
        "id": 80,
        "user": _user("maintainer"),
        "body": "Looks good",
        "state": state,
        "commit_id": "head1111",
        "author_association": "MEMBER",
    }
    return payload
