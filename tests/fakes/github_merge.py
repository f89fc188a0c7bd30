"""The loopback GitHub's merge side: checks, statuses, mergeability, merging, auto-merge.

Kept apart from `github_server` (pulls, files, reviews) because it follows a different part of
GitHub's documentation, and both halves stay readable. What it reproduces, and why:

- `mergeable` is computed in the background after a push: the first read of a pull request
  after `push()` (or after it is added) answers `mergeable: null`, `mergeable_state: unknown`;
  the next read has the value. A pull whose `mergeable` is None never finishes computing.
- check runs and commit statuses are per commit and change while CI runs; `finish_check()` is
  what a CI provider's PATCH does. The combined status of a commit without statuses is
  `pending` with `total_count: 0`, as on GitHub.
- `PUT .../merge` (docs: rest/pulls/pulls#merge-a-pull-request): 409 when `sha` is not the
  head, 405 when the pull cannot be merged (closed, merged, conflicts, a required check of the
  branch protection not passed, a merge method the repository does not allow), 422 for an
  unknown `merge_method`.
- GraphQL `enablePullRequestAutoMerge` / `disablePullRequestAutoMerge`: refused unless the
  repository allows auto-merge; refused with "... is in clean status" (or "unstable") when the
  pull could be merged right now, since there is nothing to wait for; otherwise armed, and the
  fake merges by itself once every required check has passed, as GitHub does.
- `GET .../commits/{sha}/pulls`: the open pull requests whose head is that commit (a fork's
  too, unless `commit_pulls_lists_forks` is False: GitHub documents the lookup for commits of
  the repository itself only); `GET .../pulls?state=` lists pull requests, paginated.
- `GET .../contents/{path}?ref=`: files per (repository, ref), base64 as GitHub sends them.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable
from typing import Any

from tests.fakes.common import FakeRequest, Reply

__all__ = ["MergeRules"]

DOCS = "https://docs.github.com/rest"
_REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
_GOOD = frozenset({"success", "neutral", "skipped"})
_METHODS = ("merge", "squash", "rebase")


class MergeRules:
    """Mixed into `FakeGithub`; expects its `pulls`, `lock`, `_pull`, `_pull_json`, `_page`."""

    pulls: dict[tuple[str, int], Any]
    lock: threading.RLock
    merges: list[dict[str, Any]]
    route: Callable[..., None]
    _pull: Callable[..., Any]
    _pull_json: Callable[..., dict[str, Any]]
    _page: Callable[..., tuple[list[Any], dict[str, str]]]
    not_found: Callable[[FakeRequest], Reply]
    actor: Callable[[FakeRequest], dict[str, str]]

    def _merge_routes(self) -> None:
        self.check_runs: dict[str, list[dict[str, Any]]] = {}
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        # Branch protection: check names that must pass before GitHub merges (per repository).
        self.required_checks: dict[str, list[str]] = {}
        self.allow_auto_merge: dict[str, bool] = {}
        self.allowed_methods: dict[str, tuple[str, ...]] = {}
        self.repo_files: dict[tuple[str, str], dict[str, str]] = {}
        self.graphql_calls: list[dict[str, Any]] = []
        self.commit_pulls_lists_forks = True
        self.route("PUT", _REPO + r"/pulls/(?P<number>\d+)/merge", self.merge)
        self.route("GET", _REPO + r"/commits/(?P<sha>[^/]+)/check-runs", self.list_check_runs)
        self.route("GET", _REPO + r"/commits/(?P<sha>[^/]+)/status", self.combined_status)
        self.route("GET", _REPO + r"/commits/(?P<sha>[^/]+)/pulls", self.commit_pulls)
        self.route("GET", _REPO + r"/pulls", self.list_pulls)
        self.route("GET", _REPO + r"/contents/(?P<path>.+)", self.get_contents)
        self.route("POST", r"/graphql", self.graphql)

    # ---- scripting -------------------------------------------------------------------------
    def push(self, repo: str, number: int, sha: str) -> None:
        """New commits on the head: mergeability is computed again, auto-merge stays armed."""
        with self.lock:
            pr = self.pulls[(repo.lower(), number)]
            pr.head_sha, pr.unknown_reads = sha, 1

    def finish_check(self, sha: str, name: str, conclusion: str = "success") -> None:
        """CI finishes one check run; an armed auto-merge fires when that was the last one."""
        with self.lock:
            for run in self.check_runs.get(sha, []):
                if run["name"] == name:
                    run.update(status="completed", conclusion=conclusion)
            for (repo, _), pr in list(self.pulls.items()):
                if pr.head_sha == sha and pr.auto_merge and self._ready(repo, pr) is None:
                    self._do_merge(repo, pr, {"merge_method": pr.auto_merge["merge_method"]}, True)

    def add_check(self, sha: str, name: str, status: str = "in_progress") -> None:
        with self.lock:
            runs = self.check_runs.setdefault(sha, [])
            runs.append({"id": 100 + len(runs), "name": name, "status": status, "conclusion": None})

    # ---- rules -----------------------------------------------------------------------------
    def _checks_of(self, sha: str) -> dict[str, str | None]:
        """Check name -> conclusion (None while running), statuses counted as checks."""
        out: dict[str, str | None] = {}
        for run in self.check_runs.get(sha, []):
            out[run["name"]] = run.get("conclusion") if run.get("status") == "completed" else None
        for status in self.statuses.get(sha, []):
            state = status.get("state")
            out[status.get("context", "default")] = None if state == "pending" else state
        return out

    def _ready(self, repo: str, pr: Any) -> str | None:
        """Why GitHub would not merge this pull now (405's message), or None."""
        if pr.merged or pr.state != "open" or not pr.mergeable:
            return "Pull Request is not mergeable"
        checks = self._checks_of(pr.head_sha)
        for name in self.required_checks.get(repo, []):
            if checks.get(name) not in _GOOD:
                return f'Required status check "{name}" is expected.'
        return None

    def _do_merge(self, repo: str, pr: Any, data: dict[str, Any], auto: bool) -> None:
        pr.merged, pr.state, pr.auto_merge = True, "closed", None
        entry = {"repo": repo, "number": pr.number, **data}
        if auto:
            entry["by"] = "auto-merge"
        self.merges.append(entry)

    # ---- routes ----------------------------------------------------------------------------
    def merge(self, req: FakeRequest, owner: str, name: str, number: str) -> Reply:
        pr = self._pull(owner, name, number)
        if pr is None:
            return self.not_found(req)
        repo = f"{owner}/{name}".lower()
        data = req.json() or {}
        method = data.get("merge_method", "merge")
        if method not in _METHODS:
            return Reply.json({"message": "Validation Failed", "documentation_url": DOCS}, 422)
        with self.lock:
            if data.get("sha") and data["sha"] != pr.head_sha:
                message = "Head branch was modified. Review and try the merge again."
                return Reply.json({"message": message, "documentation_url": DOCS}, 409)
            if method not in self.allowed_methods.get(repo, _METHODS):
                message = f"{method.capitalize()} merges are not allowed on this repository."
                return Reply.json({"message": message, "documentation_url": DOCS}, 405)
            # GitHub computes mergeability on the spot when a merge is asked for.
            pr.unknown_reads = 0
            refusal = self._ready(repo, pr)
            if refusal is not None:
                return Reply.json({"message": refusal, "documentation_url": DOCS}, 405)
            self._do_merge(f"{owner}/{name}", pr, data, False)
        done = "Pull Request successfully merged"
        return Reply.json({"sha": f"merge-{pr.head_sha}", "merged": True, "message": done})

    def list_check_runs(self, req: FakeRequest, owner: str, name: str, sha: str) -> Reply:
        with self.lock:
            runs = [dict(r) for r in self.check_runs.get(sha, [])]
        chunk, headers = self._page(req, runs)
        return Reply.json({"total_count": len(runs), "check_runs": chunk}, headers=headers)

    def combined_status(self, req: FakeRequest, owner: str, name: str, sha: str) -> Reply:
        statuses = self.statuses.get(sha, [])
        states = {s["state"] for s in statuses}
        state = "success"
        if states & {"failure", "error"}:
            state = "failure"
        elif "pending" in states or not statuses:
            state = "pending"
        body = {"state": state, "sha": sha, "total_count": len(statuses), "statuses": statuses}
        return Reply.json(body)

    def commit_pulls(self, req: FakeRequest, owner: str, name: str, sha: str) -> Reply:
        repo = f"{owner}/{name}".lower()
        with self.lock:
            found = [
                p
                for (r, _), p in self.pulls.items()
                if r == repo
                and p.head_sha == sha
                and (self.commit_pulls_lists_forks or not p.head_repo)
            ]
            items = [self._pull_json(req, owner, name, p, peek=True) for p in found]
        chunk, headers = self._page(req, items)
        return Reply.json(chunk, headers=headers)

    def list_pulls(self, req: FakeRequest, owner: str, name: str) -> Reply:
        repo, wanted = f"{owner}/{name}".lower(), req.arg("state") or "open"
        with self.lock:
            found = [p for (r, _), p in sorted(self.pulls.items()) if r == repo]
            found = [p for p in found if wanted == "all" or p.state == wanted]
            items = [self._pull_json(req, owner, name, p, peek=True) for p in found]
        chunk, headers = self._page(req, items)
        return Reply.json(chunk, headers=headers)

    def get_contents(self, req: FakeRequest, owner: str, name: str, path: str) -> Reply:
        ref = req.arg("ref") or "main"
        text = self.repo_files.get((f"{owner}/{name}".lower(), ref), {}).get(path)
        if text is None:
            return self.not_found(req)
        raw = text.encode("utf-8")
        encoded = base64.encodebytes(raw).decode("ascii")  # GitHub wraps lines every 60 chars
        body = {
            "type": "file",
            "encoding": "base64",
            "size": len(raw),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": encoded,
            "sha": f"blob{abs(hash(text)) % 10**8}",
        }
        return Reply.json(body)

    # ---- GraphQL ---------------------------------------------------------------------------
    def graphql(self, req: FakeRequest) -> Reply:
        data = req.json() or {}
        query = str(data.get("query") or "")
        variables = (data.get("variables") or {}).get("input") or {}
        found = re.search(r"\{\s*(\w+)\s*\(", query)
        mutation = found.group(1) if found else ""
        with self.lock:
            self.graphql_calls.append({"mutation": mutation, "input": variables})
            target = self._by_node(str(variables.get("pullRequestId") or ""))
            if target is None:
                return _gql_error("NOT_FOUND", "Could not resolve to a node with the given id.")
            repo, pr = target
            if mutation == "disablePullRequestAutoMerge":
                pr.auto_merge = None
                return Reply.json({"data": {mutation: {"clientMutationId": None}}})
            if mutation != "enablePullRequestAutoMerge":
                return _gql_error("UNSUPPORTED", f"the fake does not implement {mutation!r}")
            return self._enable_auto_merge(repo, pr, variables, self.actor(req))

    def _by_node(self, node_id: str) -> tuple[str, Any] | None:
        for (repo, _), pr in self.pulls.items():
            if pr.node_id == node_id:
                return repo, pr
        return None

    def _enable_auto_merge(
        self, repo: str, pr: Any, variables: dict[str, Any], by: dict[str, str]
    ) -> Reply:
        if not self.allow_auto_merge.get(repo, False):
            return _gql_error("UNPROCESSABLE", "Auto merge is not allowed for this repository")
        expected = variables.get("expectedHeadOid")
        if expected and expected != pr.head_sha:
            return _gql_error("UNPROCESSABLE", "Pull request head ref has changed")
        if pr.state != "open" or not pr.mergeable:
            return _gql_error("UNPROCESSABLE", "Pull request Pull request is in dirty status")
        if self._ready(repo, pr) is None:
            pending = any(c not in _GOOD for c in self._checks_of(pr.head_sha).values())
            status = "unstable" if pending else "clean"
            return _gql_error("UNPROCESSABLE", f"Pull request Pull request is in {status} status")
        method = str(variables.get("mergeMethod") or "MERGE").lower()
        # As the REST pull request shows it (`auto_merge`), plus the head it was pinned to.
        pr.auto_merge = {
            "enabled_by": by,
            "merge_method": method,
            "commit_title": None,
            "commit_message": None,
            "expected_head": expected,
        }
        actor = {"login": by["login"], "avatarUrl": "", "resourcePath": "", "url": ""}
        payload = {"actor": actor, "clientMutationId": None}
        return Reply.json({"data": {"enablePullRequestAutoMerge": payload}})


def _gql_error(kind: str, message: str) -> Reply:
    # GraphQL answers 200 with an `errors` list; the HTTP status says nothing.
    return Reply.json({"data": None, "errors": [{"type": kind, "message": message}]})
