"""Fixtures for the runtime suite. `make_app` builds a Harness over step sources written to a
temporary directory; tests that use it run once per backend."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from app.testing import Harness
from tests.runtime.redis_support import URL, MakeBackend, new_prefix, redis_up
from tests.support import write_steps

BACKENDS = ["sqlite", "redis"]


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    if request.param == "redis" and not redis_up():
        if os.environ.get("CI"):
            pytest.fail("Redis is not reachable on 127.0.0.1:6379 (CI needs it)")
        pytest.skip("Redis backend or server not available")
    return request.param


@pytest.fixture
async def make_app(tmp_path: Path, backend_name: str) -> AsyncIterator[Callable[..., Harness]]:
    counter = iter(range(1000))
    made: list[Harness] = []

    def make(files: dict[str, str], **settings: Any) -> Harness:
        steps = write_steps(tmp_path / f"steps{next(counter)}", files)
        settings.setdefault("db", tmp_path / "stepline.db")
        settings.setdefault("redis_prefix", f"test-{uuid.uuid4().hex[:8]}")
        made.append(Harness([steps], backend=backend_name, **settings))
        return made[-1]

    yield make
    if backend_name == "redis":
        await _purge({h.settings.redis_prefix: h.settings for h in made}.values())


async def _purge(all_settings: Iterable[Settings]) -> None:
    """The shared Redis keeps what a run leaves, so every test removes its own keys."""
    from app.backends.redis import RedisBackend

    for settings in all_settings:
        backend = RedisBackend(settings)
        await backend.open()
        await backend.purge()
        await backend.close()


@pytest.fixture
async def make_backend() -> AsyncIterator[MakeBackend]:
    """Opens RedisBackends on one fresh prefix (one per simulated process); purges and closes
    them after the test."""
    from app.backends.redis import RedisBackend

    prefix = new_prefix()
    made: list[RedisBackend] = []

    async def make(**overrides: Any) -> RedisBackend:
        backend = RedisBackend(Settings(REDIS_URL=URL, redis_prefix=prefix, **overrides))
        await backend.open()
        made.append(backend)
        return backend

    yield make
    if made:
        await made[0].purge()
    for backend in made:
        await backend.close()
