"""Gmail triage: connect an inbox, score spam, flag urgent mail, alert, clean up, learn.

Modules, one concept each: settings (config/gmail.yaml, hot reload), env (GMAIL_* variables,
`.env`), oauth, api, message (the parsed mail), parse and html (mail that never fails to
parse), rules / rules_headers / rules_content (the built-in spam signs and their weights),
tokens and bayes (the trained model), evidence and spam (the combined verdict), priority,
classify (both verdicts, shared by the flow and the CLI), learning (from the user's label
changes), pubsub (push verification), counters, flow (what the steps do), services
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
