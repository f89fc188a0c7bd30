"""Per-day activity figures per repository, and the daily report built from them.

Each day and repository has one state record of sets keyed by what happened (a pull request
number, a reviewed head), updated with `state.update`, which is atomic. Recording the same
event twice (a re-run handler, a redelivery) changes nothing, and no reset ever runs: the
report reads the previous day's record, which nobody writes any more, and prunes days older
than `KEEP_DAYS` (also records nobody writes, so deleting them races with nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

__all__ = ["KEEP_DAYS", "REPORT_GROUP", "RepoFigures", "Report", "build_report", "day_of", "record"]

REPORT_GROUP = "github.report"
KEEP_DAYS = 14
Kind = Literal["opened", "reviewed", "merged"]


def day_of(now: datetime | None, timezone: str) -> str:
    zone = ZoneInfo(timezone)
    moment = now.astimezone(zone) if now else datetime.now(zone)
    return moment.date().isoformat()


def _add(kind: Kind, item: str, score: int | None) -> Callable[[Any], dict[str, Any]]:
    def fn(old: Any) -> dict[str, Any]:
        rec = {"opened": [], "reviewed": {}, "merged": [], **(old or {})}
        if kind == "reviewed":
            rec["reviewed"] = {**rec["reviewed"], item: score or 0}
        elif item not in rec[kind]:
            rec[kind] = [*rec[kind], item]
        return rec

    return fn


async def record(
    state: Any,
    kind: Kind,
    repo: str,
    item: str,
    *,
    timezone: str = "UTC",
    score: int | None = None,
    now: datetime | None = None,
) -> None:
    """Count `item` (a PR number, or "number@head:trigger" for a review) once for today."""
    key = f"{day_of(now, timezone)}|{repo}"
    await state.update(REPORT_GROUP, key, _add(kind, item, score), default=None)


@dataclass
class RepoFigures:
    opened: int
    reviews: int
    average_score: float | None
    merged: int


@dataclass
class Report:
    day: str
    repos: dict[str, RepoFigures]

    @property
    def empty(self) -> bool:
        return not self.repos

    def text(self) -> str:
        if self.empty:
            return f"No pull request activity on {self.day}."
        lines = []
        for repo, f in sorted(self.repos.items()):
            avg = f"{f.average_score:.0f}" if f.average_score is not None else "n/a"
            lines.append(
                f"{repo}: {f.opened} opened, {f.reviews} reviewed "
                f"(average score {avg}), {f.merged} merged"
            )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"day": self.day, "repos": {r: vars(f) for r, f in self.repos.items()}}


async def build_report(state: Any, *, timezone: str = "UTC", now: datetime | None = None) -> Report:
    """The figures of the day before `now` in `timezone`."""
    zone = ZoneInfo(timezone)
    moment = now.astimezone(zone) if now else datetime.now(zone)
    day = (moment.date() - timedelta(days=1)).isoformat()
    oldest = (moment.date() - timedelta(days=KEEP_DAYS)).isoformat()
    repos: dict[str, RepoFigures] = {}
    for key, rec in (await state.list(REPORT_GROUP)).items():
        rec_day, _, repo = key.partition("|")
        if rec_day < oldest:
            await state.delete(REPORT_GROUP, key)
            continue
        if rec_day != day or not isinstance(rec, dict):
            continue
        scores = list((rec.get("reviewed") or {}).values())
        repos[repo] = RepoFigures(
            opened=len(rec.get("opened") or []),
            reviews=len(scores),
            average_score=round(sum(scores) / len(scores), 1) if scores else None,
            merged=len(rec.get("merged") or []),
        )
    return Report(day, repos)
