"""The Slack (and push) messages of the flow: opened, reviewed, merged, daily report.

Every message about one pull request carries the same `thread_key`, so Slack threads them
under the first one. Titles come from strangers' pull requests: they are redacted too.
"""

from __future__ import annotations

from typing import Any

from agents.common.redact import redact
from agents.github.events import TOPIC_MERGED, TOPIC_OPENED, TOPIC_REVIEWED
from agents.github.report import Report
from agents.github.settings import GithubSettings

__all__ = ["note_for", "report_note", "thread_key"]


def thread_key(repo: str, number: int) -> str:
    return f"pr:{repo}#{number}"


def note_for(topic: str, data: dict[str, Any], settings: GithubSettings) -> dict[str, Any] | None:
    """Keyword arguments for `Notification`, or None when config turns this message off."""
    repo, number = str(data["repo"]), int(data["number"])
    title = redact(str(data.get("title") or ""))
    base: dict[str, Any] = {
        "thread_key": thread_key(repo, number),
        "channel": settings.channel_for(repo),
        "url": data.get("url") or None,
    }
    if topic == TOPIC_OPENED and settings.slack.opened:
        author = data.get("author") or "someone"
        return {
            **base,
            "title": f"PR opened: {repo}#{number}",
            "priority": "low",
            "text": f"{title} (by {author})",
        }
    if topic == TOPIC_REVIEWED and settings.slack.reviewed:
        findings = data.get("findings") or {}
        counts = ", ".join(f"{n} {sev}" for sev, n in sorted(findings.items())) or "none"
        score = int(data.get("score", 0))
        return {
            **base,
            "title": f"Review of {repo}#{number}: {score}/100",
            "text": f"{title}: {data.get('comments', 0)} inline comment(s)",
            "url": data.get("review_url") or data.get("url") or None,
            "priority": "high" if data.get("blocking") else "normal",
            "fields": {
                "Score": str(score),
                "Findings": counts,
                "Reviewer": str(data.get("reviewer") or ""),
            },
        }
    if topic == TOPIC_MERGED and settings.slack.merged:
        by = f" by {data['merged_by']}" if data.get("merged_by") else ""
        return {
            **base,
            "title": f"PR merged: {repo}#{number}",
            "priority": "low",
            "text": f"{title} merged{by}",
        }
    return None


def report_note(report: Report, settings: GithubSettings) -> dict[str, Any]:
    return {
        "title": f"Pull requests on {report.day}",
        "text": report.text(),
        "priority": "low",
        "channel": settings.report.channel or settings.slack.default_channel,
    }
