"""Gmail triage: connect an inbox, score spam, flag urgent mail, alert, clean up, learn.

Modules, one concept each: settings (config/gmail.yaml, hot reload), env (GMAIL_* variables,
`.env`), oauth, api, message (the parsed mail), parse and html (mail that never fails to
parse), rules / rules_headers / rules_content (the built-in spam signs and their weights),
tokens and bayes (the trained model), evidence and spam (the combined verdict), priority,
classify (both verdicts, shared by the flow and the CLI), learning (from the user's label
changes), pubsub (push verification), counters, flow (what the steps do), services
(per-process clients), cli and plugin (`stepline gmail`, start-up check).
"""

from typing import TYPE_CHECKING

from agents.common.lazy import lazy_exports

if TYPE_CHECKING:
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

# Imported when first used: see agents/common/lazy.py.
__getattr__ = lazy_exports(
    __name__,
    {
        "Assessment": "agents.gmail.classify",
        "GmailAPIError": "agents.gmail.errors",
        "GmailAuthRevoked": "agents.gmail.errors",
        "GmailError": "agents.gmail.errors",
        "GmailNotConnected": "agents.gmail.errors",
        "GmailSettings": "agents.gmail.settings",
        "HistoryExpired": "agents.gmail.errors",
        "ParsedEmail": "agents.gmail.parse",
        "PushRejected": "agents.gmail.errors",
        "assess": "agents.gmail.classify",
        "current_settings": "agents.gmail.settings",
        "parse_raw": "agents.gmail.parse",
    },
)
