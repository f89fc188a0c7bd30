"""Entry points uvicorn imports: the app built from the environment."""

from __future__ import annotations

import logging
import sys

from fastapi import FastAPI

from app.logger import configure_logging
from app.plugins import startup_problems
from app.registry import load_registry
from app.runtime import Runtime
from app.settings import Settings

__all__ = ["app_from_env"]

log = logging.getLogger("stepline")


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` (used by `stepline dev` reloads and `start`)."""
    from app.server.factory import create_app

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    registry = load_registry(settings.steps)
    for warning in registry.warnings():
        log.warning("%s", warning)
    if settings.mode in ("start", "server"):
        # Each problem once, as the reason not to start (not also as "step not loaded").
        problems = [str(e) for e in registry.errors] + startup_problems("start", registry.flows)
        if problems:
            for p in problems:
                log.error("cannot start: %s", p)
            sys.exit(1)
    else:
        for error in registry.errors:
            log.error("step not loaded: %s", error)
        for p in startup_problems(settings.mode, registry.flows):
            log.warning("%s", p)
    runtime = Runtime(settings, registry=registry)
    work = settings.mode != "server"
    log.info(
        "%d steps loaded from %s; backend %s",
        len(registry.steps),
        ":".join(map(str, settings.steps)),
        settings.backend,
    )
    return create_app(runtime, work=work)
