"""Middleware: the hooks around every handler run (API, event and cron alike).

Cross-cutting features (metrics, tracing, the event-loop watchdog, your own) are classes with
any of these hooks, registered in order on the runtime:

    class Audit(Middleware):
        def before_run(self, run): ...             # in registration order, before the handler
        def on_error(self, run, exc): ...          # in reverse order, when the handler raised
        def after_run(self, run, outcome): ...     # in reverse order; outcome: "ok", "retry",
                                                   # "dead" (event, cron) or "failed" (api)
        def on_commit(self, batch): ...            # once the run's writes are durable

    runtime.add_middleware(Audit())

A hook that raises is logged and skipped, so a broken metric never fails a run; only
`Permanent` or `Retry` raised by `before_run` are honoured (a middleware may refuse or postpone
a run, e.g. a rate limit). Hooks run on the event loop: keep them quick and non-blocking.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from app.retries import Permanent, Retry
from app.types import Batch, Delivery, Outcome, Span

if TYPE_CHECKING:
    from app.context import Context
    from app.http import Request
    from app.registry import Step

__all__ = ["Middleware", "MiddlewareChain", "Run", "RunOutcome"]

log = logging.getLogger("stepline.middleware")

RunOutcome = Literal["ok", "retry", "dead", "failed"]


@dataclass(slots=True, eq=False)
class Run:
    """One handler run, as middleware sees it."""

    step: Step
    ctx: Context
    span: Span
    delivery: Delivery | None = None
    """The delivery being run (event and cron runs)."""
    request: Request | None = None
    """The request being answered (API runs)."""
    timeout: float | None = None
    task: asyncio.Task[Any] | None = None
    """The task running it, when the engine started one for it (else the caller's task)."""
    started: float = 0.0
    """`time.perf_counter()` when the handler was called."""
    result: Any = None
    error: BaseException | None = None
    outcome: Outcome | None = None
    """How the delivery settles (event and cron runs), once known."""
    notes: dict[str, Any] = field(default_factory=dict)
    """Scratch space for middleware, keyed by their own names."""

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def kind(self) -> str:
        return self.step.kind

    @property
    def trace_id(self) -> str:
        return self.span.trace_id

    @property
    def attempt(self) -> int:
        return self.span.attempt


class Middleware:
    """Base class with no-op hooks; override the ones you need."""

    def before_run(self, run: Run) -> None:
        """Before the handler is called."""

    def on_error(self, run: Run, exc: BaseException) -> None:
        """The handler (or its time limit) raised `exc`."""

    def after_run(self, run: Run, outcome: RunOutcome) -> None:
        """The run is over and its outcome decided; its writes are queued, not yet durable."""

    def on_commit(self, batch: Batch) -> None:
        """`batch` (many runs' emits, outcomes and spans) is durable."""


def _overrides(mw: Middleware, name: str) -> bool:
    return getattr(type(mw), name) is not getattr(Middleware, name)


class MiddlewareChain:
    """The installed middleware, with each hook pre-bound so an unused hook costs nothing."""

    def __init__(self, middleware: Iterable[Middleware] = ()) -> None:
        self.middleware: list[Middleware] = []
        self._before: list[Callable[[Run], None]] = []
        self._error: list[Callable[[Run, BaseException], None]] = []
        self._after: list[Callable[[Run, RunOutcome], None]] = []
        self._commit: list[Callable[[Batch], None]] = []
        for mw in middleware:
            self.add(mw)

    def add(self, mw: Middleware) -> None:
        if not isinstance(mw, Middleware):
            raise TypeError(
                f"{mw!r} is not an app.Middleware; subclass it and override the hooks you need"
            )
        self.middleware.append(mw)
        ordered = self.middleware
        self._before = [m.before_run for m in ordered if _overrides(m, "before_run")]
        reverse = list(reversed(ordered))
        self._error = [m.on_error for m in reverse if _overrides(m, "on_error")]
        self._after = [m.after_run for m in reverse if _overrides(m, "after_run")]
        self._commit = [m.on_commit for m in reverse if _overrides(m, "on_commit")]

    def before_run(self, run: Run) -> None:
        """Raises only Permanent or Retry (a middleware refusing or postponing the run)."""
        for hook in self._before:
            try:
                hook(run)
            except (Permanent, Retry):
                raise
            except Exception:
                _broken(hook, run)

    def on_error(self, run: Run, exc: BaseException) -> None:
        for hook in self._error:
            try:
                hook(run, exc)
            except Exception:
                _broken(hook, run)

    def after_run(self, run: Run, outcome: RunOutcome) -> None:
        for hook in self._after:
            try:
                hook(run, outcome)
            except Exception:
                _broken(hook, run)

    def on_commit(self, batch: Batch) -> None:
        for hook in self._commit:
            try:
                hook(batch)
            except Exception:
                log.exception(
                    "middleware hook %s failed on commit; skipped",
                    getattr(hook, "__qualname__", hook),
                )


def _broken(hook: Callable[..., None], run: Run) -> None:
    log.exception(
        "middleware hook %s failed for a run of %s; skipped",
        getattr(hook, "__qualname__", hook),
        run.name,
    )
