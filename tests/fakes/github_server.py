"""A loopback GitHub REST API: the parts the PR-review flow uses, answering as GitHub does.

- lists paginate with `?page=&per_page=` and a `Link` header (rel="next"/"last");
- reviews and review comments follow GitHub's rules as `github_reviews` describes (422 for the
  whole review when one comment is invalid, pending reviews, file-level comments);
- checks, statuses, mergeability timing, merging and auto-merge follow `github_merge.MergeRules`;
- answers carry `x-ratelimit-limit/remaining/reset/used/resource`; once the quota is used up
  (`exhaust_quota(reset_in)` jumps there) every call answers 403/429 "API rate limit exceeded"
  with `x-ratelimit-remaining: 0` and the reset epoch, no Retry-After, until the reset passes;
- `secondary_rate_limit(path, status, retry_after)`: 403/429, `retry-after`, secondary message;
- tokens are checked (401 "Bad credentials"); App installations mint `ghs_` tokens from a JWT;
  what a token writes is written by its account: `token_login` (a user, `GET /user`) for a
  plain token, `<app_slug>[bot]` for an installation's (`GET /user` refused with 403 "Resource
  not accessible by integration"; the App's JWT reads `GET /app`); `installation_logins` holds
  installation tokens handed in from outside (GitHub Actions' `GITHUB_TOKEN`: its account is
  `github-actions[bot]`);
- any valid token reads `GET /rate_limit` (not counted, answered even with the quota used up),
  GraphQL `{ viewer { login } }` (the bot's login for an installation token), and an
  installation token `GET /installation/repositories` (403 for any other token);
- everything written is kept in `reviews`, `merges` and `tokens_issued` for assertions.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

import jwt

from tests.fakes.common import FakeRequest, FakeService, Reply
from tests.fakes.github_merge import MergeRules
from tests.fakes.github_reviews import ReviewRules, patch_lines

__all__ = ["FakeGithub", "FakePull"]

DOCS = "https://docs.github.com/rest"
RATE_DOCS = f"{DOCS}/overview/rate-limits-for-the-rest-api"
REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"


@dataclass
class FakePull:
    number: int
    head_sha: str
    base_sha: str = "base0000"
    title: str = "A change"
    body: str | None = None  # the description; GitHub sends null for an empty one
    author: str = "octocat"
    draft: bool = False
    state: str = "open"
    mergeable: bool | None = True
    labels: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    merged: bool = False
    head_repo: str | None = None  # "owner/name" of a fork; None: the base repository
    unknown_reads: int = 1  # reads that answer `mergeable: null` (GitHub computes it after a push)
    auto_merge: dict[str, Any] | None = None

    @property
    def node_id(self) -> str:
        return f"PR_kw{self.number}{self.head_sha[:6]}"


def file_entry(path: str, patch: str | None, status: str = "modified") -> dict[str, Any]:
    """A changed-file object as GitHub lists it; additions/deletions are counted from `patch`."""
    lines = patch_lines(patch)
    adds = sum(1 for ln in lines if ln.startswith("+"))
    dels = sum(1 for ln in lines if ln.startswith("-"))
    entry: dict[str, Any] = {
        "sha": f"blob-{abs(hash(path)) % 10**8}",
        "filename": path,
        "status": status,
        "additions": adds,
        "deletions": dels,
        "changes": adds + dels,
    }
    if patch is not None:
        entry["patch"] = patch
    return entry


class FakeGithub(ReviewRules, MergeRules, FakeService):
    def __init__(self, tokens: tuple[str, ...] = ("test-token",)) -> None:
        super().__init__()
        self.tokens = set(tokens)
        self.app_keys: dict[str, str] = {}  # app id -> public key PEM
        self.pulls: dict[tuple[str, int], FakePull] = {}
        self.compares: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self.merges: list[dict[str, Any]] = []
        self.tokens_issued: list[tuple[int, str]] = []
        self._ids = itertools.count(1000)
        self.token_login = "stepline-bot"  # the account behind the plain tokens
        # Installation tokens not minted here (GitHub Actions' GITHUB_TOKEN) -> their bot login.
        self.installation_logins: dict[str, str] = {}
        self.app_slug = "stepline"
        self.quota = 5000
        self.quota_used = 0
        self.quota_reset = int(time.time()) + 3600
        self.primary_status = 403
        self.limited: list[FakeRequest] = []  # requests refused by either kind of rate limit
        self.route("GET", REPO, self.get_repo)
        self.route("GET", REPO + r"/pulls/(?P<number>\d+)", self.get_pull)
        self.route("GET", REPO + r"/pulls/(?P<number>\d+)/files", self.list_files)
        self._review_routes()
        self.route("GET", REPO + r"/compare/(?P<base>[^.]+)\.\.\.(?P<head>.+)", self.compare)
        self._merge_routes()
        self.route("POST", r"/app/installations/(?P<inst>\d+)/access_tokens", self.access_token)
        self.route("GET", r"/app", self.get_app)
        self.route("GET", r"/user", self.get_user)
        self.route("GET", r"/rate_limit", self.get_rate_limit)
        self.route("GET", r"/installation/repositories", self.installation_repositories)

    # ---- scripting -------------------------------------------------------------------------
    def add_pull(self, repo: str, pull: FakePull) -> FakePull:
        with self.lock:
            self.pulls[(repo.lower(), pull.number)] = pull
        return pull

    def exhaust_quota(self, reset_in: float, status: int = 403) -> None:
        """Use up the primary quota; calls are refused until `reset_in` seconds from now."""
        with self.lock:
            self.quota_used = self.quota
            self.quota_reset = int(time.time() + reset_in)
            self.primary_status = status

    def secondary_rate_limit(
        self,
        path_regex: str,
        status: int = 403,
        retry_after: int = 1,
        times: int = 1,
        method: str | None = None,
    ) -> None:
        message = "You have exceeded a secondary rate limit. Please wait a few minutes."
        body = {"message": message, "documentation_url": f"{RATE_DOCS}#about-secondary-rate-limits"}
        wait = {"retry-after": str(retry_after)}
        replies = (Reply.json(body, status, wait) for _ in range(times))
        self.inject(path_regex, *replies, method=method)

    def _quota_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.quota),
            "x-ratelimit-remaining": str(max(self.quota - self.quota_used, 0)),
            "x-ratelimit-reset": str(self.quota_reset),
            "x-ratelimit-used": str(self.quota_used),
            "x-ratelimit-resource": "core",
        }

    def _primary_limited(self, req: FakeRequest) -> Reply | None:
        """The quota's refusal while it is used up; a new window once the reset has passed."""
        with self.lock:
            if time.time() >= self.quota_reset:
                self.quota_used = 0
                self.quota_reset = int(time.time()) + 3600
            if self.quota_used < self.quota:
                return None
            self.requests.append(req)
            self.limited.append(req)
            message = "API rate limit exceeded for user ID 1."
            body = {"message": message, "documentation_url": RATE_DOCS}
            return Reply.json(body, self.primary_status, self._quota_headers())

    # ---- plumbing --------------------------------------------------------------------------
    def __call__(self, req: FakeRequest) -> Reply:
        as_app = req.path == "/app" or req.path.startswith("/app/")  # the App's JWT, no token
        if not as_app and not self._authorised(req):
            with self.lock:
                self.requests.append(req)
            return Reply.json({"message": "Bad credentials", "documentation_url": DOCS}, 401)
        if as_app:
            return super().__call__(req)
        if req.path == "/rate_limit":  # GitHub: "does not count against your rate limit"
            return super().__call__(req)
        refused = self._primary_limited(req)
        if refused is not None:
            return refused
        reply = super().__call__(req)
        with self.lock:
            self.quota_used += 1
            if "retry-after" in reply.headers:
                self.limited.append(req)
            reply.headers.update(self._quota_headers())
        return reply

    def _authorised(self, req: FakeRequest) -> bool:
        value = req.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        known = token in self.tokens or token in self.installation_logins
        return scheme.lower() in ("token", "bearer") and known

    def _installation_token(self, req: FakeRequest) -> bool:
        token = req.headers.get("authorization", "").partition(" ")[2]
        with self.lock:
            handed_in = token in self.installation_logins
            return handed_in or any(minted == token for _, minted in self.tokens_issued)

    def actor(self, req: FakeRequest) -> dict[str, str]:
        """The account a request acts as, as GitHub shows it on what it writes."""
        token = req.headers.get("authorization", "").partition(" ")[2]
        if token in self.installation_logins:
            return {"login": self.installation_logins[token], "type": "Bot"}
        if self._installation_token(req):
            return {"login": f"{self.app_slug}[bot]", "type": "Bot"}
        return {"login": self.token_login, "type": "User"}

    def not_found(self, req: FakeRequest) -> Reply:
        return Reply.json({"message": "Not Found", "documentation_url": DOCS}, 404)

    def _base(self, req: FakeRequest) -> str:
        return f"http://{req.headers.get('host', '127.0.0.1')}"

    def _pull(self, owner: str, name: str, number: str) -> FakePull | None:
        return self.pulls.get((f"{owner}/{name}".lower(), int(number)))

    def _page(self, req: FakeRequest, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        per_page = min(int(req.arg("per_page", "30") or 30), 100)
        page = max(int(req.arg("page", "1") or 1), 1)
        last = max(1, math.ceil(len(items) / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        url = f"{self._base(req)}{req.path}?per_page={per_page}&page="
        links = []
        if page < last:
            links.append(f'<{url}{page + 1}>; rel="next"')
            links.append(f'<{url}{last}>; rel="last"')
        if page > 1:
            links.append(f'<{url}1>; rel="first"')
            links.append(f'<{url}{page - 1}>; rel="prev"')
        return chunk, ({"Link": ", ".join(links)} if links else {})

    def _repo_json(self, req: FakeRequest, owner: str, name: str) -> dict[str, Any]:
        full = f"{owner}/{name}"
        ids = {"id": abs(hash(full)) % 10**6, "name": name, "full_name": full, "private": False}
        urls = {"url": f"{self._base(req)}/repos/{full}", "html_url": f"https://github.com/{full}"}
        return {**ids, **urls, "owner": {"login": owner, "type": "User"}}

    def _pull_json(
        self, req: FakeRequest, owner: str, name: str, pr: FakePull, peek: bool = False
    ) -> dict[str, Any]:
        full = f"{owner}/{name}"
        url = f"{self._base(req)}/repos/{full}/pulls/{pr.number}"
        # Only a read of the pull itself starts GitHub's mergeability job; lists show null too.
        with self.lock:
            computing = pr.unknown_reads > 0
            if not peek and computing:
                pr.unknown_reads -= 1
        mergeable = None if computing else pr.mergeable
        state = "unknown" if mergeable is None else "clean" if mergeable else "dirty"
        head_repo = self._repo_json(req, *(pr.head_repo or full).split("/", 1))
        return {
            "id": pr.number * 7,
            "node_id": pr.node_id,
            "number": pr.number,
            "url": url,
            "title": pr.title,
            "body": pr.body,
            "html_url": f"https://github.com/{full}/pull/{pr.number}",
            "state": pr.state,
            "draft": pr.draft,
            "merged": pr.merged,
            "mergeable": mergeable,
            "mergeable_state": state,
            "auto_merge": pr.auto_merge,
            "user": {"login": pr.author, "type": "User"},
            "labels": [{"name": lbl} for lbl in pr.labels],
            "head": {"sha": pr.head_sha, "ref": "feature", "repo": head_repo},
            "base": {"sha": pr.base_sha, "ref": "main", "repo": self._repo_json(req, owner, name)},
        }

    # ---- routes ----------------------------------------------------------------------------
    def get_repo(self, req: FakeRequest, owner: str, name: str) -> Reply:
        return Reply.json(self._repo_json(req, owner, name))

    def get_pull(self, req: FakeRequest, owner: str, name: str, number: str) -> Reply:
        pr = self._pull(owner, name, number)
        if pr is None:
            return self.not_found(req)
        return Reply.json(self._pull_json(req, owner, name, pr))

    def list_files(self, req: FakeRequest, owner: str, name: str, number: str) -> Reply:
        pr = self._pull(owner, name, number)
        if pr is None:
            return self.not_found(req)
        chunk, headers = self._page(req, pr.files)
        return Reply.json(chunk, headers=headers)

    def compare(self, req: FakeRequest, owner: str, name: str, base: str, head: str) -> Reply:
        files = self.compares.get((f"{owner}/{name}".lower(), base, head))
        if files is None:
            return self.not_found(req)
        where = f"{owner}/{name}/compare/{base}...{head}"
        counts = {"status": "ahead", "ahead_by": 1, "behind_by": 0, "total_commits": 1}
        api = self._base(req)
        urls = {"url": f"{api}/repos/{where}", "html_url": f"https://github.com/{where}"}
        return Reply.json({**counts, **urls, "commits": [], "files": files})

    def _app_id(self, req: FakeRequest) -> str | None:
        """The App whose valid JWT signs the request, else None."""
        token = req.headers.get("authorization", "").partition(" ")[2]
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            app_id = str(claims["iss"])
            jwt.decode(token, self.app_keys[app_id], algorithms=["RS256"])
        except (jwt.PyJWTError, KeyError):
            return None
        return app_id

    def _bad_jwt(self) -> Reply:
        body = {"message": "A JSON web token could not be decoded", "documentation_url": DOCS}
        return Reply.json(body, 401)

    def get_app(self, req: FakeRequest) -> Reply:
        app_id = self._app_id(req)
        if app_id is None:
            return self._bad_jwt()
        owner = {"login": "acme", "type": "Organization"}
        return Reply.json(
            {"id": int(app_id), "slug": self.app_slug, "name": "Stepline", "owner": owner}
        )

    def get_user(self, req: FakeRequest) -> Reply:
        if self._installation_token(req):
            message = "Resource not accessible by integration"
            return Reply.json({"message": message, "documentation_url": DOCS}, 403)
        return Reply.json({"id": 1, **self.actor(req)})

    def get_rate_limit(self, req: FakeRequest) -> Reply:
        with self.lock:
            core = {
                "limit": self.quota,
                "remaining": max(self.quota - self.quota_used, 0),
                "reset": self.quota_reset,
                "used": self.quota_used,
                "resource": "core",
            }
        return Reply.json({"resources": {"core": core}, "rate": core})

    def installation_repositories(self, req: FakeRequest) -> Reply:
        if not self._installation_token(req):
            message = (
                "You must authenticate with an installation access token in order to list "
                "repositories for an installation."
            )
            return Reply.json({"message": message, "documentation_url": DOCS}, 403)
        with self.lock:
            names = sorted({repo for repo, _ in self.pulls})
        repos = [self._repo_json(req, *name.split("/", 1)) for name in names]
        return Reply.json({"total_count": len(repos), "repositories": repos})

    def graphql(self, req: FakeRequest) -> Reply:
        """`{ viewer { login } }` names the token's account; the rest is `MergeRules`'."""
        query = str((req.json() or {}).get("query") or "")
        if re.fullmatch(r"\s*(query\s*)?\{\s*viewer\s*\{\s*login\s*\}\s*\}\s*", query):
            return Reply.json({"data": {"viewer": {"login": self.actor(req)["login"]}}})
        return super().graphql(req)

    def access_token(self, req: FakeRequest, inst: str) -> Reply:
        if self._app_id(req) is None:
            return self._bad_jwt()
        minted = f"ghs_fake{inst}{next(self._ids)}"
        with self.lock:
            self.tokens.add(minted)
            self.tokens_issued.append((int(inst), minted))
        perms = {"pull_requests": "write"}
        body = {"token": minted, "expires_at": "2099-01-01T00:00:00Z", "permissions": perms}
        return Reply.json(body, 201)
