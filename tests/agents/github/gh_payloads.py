"""Webhook deliveries shaped like GitHub's (trimmed to the fields a receiver may read)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

SECRET = "It's a Secret to Everybody"


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(
    event: str,
    body: bytes,
    delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    secret: str | None = SECRET,
) -> dict[str, str]:
    out = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Hook-ID": "292430182",
    }
    if secret is not None:
        out["X-Hub-Signature-256"] = sign(body, secret)
    return out


def _user(login: str, kind: str = "User") -> dict[str, Any]:
    return {
        "login": login,
        "id": 1,
        "type": kind,
        "site_admin": False,
        "html_url": f"https://github.com/{login}",
    }


def repository(full_name: str = "acme/api") -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": 1296269,
        "name": name,
        "full_name": full_name,
        "private": False,
        "owner": _user(owner, "Organization"),
        "html_url": f"https://github.com/{full_name}",
        "default_branch": "main",
    }


def pull_request(
    action: str = "opened",
    *,
    number: int = 7,
    repo: str = "acme/api",
    head: str = "head1111",
    draft: bool = False,
    author: str = "octocat",
    author_type: str = "User",
    merged: bool = False,
    before: str | None = None,
    installation: int | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "action": action,
        "number": number,
        "pull_request": {
            "url": f"https://api.github.com/repos/{repo}/pulls/{number}",
            "id": 1,
            "number": number,
            "state": "closed" if action == "closed" else "open",
            "locked": False,
            "title": "Add rate limiter",
            "user": _user(author, author_type),
            "body": "Adds a token bucket.",
            "draft": draft,
            "merged": merged,
            "merged_by": _user("maintainer") if merged else None,
            "html_url": f"https://github.com/{repo}/pull/{number}",
            "head": {"ref": "feature", "sha": head, "repo": repository(repo)},
            "base": {"ref": "main", "sha": "base0000", "repo": repository(repo)},
            "author_association": "CONTRIBUTOR",
            "labels": [],
        },
        "repository": repository(repo),
        "sender": _user(author, author_type),
    }
    if before:
        payload["before"], payload["after"] = before, head
    if installation is not None:
        payload["installation"] = {"id": installation, "node_id": "MDIz"}
    return payload


def issue_comment(
    body: str = "/review",
    *,
    association: str = "MEMBER",
    number: int = 7,
    repo: str = "acme/api",
    on_pull: bool = True,
    comment_id: int = 555,
    login: str = "maintainer",
    user_type: str = "User",
    action: str = "created",
) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "number": number,
        "title": "Add rate limiter",
        "state": "open",
        "user": _user("octocat"),
        "html_url": f"https://github.com/{repo}/pull/{number}",
    }
    if on_pull:
        issue["pull_request"] = {"url": f"https://api.github.com/repos/{repo}/pulls/{number}"}
    return {
        "action": action,
        "issue": issue,
        "comment": {
            "id": comment_id,
            "body": body,
            "user": _user(login, user_type),
            "author_association": association,
        },
        "repository": repository(repo),
        "sender": _user(login, user_type),
    }


def ping() -> dict[str, Any]:
    return {
        "zen": "Keep it logically awesome.",
        "hook_id": 292430182,
        "hook": {
            "type": "Repository",
            "events": ["pull_request", "issue_comment"],
            "config": {"content_type": "json", "insecure_ssl": "0"},
        },
        "repository": repository(),
    }


def body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()
