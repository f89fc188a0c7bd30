"""The loopback GitHub's review side: listing and creating reviews and review comments.

Kept apart from `github_server` (pulls, files, rate limits) and `github_merge`; what it
reproduces, from GitHub's documentation of pull request reviews and review comments:

- diff lines are the patch's `\n`-separated lines, as GitHub counts them (a form feed, VT,
  U+2028, NEL or lone CR is text inside a line);
- one invalid comment refuses the whole review with 422 and nothing of it is stored: a line
  outside the file's diff, a `start_line` not before `line` or in another hunk, an empty body,
  a path the pull request does not change; a body over 65,536 characters too;
- a review without `event` is PENDING: hidden from the review-comment list, one per user and
  pull request, and deletable (`DELETE .../reviews/{id}`, 422 once submitted);
- `POST .../pulls/{n}/comments` posts one comment; `subject_type: file` comments on the file as
  a whole (the review endpoint's comment objects have no such field);
- `GET .../pulls/{n}/comments` lists the comments of submitted reviews and the single ones.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from tests.fakes.common import FakeRequest, Reply

__all__ = ["MAX_BODY", "ReviewRules", "patch_lines"]

DOCS = "https://docs.github.com/rest"
_REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
MAX_BODY = 65536  # GitHub's limit on a review's body, in characters


def patch_lines(patch: str | None) -> list[str]:
    """The patch's lines as GitHub counts them: split on "\n" only (a form feed, VT, U+2028,
    NEL or lone CR is text inside a line), with no empty line after a final newline."""
    rows = (patch or "").split("\n")
    return rows[:-1] if rows and rows[-1] == "" else rows


def _diff_lines(patch: str | None) -> tuple[dict[int, int], dict[int, int], int]:
    """Valid RIGHT lines and valid LEFT lines (each mapped to its hunk's index), and the
    number of diff positions."""
    right: dict[int, int] = {}
    left: dict[int, int] = {}
    old = new = 0
    hunk = -1
    positions = -1
    for raw in patch_lines(patch):
        positions += 1 if positions >= 0 or raw.startswith("@@") else 0
        if raw.startswith("@@"):
            head = raw.split("@@")[1].split()
            old = int(head[0][1:].split(",")[0])
            new = int(head[1][1:].split(",")[0])
            hunk += 1
            continue
        if raw.startswith("+"):
            right[new] = hunk
            new += 1
        elif raw.startswith("-"):
            left[old] = hunk
            old += 1
        elif not raw.startswith("\\"):
            right[new] = hunk
            left[old] = hunk
            old += 1
            new += 1
    return right, left, max(positions, 0)


class ReviewRules:
    """Mixed into `FakeGithub`; expects its `pulls`, `lock`, `_ids`, `_pull`, `_page`, `_base`."""

    pulls: dict[tuple[str, int], Any]
    lock: threading.RLock
    _ids: itertools.count[int]
    route: Callable[..., None]
    _pull: Callable[..., Any]
    _page: Callable[..., tuple[list[Any], dict[str, str]]]
    _base: Callable[[FakeRequest], str]
    not_found: Callable[[FakeRequest], Reply]
    actor: Callable[[FakeRequest], dict[str, str]]

    def _review_routes(self) -> None:
        self.reviews: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self.review_comments: list[dict[str, Any]] = []  # posted outside a review
        self.pending_created = 0  # PENDING reviews made (and usually deleted again)
        pulls = _REPO + r"/pulls/(?P<number>\d+)"
        self.route("GET", pulls + "/reviews", self.list_reviews)
        self.route("GET", pulls + "/comments", self.list_review_comments)
        self.route("POST", pulls + "/reviews", self.create_review)
        self.route("DELETE", pulls + r"/reviews/(?P<review_id>\d+)", self.delete_review)
        self.route("POST", pulls + "/comments", self.create_review_comment)

    def list_reviews(self, req: FakeRequest, owner: str, name: str, number: str) -> Reply:
        pr = self._pull(owner, name, number)
        if pr is None:
            return self.not_found(req)
        with self.lock:
            items = [{k: v for k, v in r.items() if k != "comments"} for r in pr.reviews]
        chunk, headers = self._page(req, items)
        return Reply.json(chunk, headers=headers)

    def list_review_comments(self, req: FakeRequest, owner: str, name: str, number: str) -> Reply:
        """Every review comment on the pull request: those of submitted reviews (a pending
        review's stay hidden) and those posted one by one."""
        pr = self._pull(owner, name, number)
        if pr is None:
            return self.not_found(req)
        with self.lock:
            items: list[dict[str, Any]] = []
            for review in pr.reviews:
                if review.get("state") == "PENDING":
                    continue
                for k, c in enumerate(review.get("comments") or []):
                    cid = review["id"] * 100 + k
                    rid = review["id"]
                    # As GitHub lists them: every field present, `line` null when unknown.
                    shown = {"line": None, "subject_type": "line", **c}
                    items.append(
                        {"id": cid, "pull_request_review_id": rid, "user": review["user"], **shown}
                    )
            items += [
                {k: v for k, v in c.items() if k not in ("repo", "number")}
                for c in self.review_comments
                if c["repo"].lower() == f"{owner}/{name}".lower() and c["number"] == pr.number
            ]
        chunk, headers = self._page(req, items)
        return Reply.json(chunk, headers=headers)

    def _unprocessable(self, *errors: str) -> Reply:
        return Reply.json(
            {
                "message": "Unprocessable Entity",
                "errors": list(errors),
                "documentation_url": f"{DOCS}/pulls/reviews#create-a-review",
            },
            422,
        )

    def _comment_error(self, pr: Any, comment: dict[str, Any]) -> str | None:
        files = {f["filename"]: f for f in pr.files}
        path = comment.get("path")
        if path not in files:
            return "Path could not be resolved"
        if not str(comment.get("body") or "").strip():
            return "Body can't be blank"
        if comment.get("subject_type") == "file":
            return None  # a comment on the file as a whole needs no line
        right, left, positions = _diff_lines(files[path].get("patch"))
        if "position" in comment and "line" not in comment:
            ok = isinstance(comment["position"], int) and 1 <= comment["position"] <= positions
            return None if ok else "Position could not be resolved"
        line, side = comment.get("line"), comment.get("side", "RIGHT")
        valid = right if side == "RIGHT" else left if side == "LEFT" else {}
        if not isinstance(line, int) or line not in valid:
            return "Line could not be resolved"
        if comment.get("start_line") is None:
            return None
        start, start_side = comment["start_line"], comment.get("start_side", side)
        valid_start = right if start_side == "RIGHT" else left if start_side == "LEFT" else {}
        if not isinstance(start, int) or start not in valid_start:
            return "Start line could not be resolved"
        # A range may start on a removed line (LEFT) and end on an added one (RIGHT): the two
        # numberings differ, so only ends on the same side are compared.
        if start_side == side and start >= line:
            return "start_line must precede line"
        if valid_start[start] != valid[line]:
            return "start_line must be part of the same hunk as the line."
        return None

    def create_review(self, req: FakeRequest, owner: str, name: str, number: str) -> Reply:
        pr = self._pull(owner, name, number)
        if pr is None:
            return self.not_found(req)
        data = req.json() or {}
        event = data.get("event") or "PENDING"
        comments = data.get("comments") or []
        # The review endpoint's comment objects know no `subject_type`: a file-level comment
        # goes through the single-comment endpoint, here it needs a line like any other.
        checked = [{k: v for k, v in c.items() if k != "subject_type"} for c in comments]
        errors = [e for c in checked if (e := self._comment_error(pr, c))]
        if len(data.get("body") or "") > MAX_BODY:
            errors.append(f"Body is too long (maximum is {MAX_BODY} characters)")
        if errors:
            # One bad comment refuses the whole review: nothing of it is stored.
            self.rejected.append(data)
            return self._unprocessable(*errors)
        if event in ("COMMENT", "REQUEST_CHANGES") and not data.get("body") and not comments:
            return self._unprocessable("Body is required for this event")
        if event == "PENDING" and any(r["state"] == "PENDING" for r in pr.reviews):
            return self._unprocessable("User can only have one pending review per pull request")
        states = {
            "COMMENT": "COMMENTED",
            "APPROVE": "APPROVED",
            "REQUEST_CHANGES": "CHANGES_REQUESTED",
            "PENDING": "PENDING",
        }
        rid = next(self._ids)
        review = {
            "id": rid,
            "node_id": f"PRR_{rid}",
            "user": self.actor(req),
            "body": data.get("body") or "",
            "state": states.get(event, "COMMENTED"),
            "commit_id": data.get("commit_id") or pr.head_sha,
            "html_url": f"https://github.com/{owner}/{name}/pull/{pr.number}#pullrequestreview-{rid}",
            "pull_request_url": f"{self._base(req)}/repos/{owner}/{name}/pulls/{pr.number}",
            "submitted_at": "2024-05-01T10:00:00Z",
            "comments": comments,
        }
        with self.lock:
            pr.reviews.append(review)
            if event == "PENDING":
                self.pending_created += 1
            else:
                self.reviews.append({**review, "repo": f"{owner}/{name}", "number": pr.number})
        return Reply.json({k: v for k, v in review.items() if k != "comments"})

    def delete_review(
        self, req: FakeRequest, owner: str, name: str, number: str, review_id: str
    ) -> Reply:
        pr = self._pull(owner, name, number)
        found = [r for r in (pr.reviews if pr else []) if str(r["id"]) == review_id]
        if pr is None or not found:
            return self.not_found(req)
        if found[0]["state"] != "PENDING":
            return self._unprocessable("Can not delete a non-pending pull request review")
        with self.lock:
            pr.reviews.remove(found[0])
        return Reply.json({k: v for k, v in found[0].items() if k != "comments"})

    def create_review_comment(self, req: FakeRequest, owner: str, name: str, number: str) -> Reply:
        """One comment outside a review; `subject_type: file` comments on the whole file."""
        pr = self._pull(owner, name, number)
        if pr is None:
            return self.not_found(req)
        data = req.json() or {}
        missing = [k for k in ("body", "commit_id", "path") if not data.get(k)]
        if missing:
            return self._unprocessable(*(f"{k} wasn't supplied." for k in missing))
        error = self._comment_error(pr, data)
        if error:
            self.rejected.append(data)
            return self._unprocessable(error)
        cid = next(self._ids)
        comment = {
            "id": cid,
            "node_id": f"PRRC_{cid}",
            "user": self.actor(req),
            "html_url": f"https://github.com/{owner}/{name}/pull/{pr.number}#discussion_r{cid}",
            "subject_type": data.get("subject_type") or "line",
            **{k: data.get(k) for k in ("body", "commit_id", "path", "line", "side")},
        }
        with self.lock:
            self.review_comments.append({**comment, "repo": f"{owner}/{name}", "number": pr.number})
        return Reply.json(comment, 201)
