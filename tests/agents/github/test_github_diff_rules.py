"""Diff positions, comment placement, the built-in reviewer, redaction and file selection."""

from __future__ import annotations

from agents.common.redact import redact
from agents.github.diff import parse_patch, place
from agents.github.files import ChangedFile, is_ignored, select
from agents.github.findings import ReviewComment
from agents.github.posting import place_comments
from agents.github.rules import review_rules
from agents.github.settings import GithubSettings

PATCH = """@@ -10,6 +10,8 @@ class Limiter:
     def __init__(self, rate):
         self.rate = rate
-        self.tokens = 0
+        self.tokens = rate
+        self.updated = now()
+        self.lock = Lock()

     def take(self):
         return self.tokens > 0
@@ -40,3 +42,4 @@ def helper():
     a = 1
+    b = 2
     return a"""


def test_parse_patch_numbers_both_sides() -> None:
    diff = parse_patch("limiter.py", PATCH)
    assert len(diff.hunks) == 2
    assert [ln.new for ln in diff.added()] == [12, 13, 14, 43]
    assert [ln.old for ln in diff.removed()] == [12]
    assert diff.valid(10, "RIGHT") and diff.valid(17, "RIGHT") and not diff.valid(18, "RIGHT")
    assert diff.valid(12, "LEFT") and not diff.valid(43, "LEFT")
    assert diff.valid(44, "RIGHT") and not diff.valid(30, "RIGHT")


def test_place_keeps_moves_or_folds() -> None:
    diff = parse_patch("limiter.py", PATCH)
    assert place(diff, 13, "RIGHT").line == 13
    moved = place(diff, 19, "RIGHT")  # two lines past the first hunk
    assert moved.line == 17 and moved.moved_from == 19
    far = place(diff, 30, "RIGHT")  # between hunks, far from both: about the file as a whole
    assert far.file_level and far.line is None and not far.folded
    assert place(diff, 12, "left").side == "LEFT" and place(diff, 12, "left").line == 12
    assert place(None, 5, "RIGHT").folded
    assert place(parse_patch("bin.png", None), 1, "RIGHT").folded


def test_no_newline_marker_and_empty_context_lines() -> None:
    patch = "@@ -1,2 +1,3 @@\n a\n\n+b\n\\ No newline at end of file"
    diff = parse_patch("x.txt", patch)
    assert [ln.new for ln in diff.added()] == [3]
    assert diff.valid(2, "RIGHT")


def test_place_comments_widens_folds_and_respects_limit() -> None:
    comments = [
        ReviewComment(path="limiter.py", line=13, body="race on tokens", severity="high"),
        ReviewComment(path="limiter.py", line=30, body="far away", severity="low"),
        ReviewComment(path="other.py", line=1, body="not in the diff", severity="medium"),
        ReviewComment(path="limiter.py", line=43, body="fine", severity="info", suggestion="b=3"),
    ]
    placed = place_comments(comments, {"limiter.py": PATCH}, limit=10)
    inline = [p.payload for p in placed.inline]
    assert [(c["line"], c["side"]) for c in inline] == [(13, "RIGHT"), (43, "RIGHT")]
    assert "```suggestion\nb=3\n```" in inline[1]["body"]
    # Far from every hunk of a changed file: a comment on the file, not lost in the summary.
    (on_file,) = [p.payload for p in placed.file_level]
    assert on_file["subject_type"] == "file" and "far away" in on_file["body"]
    assert "line 30" in on_file["body"] and "line" not in on_file
    assert [c.body for c in placed.folded] == ["not in the diff"]
    limited = place_comments(comments, {"limiter.py": PATCH}, limit=1)
    assert len(limited.inline) == 1 and "race" in limited.inline[0].payload["body"]


def test_multi_line_comments_and_their_suggestions() -> None:
    ranged = ReviewComment(
        path="limiter.py", start_line=12, line=14, body="init order", suggestion="a\nb\nc"
    )
    across = ReviewComment(
        path="limiter.py", start_line=14, line=43, body="across hunks", suggestion="x"
    )
    placed = place_comments([ranged, across], {"limiter.py": PATCH}, limit=10)
    first, second = (p.payload for p in placed.inline)
    assert (first["start_line"], first["line"], first["start_side"]) == (12, 14, "RIGHT")
    assert "```suggestion\na\nb\nc\n```" in first["body"]
    # GitHub would refuse a range across hunks: it becomes a one-line comment without the
    # suggestion, which was meant to replace the whole range.
    assert "start_line" not in second and second["line"] == 43
    assert "suggestion" not in second["body"]


def test_a_finding_already_posted_is_not_repeated() -> None:
    comment = ReviewComment(path="limiter.py", line=13, body="Race on tokens.", severity="high")
    first = place_comments([comment], {"limiter.py": PATCH}, limit=10)
    (posted,) = first.inline
    # The same code moved down by a later commit: same content, same problem, same finding.
    later_patch = PATCH.replace("@@ -10,6 +10,8 @@", "@@ -10,6 +15,8 @@").replace(
        "@@ -40,3 +42,4 @@", "@@ -40,3 +47,4 @@"
    )
    moved = comment.model_copy(update={"line": 18, "body": "race on  tokens"})
    again = place_comments([moved], {"limiter.py": later_patch}, 10, {posted.fingerprint})
    assert again.inline == [] and again.repeated == 1
    other = moved.model_copy(update={"body": "Lock is never released."})
    assert (
        len(place_comments([other], {"limiter.py": later_patch}, 10, {posted.fingerprint}).inline)
        == 1
    )


def _file(path: str, added: list[str], status: str = "modified") -> ChangedFile:
    patch = f"@@ -1,1 +1,{len(added) + 1} @@\n ctx\n" + "\n".join("+" + a for a in added)
    return ChangedFile(path, status, patch, additions=len(added))


def test_rules_flag_each_problem_on_its_exact_line() -> None:
    key = "AKIA" + "ABCDEFGHIJKLMNOP"
    f = _file(
        "app/service.py",
        [
            "import os",  # line 2
            f'AWS_KEY = "{key}"',  # 3: secret
            "<<<<<<< HEAD",  # 4: conflict marker
            "    breakpoint()",  # 5: debugger
            "    # TODO: handle timeouts",  # 6: todo
            "-----BEGIN RSA PRIVATE KEY-----",  # 7: private key
        ],
    )
    found = {(c.line, c.severity) for c in review_rules([f])}
    assert (3, "critical") in found and (4, "critical") in found and (7, "critical") in found
    assert (5, "low") in found and (6, "info") in found
    bodies = " ".join(c.body for c in review_rules([f]))
    assert key not in bodies
    # No test file changed alongside source: flagged once, on an added line of the source.
    missing = [c for c in review_rules([f]) if "test" in c.body.lower()]
    assert len(missing) == 1 and missing[0].path == "app/service.py" and missing[0].line == 2


def test_rules_quiet_on_clean_change_with_tests_and_big_file_flagged() -> None:
    src = _file("app/service.py", ["def f():", "    return 1"])
    test = _file("tests/test_service.py", ["def test_f():", "    print(f())"])
    assert review_rules([src, test]) == []
    big = _file("app/big.py", [f"x{i} = {i}" for i in range(30)])
    flagged = review_rules([big, test], large_file_lines=20)
    assert [(c.path, c.line, c.severity) for c in flagged] == [("app/big.py", 2, "medium")]


def test_redact_masks_secrets_but_keeps_code() -> None:
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    text = (
        f'token = "{token}"\npassword = "hunter2hunter2"\nx = 1\n'
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
        "-----END PRIVATE KEY-----\n"
    )
    out = redact(text)
    assert token not in out and "hunter2hunter2" not in out and "MIIEvQIBAD" not in out
    assert "x = 1" in out and "[REDACTED]" in out
    assert redact('password = "${DB_PASSWORD}"') == 'password = "${DB_PASSWORD}"'


def test_ignored_globs_and_binaries_are_skipped() -> None:
    globs = GithubSettings(ignore=["docs/generated/**"]).ignored_globs()
    assert is_ignored("web/package-lock.json", globs)
    assert is_ignored("poetry.lock", globs) and is_ignored("static/app.min.js", globs)
    assert is_ignored("vendor/lib/x.go", globs) and is_ignored("svc/vendor/y.go", globs)
    assert is_ignored("docs/generated/api.md", globs)
    assert not is_ignored("src/lockfile.py", globs)
    files = [
        _file("src/a.py", ["x"]),
        _file("yarn.lock", ["y"]),
        ChangedFile("model.bin", "added", None),
        ChangedFile("old.py", "removed", None),
    ]
    kept, skipped = select(files, globs)
    assert [f.path for f in kept] == ["src/a.py"]
    assert dict(skipped) == {
        "yarn.lock": "ignored by pattern",
        "old.py": "removed",
        "model.bin": "no text diff (binary or too large)",
    }
