"""Storage backends behind one contract; `create_backend` picks one from the settings."""

from __future__ import annotations

from app.backends.base import Backend
from app.settings import Settings

__all__ = ["Backend", "create_backend"]


def create_backend(settings: Settings) -> Backend:
    if settings.backend == "redis":
        try:
            from app.backends.redis import RedisBackend
        except ImportError as exc:  # the redis package is a dependency; this guards a broken env
            raise ImportError(f"the Redis backend needs the `redis` package: {exc}") from exc
        return RedisBackend(settings)
    from app.backends.sqlite import SQLiteBackend

    return SQLiteBackend(settings)
