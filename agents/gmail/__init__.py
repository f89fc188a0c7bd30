"""Gmail triage: connect an inbox, score spam, flag urgent mail, alert, clean up.

Modules, one concept each: settings (config/gmail.yaml, hot reload), oauth, api, parse,
rules / bayes / spam (the spam score), priority, classify (both verdicts, shared by the flow
and the CLI), pubsub (push verification), counters, flow (what the steps do), services
(per-process clients), cli and plugin (`stepline gmail`, start-up check).
"""

from agents.gmail.classify import Assessment, assess
from agents.gmail.errors import (
    GmailAPIError,
    GmailAuthRevoked,
    GmailError,
    GmailNotConnected,
    HistoryExpired,
    PushRejected,
)
from agents.gmail.parse import ParsedEmail, parse_raw
from agents.gmail.settings import GmailSettings, current_settings

__all__ = [
    "Assessment",
    "GmailAPIError",
    "GmailAuthRevoked",
    "GmailError",
    "GmailNotConnected",
    "GmailSettings",
    "HistoryExpired",
    "ParsedEmail",
    "PushRejected",
    "assess",
    "current_settings",
    "parse_raw",
]
