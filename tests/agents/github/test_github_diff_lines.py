"""Diff lines are GitHub's `\\n`-separated lines: characters `str.splitlines()` also breaks on
(form feed, VT, U+2028, NEL, lone CR) stay inside their line, CRLF files keep their CR."""

from __future__ import annotations

import pytest

from agents.github.diff import parse_patch, place
from agents.github.events import ReviewRequest
from agents.github.review import Reviewer
from agents.github.settings import GithubSettings
from tests.fakes.github_server import FakePull, file_entry

# Characters that end a line for str.splitlines() but not for git or GitHub.
BREAKERS = {
    "form feed": "\f",
    "vertical tab": "\v",
    "U+2028": "\u2028",
    "U+2029": "\u2029",
    "NEL": "\x85",
    "lone CR": "\r",
    "file separator": "\x1c",
}


def _patch(sep: str) -> str:
    # New file: 1 "import os", 2 "x = 1<sep>y = 2" (one line for GitHub), 3 "breakpoint()".
    return f"@@ -1,2 +1,4 @@\n import os\n+x = 1{sep}y = 2\n+    breakpoint()\n z = 3\n+w = 4"


@pytest.mark.parametrize("name", sorted(BREAKERS))
def test_parse_patch_counts_newlines_only(name: str) -> None:
    diff = parse_patch("m.py", _patch(BREAKERS[name]))
    assert [ln.new for ln in diff.added()] == [2, 3, 5]
    assert diff.added()[0].text == f"x = 1{BREAKERS[name]}y = 2"
    assert diff.valid(4, "RIGHT") and not diff.valid(6, "RIGHT")
    assert diff.text_at(3, "RIGHT") == "    breakpoint()"


def test_crlf_lines_keep_their_cr_and_their_numbers() -> None:
    patch = "@@ -1,2 +1,3 @@\n a = 1\r\n+b = 2\r\n c = 3\r\n\\ No newline at end of file"
    diff = parse_patch("w.py", patch)
    assert [(ln.new, ln.text) for ln in diff.added()] == [(2, "b = 2\r")]
    assert diff.valid(3, "RIGHT") and not diff.valid(4, "RIGHT")


def test_a_final_newline_adds_no_line() -> None:
    diff = parse_patch("n.py", "@@ -1 +1,2 @@\n a\n+b\n")
    assert [ln.new for h in diff.hunks for ln in h.lines] == [1, 2]


def test_ranges_stay_inside_one_hunk() -> None:
    patch = "@@ -1,3 +1,4 @@\n a\n+b\n+c\n d\n@@ -20,2 +21,3 @@\n e\n+f\n g"
    diff = parse_patch("r.py", patch)
    assert place(diff, 3, "RIGHT", start_line=2).start_line == 2
    assert place(diff, 22, "RIGHT", start_line=3).start_line is None  # across hunks
    assert place(diff, 3, "RIGHT", start_line=3).start_line is None  # not a range
    far = place(diff, 60, "RIGHT")
    assert far.file_level and not far.folded and far.line is None


@pytest.mark.parametrize("name", ["form feed", "U+2028", "NEL", "lone CR"])
async def test_review_lands_on_the_lines_github_counts(name, fake_github, clients) -> None:
    fake, _ = fake_github
    files = [file_entry("pkg/m.py", _patch(BREAKERS[name])), file_entry("tests/test_m.py", "@@")]
    fake.add_pull("acme/api", FakePull(number=3, head_sha="h3", files=files))
    request = ReviewRequest(repo="acme/api", number=3, action="opened")
    await Reviewer(GithubSettings(), clients, None).run(request)
    assert fake.rejected == [] and len(fake.reviews) == 1
    lines = {c["line"] for c in fake.reviews[0]["comments"] if c["path"] == "pkg/m.py"}
    assert 3 in lines  # the breakpoint, on GitHub's line 3 (splitlines would say 4)


def test_fake_counts_like_github(fake_github, clients) -> None:
    from github import GithubException

    fake, _ = fake_github
    fake.add_pull(
        "acme/api", FakePull(number=4, head_sha="h4", files=[file_entry("m.py", _patch("\f"))])
    )
    pull = clients.for_installation().get_repo("acme/api").get_pull(4)
    assert fake.pulls[("acme/api", 4)].files[0]["additions"] == 3
    with pytest.raises(GithubException) as err:
        pull.create_review(
            body="x",
            event="COMMENT",
            comments=[
                {"path": "m.py", "line": 5, "side": "RIGHT", "body": "ok"},
                {"path": "m.py", "line": 6, "side": "RIGHT", "body": "no such line"},
            ],
        )
    assert err.value.status == 422 and fake.reviews == []
    pull.create_review(
        body="x",
        event="COMMENT",
        comments=[{"path": "m.py", "start_line": 2, "line": 3, "side": "RIGHT", "body": "ok"}],
    )
    assert len(fake.reviews) == 1
