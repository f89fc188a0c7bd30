"""Loading step files: errors name the file and the field."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from app.cli import app as cli
from app.registry import load_registry
from tests.support import write_steps

GOOD = """
config = {"type": "event", "name": "Good", "subscribes": ["a"], "emits": ["b"]}

async def handler(data, ctx):
    await ctx.emit("b", data)
"""

BROKEN = {
    "bad_cron_step.py": (
        'config = {"type": "cron", "name": "C", "cron": "61 * * * *"}\n'
        "async def handler(ctx): pass\n",
        "cron",
        "minute 61 is out of range 0-59",
    ),
    "hour_step.py": (
        'config = {"type": "cron", "name": "H", "cron": "0 25 * * *"}\n'
        "async def handler(ctx): pass\n",
        "cron",
        "hour 25 is out of range 0-23",
    ),
    "fields_step.py": (
        'config = {"type": "cron", "name": "F", "cron": "0 9 * *"}\nasync def handler(ctx): pass\n',
        "cron",
        "has 4 fields",
    ),
    "kind_step.py": (
        'config = {"type": "webhook", "name": "K"}\nasync def handler(d, ctx): pass\n',
        "type",
        "unknown kind 'webhook'",
    ),
    "typo_step.py": (
        'config = {"type": "event", "name": "T", "subscribes": ["a"], '
        '"retires": 3}\nasync def handler(d, ctx): pass\n',
        "retires",
        "unknown key `retires`, did you mean `retries`?",
    ),
    "subscribe_step.py": (
        'config = {"type": "event", "name": "U", "subscribe": ["a"]}\n'
        "async def handler(d, ctx): pass\n",
        "subscribe",
        "did you mean `subscribes`?",
    ),
    "emit_step.py": (
        'config = {"type": "event", "name": "E", "subscribes": ["a"]}\n'
        'async def handler(d, ctx):\n    await ctx.emit("c", d)\n',
        "emits",
        "emits 'c', which is not declared",
    ),
    "newline_step.py": (
        'config = {"type": "event", "name": "N\\n", "subscribes": ["a"]}\n'
        "async def handler(d, ctx): pass\n",
        "name",
        "use letters, digits",
    ),
    "sig_step.py": (
        'config = {"type": "event", "name": "S", "subscribes": ["a"]}\n'
        "async def handler(ctx): pass\n",
        "handler",
        "an event step's handler is handler(data, ctx)",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_step_is_reported_with_file_and_field(tmp_path, name):
    source, field, message = BROKEN[name]
    write_steps(tmp_path, {"a_good_step.py": GOOD, name: source})
    registry = load_registry([tmp_path])
    assert "Good" in registry.steps
    assert len(registry.errors) == 1
    error = registry.errors[0]
    assert error.file.endswith(name) and error.field == field
    assert message in str(error)


def test_duplicate_route_refuses_both_files_and_names_both(tmp_path):
    # `duproute_step.py` sorts before `orders_step.py`: loading order must not pick a winner.
    route = (
        'config = {{"type": "api", "name": "{n}", "path": "/orders", "method": "POST"}}\n'
        "async def handler(req, ctx): return {{}}\n"
    )
    write_steps(
        tmp_path,
        {
            "orders_step.py": route.format(n="PlaceOrder"),
            "duproute_step.py": route.format(n="Copy"),
            "a_good_step.py": GOOD,
        },
    )
    registry = load_registry([tmp_path])
    assert sorted(registry.steps) == ["Good"]
    assert sorted((e.file.rsplit("/", 1)[1], e.field) for e in registry.errors) == [
        ("duproute_step.py", "path"),
        ("orders_step.py", "path"),
    ]
    for error in registry.errors:
        assert "duplicate route POST /orders" in str(error)
        assert "orders_step.py" in error.reason or "duproute_step.py" in error.reason
    by_file = {e.file.rsplit("/", 1)[1]: e.reason for e in registry.errors}
    assert "duproute_step.py" in by_file["orders_step.py"]
    assert "orders_step.py" in by_file["duproute_step.py"]


def test_duplicate_name_refuses_both_files(tmp_path):
    twin = (
        'config = {"type": "event", "name": "Good", "subscribes": ["a"]}\n'
        "async def handler(d, ctx): pass\n"
    )
    write_steps(tmp_path, {"a_good_step.py": GOOD, "z_twin_step.py": twin})
    registry = load_registry([tmp_path])
    assert registry.steps == {}
    assert {e.field for e in registry.errors} == {"name"}
    by_file = {e.file.rsplit("/", 1)[1]: e.reason for e in registry.errors}
    assert "z_twin_step.py" in by_file["a_good_step.py"]
    assert "a_good_step.py" in by_file["z_twin_step.py"]


def test_steps_are_found_recursively_and_topics_checked(tmp_path):
    write_steps(tmp_path, {"deep/er/good_step.py": GOOD, "helper.py": "x = 1\n"})
    registry = load_registry([tmp_path])
    assert list(registry.steps) == ["Good"]
    assert registry.subscribers == {"a": ("Good",)}
    assert registry.warnings() == [
        "topic 'b' is emitted but no step subscribes to it",
        "topic 'a' is subscribed to but no step emits it",
    ]


def test_stepline_steps_lists_and_exits_1_on_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("STEPLINE_STEPS", raising=False)
    write_steps(tmp_path / "ok", {"good_step.py": GOOD})
    result = CliRunner().invoke(cli, ["steps", "--steps", str(tmp_path / "ok")])
    assert result.exit_code == 0, result.output
    assert "Good" in result.output and "no step subscribes" in result.output
    write_steps(tmp_path / "bad", {"kind_step.py": BROKEN["kind_step.py"][0]})
    result = CliRunner().invoke(cli, ["steps", "--steps", str(tmp_path / "bad")])
    assert result.exit_code == 1
    assert "unknown kind" in result.output
