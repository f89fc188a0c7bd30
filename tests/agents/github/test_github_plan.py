"""How the calls of one review are planned: packing, ranking, splitting, and what is left out."""

from __future__ import annotations

from agents.github.files import ChangedFile
from agents.github.plan import make_plan
from agents.llm import count_tokens


def _file(path: str, lines: int, hunks: int = 1, status: str = "modified") -> ChangedFile:
    parts = []
    for h in range(hunks):
        start = 1 + h * 100
        body = [f"+    value_{h}_{i} = compute(item_{i}, limit={i})" for i in range(lines)]
        parts.append(f"@@ -{start},0 +{start},{lines} @@\n" + "\n".join(body))
    return ChangedFile(path, status, "\n".join(parts), additions=lines * hunks)


def _plan(files: list[ChangedFile], room: int = 1000, **kw: int):
    limits = {"fixed_tokens": 300, "max_calls": 20, "max_total_tokens": 10**6, **kw}
    return make_plan(files, count=count_tokens, room=room, **limits)


def test_a_module_and_its_tests_share_a_call() -> None:
    files = [
        _file("pkg/alpha.py", 18),
        _file("pkg/beta.py", 18),
        _file("tests/test_beta.py", 18),
        _file("tests/test_alpha.py", 18),
    ]
    plan = _plan(files)
    assert sorted(sorted(c.paths) for c in plan.calls) == [
        ["pkg/alpha.py", "tests/test_alpha.py"],
        ["pkg/beta.py", "tests/test_beta.py"],
    ]
    assert all(c.tokens <= 1000 and count_tokens(c.text) <= c.tokens for c in plan.calls)


def test_over_the_total_docs_go_before_tests_before_source() -> None:
    files = [_file("README.md", 18), _file("tests/test_core.py", 18), _file("pkg/core.py", 18)]
    whole = _plan(files)
    one_less = whole.estimated_tokens - 1
    plan = _plan(files, max_total_tokens=one_less)
    assert [n.split("`")[1] for n in plan.not_reviewed] == ["README.md"]
    assert "review.max_total_tokens" in plan.not_reviewed[0]
    tight = _plan(files, max_total_tokens=whole.estimated_tokens // 2)
    left = {n.split("`")[1] for n in tight.not_reviewed}
    assert "pkg/core.py" not in left and "README.md" in left


def test_a_large_file_is_split_between_hunks_and_a_huge_hunk_between_lines() -> None:
    many = _file("pkg/many.py", 12, hunks=6)
    plan = _plan([many], room=700)
    assert len(plan.calls) >= 2 and all(c.tokens <= 700 for c in plan.calls)
    assert plan.changed_lines() == (72, 72)
    huge = _file("pkg/huge.py", 200)
    sliced = _plan([huge], room=700)
    assert len(sliced.calls) >= 5 and all(c.tokens <= 700 for c in sliced.calls)
    assert sliced.changed_lines() == (200, 200)
    assert all("### pkg/huge.py" in c.text for c in sliced.calls)


def test_what_is_left_of_a_file_is_named_by_its_hunks() -> None:
    many = _file("pkg/many.py", 12, hunks=6)
    plan = _plan([many], room=700, max_calls=1)
    (note,) = plan.not_reviewed
    assert note.startswith("`pkg/many.py`: hunk(s) ") and "of 6 not reviewed" in note
    assert "review.max_calls" in note
    shown, changed = plan.changed_lines()
    assert 0 < shown < changed and f"({changed - shown} changed lines)" in note


def test_a_lesser_kind_never_fills_room_a_source_file_was_denied() -> None:
    big_source, small_doc = _file("pkg/core.py", 60), _file("README.md", 2)
    fits_doc_only = _plan([small_doc]).estimated_tokens + 5
    plan = _plan([big_source, small_doc], max_total_tokens=fits_doc_only)
    assert plan.calls == [] and len(plan.not_reviewed) == 2


def test_a_line_cut_for_its_length_is_named_too() -> None:
    blob = "+DATA = '" + "ab" * 3000 + "'"
    patch = "@@ -1,0 +1,3 @@\n+import os\n" + blob + "\n+x = 1"
    plan = _plan([ChangedFile("pkg/data.py", "modified", patch, additions=3)], room=2000)
    assert plan.changed_lines() == (3, 3)
    assert plan.not_reviewed == [
        "`pkg/data.py`: 1 line(s) longer than 1000 characters shown only in part"
    ]
    assert _plan([_file("pkg/core.py", 5)]).not_reviewed == []
