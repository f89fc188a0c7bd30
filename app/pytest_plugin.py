"""Stepline's pytest plugin (entry point `pytest11`), so a project that installed Stepline can
test its steps with plain `pytest` and no configuration.

- `async def` tests run: with pytest-asyncio installed and no `asyncio_mode` chosen, the mode
  is set to `auto` (a mode the project sets itself is kept), and an unset
  `asyncio_default_fixture_loop_scope` to `function`, so pytest-asyncio has nothing to warn
  about; without pytest-asyncio, this plugin runs each coroutine test in a fresh event loop.
- The `stepline_harness` fixture is a `Harness` over the project's steps (`$STEPLINE_STEPS`,
  else `steps/` under pytest's root directory) on a database in the test's `tmp_path`; it
  starts when the test enters it: `async with stepline_harness as h: ...`.
- After each test, the secrets its runtimes registered for masking by value are forgotten, so
  one test's made-up token does not mask the next test's output.

This module imports nothing heavy: pytest loads it in every run of every project that has
Stepline installed.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from app.testing import Harness

__all__ = ["pytest_configure", "pytest_pyfunc_call", "pytest_runtest_teardown", "stepline_harness"]


def _asyncio_plugin(config: pytest.Config) -> Any:
    return config.pluginmanager.get_plugin("asyncio")


@pytest.hookimpl(tryfirst=True)  # before pytest-asyncio's own, which warns about the scope
def pytest_configure(config: pytest.Config) -> None:
    if _asyncio_plugin(config) is None:
        return
    if config.getoption("asyncio_mode", None) is None and not _ini_sets(config, "asyncio_mode"):
        config.option.asyncio_mode = "auto"
    scope = "asyncio_default_fixture_loop_scope"
    cache = getattr(config, "_inicache", None)
    if isinstance(cache, dict) and not _ini_sets(config, scope):
        # pytest-asyncio 0.24+ prints a deprecation warning under every run when this is
        # unset; "function" is the value it recommends (and the default it will take), and a
        # project that sets its own is left alone.
        try:
            config.getini(scope)
        except ValueError:  # an older pytest-asyncio without the setting
            return
        cache[scope] = "function"


def _ini_sets(config: pytest.Config, name: str) -> bool:
    """Whether the project's ini file (or `-o`) sets `name`; getini cannot tell a default."""
    raw = getattr(config, "_inicfg", None)  # pytest >= 9; `inicfg` warns there
    if raw is None:
        raw = config.inicfg
    return name in raw


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a coroutine test when no asyncio plugin is there to do it."""
    if _asyncio_plugin(pyfuncitem.config) is not None:
        return None
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


def pytest_runtest_teardown(item: pytest.Item) -> None:
    from app.redact import forget_known_secrets

    forget_known_secrets()


@pytest.fixture
def stepline_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    """A Harness over this project's steps on a database of its own; enter it to start it."""
    from app.testing import Harness

    listed = os.environ.get("STEPLINE_STEPS")
    root = Path(request.config.rootpath)
    steps = [Path(p) for p in listed.split(":") if p] if listed else [root / "steps"]
    return Harness(steps, db=tmp_path / "stepline.db")
