"""Notifications both flows share: Slack, ntfy, Pushover, a JSON webhook, or the log.

A flow step builds a `Notification` and emits one `notify.send` event per provider
(`fan_out`); the `SendNotification` step (steps/notify/) sends each through
`Notifiers.send`, so a Slack outage delays that provider's message without losing it and
without repeating the others.
"""

from typing import TYPE_CHECKING

from agents.common.lazy import lazy_exports

if TYPE_CHECKING:
    from agents.notify.models import Notification, NotifyError, NotifyRequest, Priority
    from agents.notify.notifiers import PUSH_PROVIDERS, Notifier, Notifiers, fan_out
    from agents.notify.settings import NotifySettings
    from agents.notify.slack import THREADS_GROUP

__all__ = [
    "PUSH_PROVIDERS",
    "THREADS_GROUP",
    "Notification",
    "Notifier",
    "Notifiers",
    "NotifyError",
    "NotifyRequest",
    "NotifySettings",
    "Priority",
    "fan_out",
]

# Imported when first used: see agents/common/lazy.py.
__getattr__ = lazy_exports(
    __name__,
    {
        "Notification": "agents.notify.models",
        "Notifier": "agents.notify.notifiers",
        "Notifiers": "agents.notify.notifiers",
        "NotifyError": "agents.notify.models",
        "NotifyRequest": "agents.notify.models",
        "NotifySettings": "agents.notify.settings",
        "PUSH_PROVIDERS": "agents.notify.notifiers",
        "Priority": "agents.notify.models",
        "THREADS_GROUP": "agents.notify.slack",
        "fan_out": "agents.notify.notifiers",
    },
)
