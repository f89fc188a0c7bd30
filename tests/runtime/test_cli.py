"""The CLI against a real database: emit, state, dead letters, cron."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app as cli
from app.testing import Harness
from tests.support import write_steps

STEPS = {
    "fail_step.py": """
        config = {"type": "event", "name": "Flaky", "subscribes": ["job"], "retries": 1}

        async def handler(data, ctx):
            if not await ctx.state.get("switch", "on"):
                raise ValueError("switch is off")
            await ctx.state.set("done", "job", data)
    """,
    "tick_step.py": """
        config = {"type": "cron", "name": "Tick", "cron": "*/5 * * * *"}

        async def handler(ctx):
            await ctx.state.increment("ticks", "n")
    """,
}


@pytest.fixture
def env(tmp_path, monkeypatch):
    steps = write_steps(tmp_path / "steps", STEPS)
    monkeypatch.setenv("STEPLINE_STEPS", str(steps))
    monkeypatch.setenv("STEPLINE_DB", str(tmp_path / "cli.db"))
    return steps, tmp_path / "cli.db"


def run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))


def drain(steps, db) -> None:
    async def go() -> None:
        async with Harness([steps], db=db) as h:
            await h.drain()

    asyncio.run(go())


def test_state_commands(env):
    assert run("state", "set", "users", "ann", '{"vip": true}').exit_code == 0
    result = run("state", "get", "users", "ann")
    assert result.exit_code == 0 and json.loads(result.output) == {"vip": True}
    assert json.loads(run("state", "list").output) == ["users"]
    assert run("state", "delete", "users", "ann").exit_code == 0
    missing = run("state", "get", "users", "ann")
    assert missing.exit_code == 1 and "no key 'ann'" in missing.output
    bad = run("state", "set", "users", "x", "not json")
    assert bad.exit_code == 1 and "quote strings" in bad.output


def test_emit_dead_letter_and_replay(env):
    steps, db = env
    result = run("emit", "job", '{"n": 1}')
    assert result.exit_code == 0 and len(result.output.strip()) == 32
    drain(steps, db)
    listed = json.loads(run("dlq", "list", "--json").output)
    assert [(d["step"], d["topic"], d["attempts"]) for d in listed] == [("Flaky", "job", 1)]
    assert "switch is off" in listed[0]["error"]
    plain = run("dlq", "list").output.splitlines()
    assert plain[0].split("\t")[:4] == [listed[0]["id"], "Flaky", "job", "1"]

    run("state", "set", "switch", "on", "true")
    assert run("dlq", "replay", listed[0]["id"]).output.strip() == "replayed 1"
    drain(steps, db)
    assert json.loads(run("state", "get", "done", "job").output) == {"n": 1}
    assert run("dlq", "replay", "999").exit_code == 1


def test_dlq_replay_of_ids_and_all_together_is_refused(env):
    steps, db = env
    for n in (1, 2):
        assert run("emit", "job", json.dumps({"n": n})).exit_code == 0
    drain(steps, db)
    first = json.loads(run("dlq", "list", "--json").output)[-1]["id"]
    both = run("dlq", "replay", first, "--all")
    assert both.exit_code == 1 and "not both" in both.output
    assert len(json.loads(run("dlq", "list", "--json").output)) == 2  # nothing was replayed
    some = run("dlq", "replay", first, "999999")
    assert some.exit_code == 0 and "replayed 1" in some.output, some.output
    assert "1 of the 2 ids given is not a dead letter" in some.output, some.output


def test_emit_errors_are_one_line(env):
    unknown = run("emit", "nobody.listens", "{}")
    assert unknown.exit_code == 1 and "no step subscribes to 'nobody.listens'" in unknown.output
    assert "Traceback" not in unknown.output
    # Longer than the 80 columns a console assumes when stderr is not a terminal: not wrapped.
    long = run("emit", "orders.placed.in.the.eu.shop.by.a.returning.customer", "{}")
    assert long.exit_code == 1
    assert long.stderr.splitlines() == [
        "error: no step subscribes to 'orders.placed.in.the.eu.shop.by.a.returning.customer' "
        "(subscribed topics: job)"
    ]
    bad = run("emit", "job", "{oops")
    assert bad.exit_code == 1 and "not valid JSON" in bad.output


def test_cron_run_by_hand(env):
    steps, db = env
    assert run("cron", "run", "Tick").exit_code == 0
    drain(steps, db)
    assert run("state", "get", "ticks", "n").output.strip() == "1"
    missing = run("cron", "run", "Nope")
    assert missing.exit_code == 1 and "cron steps: Tick" in missing.output


def clear_env(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Unset `name` for the test, restored after it even if the CLI sets it (a plain delenv
    of an unset variable records nothing to undo)."""
    monkeypatch.setenv(name, "")
    monkeypatch.delenv(name)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project on disk and a shell in a folder deep inside it, with no STEPLINE_* set."""
    for name in ("STEPLINE_DB", "STEPLINE_STEPS", "STEPLINE_CONFIG_DIR", "STEPLINE_BACKEND"):
        clear_env(monkeypatch, name)
    root = tmp_path / "shop"
    write_steps(root / "steps", STEPS)
    (root / "docs" / "notes").mkdir(parents=True)
    monkeypatch.chdir(root / "docs" / "notes")
    return root


def test_commands_find_the_project_upwards(project):
    assert run("state", "set", "users", "ann", "1").exit_code == 0
    assert (project / ".stepline" / "stepline.db").is_file()
    assert not (project / "docs" / "notes" / ".stepline").exists()
    assert json.loads(run("state", "list").output) == ["users"]
    # emit checks the topic against the project's own steps, found from here too
    assert run("emit", "job", "{}").exit_code == 0
    unknown = run("emit", "jobs", "{}")
    assert unknown.exit_code == 1 and "no step subscribes to 'jobs'" in unknown.stderr
    listed = run("steps")
    assert listed.exit_code == 0 and "Flaky" in listed.stdout


def test_the_projects_env_file_counts_from_a_subdirectory(project, monkeypatch):
    """Settings read ./.env only; run from docs/notes (or the project itself), the project's
    .env counts as `dev` reads it, with its relative paths meaning the project's."""
    clear_env(monkeypatch, "STEPLINE_REDIS_PREFIX")
    (project / ".env").write_text("STEPLINE_DB=data/shop.db\nSTEPLINE_REDIS_PREFIX=shop\n")
    assert run("state", "set", "users", "ann", "1").exit_code == 0
    assert (project / "data" / "shop.db").is_file()
    assert not (project / ".stepline").exists()
    assert not (project / "docs" / "notes" / "data").exists()
    assert os.environ["STEPLINE_REDIS_PREFIX"] == "shop"
    monkeypatch.chdir(project)  # from the project itself, as `dev` reads it there
    assert json.loads(run("state", "list").output) == ["users"]
    assert not (project / ".stepline").exists()
    monkeypatch.setenv("STEPLINE_DB", str(project / "given.db"))  # the environment wins
    assert run("state", "list").exit_code == 0 and (project / "given.db").is_file()


def test_a_given_database_still_uses_the_projects_steps(project, monkeypatch):
    """STEPLINE_DB names the file, not the project: from inside the project, emit checks the
    topic against the project's steps and cron run finds its cron step."""
    monkeypatch.setenv("STEPLINE_DB", str(project / "elsewhere.db"))
    assert run("emit", "job", "{}").exit_code == 0
    assert run("cron", "run", "Tick").exit_code == 0
    typo = run("emit", "jbo", "{}")
    assert typo.exit_code == 1
    assert "no step subscribes to 'jbo'; did you mean 'job'?" in typo.stderr
    assert (project / "elsewhere.db").is_file() and not (project / ".stepline").exists()


def _outside_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work from a new directory that is in no project, with no Stepline variable set."""
    for name in ("STEPLINE_DB", "STEPLINE_STEPS", "STEPLINE_BACKEND"):
        clear_env(monkeypatch, name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return elsewhere


def test_emit_says_when_it_found_no_steps_or_a_step_did_not_load(tmp_path, monkeypatch):
    _outside_a_project(tmp_path, monkeypatch)
    monkeypatch.setenv("STEPLINE_DB", str(tmp_path / "given.db"))
    nothing = run("emit", "job", "{}")
    assert nothing.exit_code == 1
    assert "no steps found in steps" in nothing.stderr and "--steps DIR" in nothing.stderr
    broken = {**STEPS, "broken_step.py": 'config = {"type": "event", "name": "B", "subscribe": []}'}
    steps = write_steps(tmp_path / "mine", broken)
    refused = run("emit", "x", "{}", "--steps", str(steps))
    assert refused.exit_code == 1
    assert "no step subscribes to 'x'" in refused.stderr
    assert "1 step file did not load, `stepline steps` says why" in refused.stderr


def test_steps_outside_a_project_refuses_unless_given_a_directory(tmp_path, monkeypatch):
    elsewhere = _outside_a_project(tmp_path, monkeypatch)
    refused = run("steps")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert "no Stepline project at" in refused.stderr and "--steps DIR" in refused.stderr
    steps = write_steps(tmp_path / "mine", STEPS)
    listed = run("steps", "--steps", str(steps))
    assert listed.exit_code == 0 and "Flaky" in listed.stdout
    assert list(elsewhere.iterdir()) == []


def test_outside_a_project_refuses_instead_of_creating_a_database(tmp_path, monkeypatch):
    for name in ("STEPLINE_DB", "STEPLINE_STEPS", "STEPLINE_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for args in (["state", "list"], ["dlq", "list"], ["emit", "job", "{}"]):
        result = run(*args)
        assert result.exit_code == 1, args
        assert "no Stepline project at" in result.stderr and "STEPLINE_DB" in result.stderr
        assert result.stdout == ""
    assert list(elsewhere.iterdir()) == []
    monkeypatch.setenv("STEPLINE_DB", str(tmp_path / "given.db"))  # an explicit file is used
    assert run("state", "list").exit_code == 0 and (tmp_path / "given.db").exists()


def test_steps_prints_problems_on_stderr(tmp_path, monkeypatch):
    monkeypatch.delenv("STEPLINE_STEPS", raising=False)
    write_steps(
        tmp_path,
        {
            "a_step.py": 'config = {"type": "webhook", "name": "K"}\n'
            "async def handler(d, ctx): pass\n",
            **STEPS,
        },
    )
    result = run("steps", "--steps", str(tmp_path))
    assert result.exit_code == 1
    assert "unknown kind" in result.stderr and "unknown kind" not in result.stdout
    assert "Flaky" in result.stdout


def test_env_example_copied_as_is_turns_no_flow_on(tmp_path, monkeypatch):
    """The Quick start says: copy .env.example to .env and fill in what you use. Copied and
    not yet filled in, it must leave both flows off (a default value that names a credential
    file would make a flow required, and `start` refuse)."""
    from pathlib import Path

    from agents.github import services
    from app.plugins import flow_states
    from tests.runtime.test_flow_switches import ENV, FLOWS

    for name in (*ENV, "STEPLINE_CONFIG_DIR"):
        clear_env(monkeypatch, name)
    example = Path(__file__).resolve().parents[2] / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    (tmp_path / "config").mkdir()
    monkeypatch.chdir(tmp_path)
    services.reset()
    try:
        states = flow_states(FLOWS)
    finally:
        services.reset()
    assert {name: state for name, (state, _) in states.items()} == {"github": "off", "gmail": "off"}


def test_a_server_takes_its_host_from_env_file_else_its_own_default(tmp_path, monkeypatch):
    """`--host`, else STEPLINE_HOST (the environment or .env), else the command's default:
    the command used to export its default over a STEPLINE_HOST that .env set."""
    from app.cli import listen_settings

    for name in ("STEPLINE_HOST", "STEPLINE_PORT", "STEPLINE_MODE", "STEPLINE_STEPS"):
        clear_env(monkeypatch, name)
    monkeypatch.chdir(tmp_path)
    assert listen_settings(None, "0.0.0.0", mode="start").host == "0.0.0.0"
    monkeypatch.delenv("STEPLINE_HOST")  # the call exports what it chose, for reloads
    (tmp_path / ".env").write_text("STEPLINE_HOST=10.1.2.3\nSTEPLINE_PORT=8123\n")
    chosen = listen_settings(None, "0.0.0.0", mode="start")
    assert (chosen.host, chosen.port) == ("10.1.2.3", 8123)
    given = listen_settings(None, "127.0.0.1", mode="dev", host="::1", port=9000)
    assert (given.host, given.port) == ("::1", 9000)


@pytest.mark.parametrize(
    ("mode", "prefix"), [("start", "cannot start: "), ("dev", "step not loaded: ")]
)
def test_a_step_that_cannot_load_is_reported_once(tmp_path, monkeypatch, caplog, mode, prefix):
    """`start` refuses with every problem, one line each; it listed each broken step twice
    ("step not loaded", then "cannot start"). `dev` logs it once and runs."""
    from app.server.main import app_from_env

    steps = write_steps(
        tmp_path / "steps",
        {
            "a_step.py": 'config = {"type": "event", "name": "A", "subscribe": ["x"]}\n'
            "async def handler(d, ctx): pass\n"
        },
    )
    for name in ("STEPLINE_STEPS", "STEPLINE_MODE", "STEPLINE_DB", "STEPLINE_FLOWS"):
        clear_env(monkeypatch, name)
    monkeypatch.setenv("STEPLINE_STEPS", str(steps))
    monkeypatch.setenv("STEPLINE_MODE", mode)
    monkeypatch.setenv("STEPLINE_DB", str(tmp_path / "s.db"))
    monkeypatch.setenv("STEPLINE_FLOWS", "")
    monkeypatch.chdir(tmp_path)
    if mode == "start":
        with pytest.raises(SystemExit) as stopped:
            app_from_env()
        assert stopped.value.code == 1
    else:
        app_from_env()
    lines = [r.getMessage() for r in caplog.records if "unknown key `subscribe`" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith(prefix), lines
