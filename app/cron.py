"""Cron: the latest due tick of each cron step fires once across every process.

A tick fires when it is newer than the last recorded fire. After downtime only the most recent
missed tick fires (no storm); a step that has never fired waits for its first tick after start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from app.backends.base import Backend
from app.errors import BackendError, NotFound
from app.registry import Registry
from app.step_config import CronConfig
from app.types import Message, new_id

__all__ = ["CronScheduler", "cron_topic", "next_run", "next_tick", "previous_tick"]

log = logging.getLogger("stepline.cron")

FLOW_RECHECK = 30.0  # seconds between looks at whether a flow was turned on or off


def cron_topic(step: str) -> str:
    return f"cron:{step}"


def previous_tick(config: CronConfig, now: float) -> float:
    """The latest tick at or before `now` (epoch seconds), in the step's time zone."""
    base = datetime.fromtimestamp(now, tz=ZoneInfo(config.timezone))
    it = croniter(config.cron, base)
    if croniter.match(config.cron, base.replace(second=0, microsecond=0)) and base.second == 0:
        return base.replace(microsecond=0).timestamp()
    return float(it.get_prev(float))


def next_tick(config: CronConfig, now: float) -> float:
    base = datetime.fromtimestamp(now, tz=ZoneInfo(config.timezone))
    return float(croniter(config.cron, base).get_next(float))


def next_run(config: CronConfig, now: float | None = None) -> str:
    """The next tick as an ISO 8601 time in the step's time zone (shown by the Workbench)."""
    when = next_tick(config, time.time() if now is None else now)
    return datetime.fromtimestamp(when, ZoneInfo(config.timezone)).isoformat()


class CronScheduler:
    def __init__(
        self,
        backend: Backend,
        registry: Registry,
        *,
        clock: Callable[[], float] = time.time,
        on_fire: Callable[[], None] | None = None,
    ) -> None:
        self.backend = backend
        self.registry = registry
        self.clock = clock
        self._on_fire = on_fire
        self._started_at = clock()
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._idle: set[str] | None = None
        self._idle_at = 0.0

    def _configs(self, now: float | None = None) -> list[CronConfig]:
        """The cron steps that fire: those of flows that are on (and of no flow at all)."""
        configs = [
            s.config for s in self.registry.of_kind("cron") if isinstance(s.config, CronConfig)
        ]
        now = self.clock() if now is None else now
        if self._idle is None or now - self._idle_at >= FLOW_RECHECK:
            self._recheck(configs, now)
        idle = self._idle or set()
        return [c for c in configs if not c.flows or not set(c.flows) <= idle]

    def _recheck(self, configs: list[CronConfig], now: float) -> None:
        """Which flows are off, looked at again now and then: a flow off at start (so its
        cron steps do not log the same failure every tick) turns on once it is configured
        (`stepline gmail connect` while the server runs), as /readyz also sees it."""
        from app.plugins import idle_flows

        flows = {f for c in configs for f in c.flows}
        idle = idle_flows(flows) if flows else set()
        if self._idle is None:
            for c in configs:
                if c.flows and set(c.flows) <= idle:
                    # Debug only: the flow's own "is off" line already said it.
                    log.debug("cron %s will not fire: flow %s is off", c.name, ", ".join(c.flows))
        else:
            for name in sorted(self._idle - idle):
                log.info("flow %s is on now: its cron steps fire", name)
            for name in sorted(idle - self._idle):
                log.info("flow %s is off now: its cron steps do not fire", name)
        self._idle, self._idle_at = idle, now

    async def tick(self, now: float | None = None) -> list[str]:
        """Fire every cron step whose latest tick is due; return the names that fired here."""
        now = self.clock() if now is None else now
        fired: list[str] = []
        for config in self._configs(now):
            due = previous_tick(config, now)
            last = await self.backend.last_fire(config.name)
            if last is None and due < self._started_at:
                continue
            if last is not None and due <= last:
                continue
            message = Message(
                cron_topic(config.name),
                {"tick": datetime.fromtimestamp(due, UTC).isoformat()},
                new_id(),
                (config.name,),
            )
            if await self.backend.try_fire(config.name, due, message):
                fired.append(config.name)
                log.info(
                    "cron %s fired for tick %s",
                    config.name,
                    datetime.fromtimestamp(due, UTC).isoformat(),
                )
        if fired and self._on_fire is not None:
            self._on_fire()
        return fired

    async def trigger(self, name: str) -> Message:
        """Run a cron step now, outside its schedule (`stepline cron run NAME`)."""
        step = self.registry.steps.get(name)
        if step is None or step.kind != "cron":
            known = ", ".join(s.name for s in self.registry.of_kind("cron")) or "none"
            raise NotFound(f"no cron step named {name!r} (cron steps: {known})")
        return Message(cron_topic(name), {"tick": None, "manual": True}, new_id(), (name,))

    def start(self) -> None:
        # Also when every cron step's flow is off: a flow may be turned on while it runs.
        if self._task is None and self.registry.of_kind("cron"):
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="stepline-cron")

    async def stop(self) -> None:
        if self._task is not None:
            # The event ends the loop even where a client library swallows the cancellation.
            self._stop.set()
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.tick()
            except BackendError as exc:
                log.error("cron could not reach the backend: %s", exc)
            now = self.clock()
            upcoming = min((next_tick(c, now) for c in self._configs(now)), default=now + 5.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), min(max(upcoming - now, 0.05), 5.0))
