"""Event topics and state groups of the Gmail flow, named once."""

from __future__ import annotations

__all__ = [
    "COUNTED_GROUP",
    "COUNTERS_GROUP",
    "LEARNED_GROUP",
    "MAILBOX_GROUP",
    "MESSAGES_GROUP",
    "TOPIC_CHECKED",
    "TOPIC_CLEANUP",
    "TOPIC_CURSOR",
    "TOPIC_HIGH",
    "TOPIC_LABELS",
    "TOPIC_NEW",
    "TOPIC_NOTIFY",
    "TOPIC_RECEIVED",
    "TOPIC_SPAM",
    "TOPIC_SYNC",
    "VERDICTS_GROUP",
    "VIP_GROUP",
]

TOPIC_SYNC = "gmail.sync.requested"  # a push said the mailbox changed
TOPIC_NEW = "gmail.message.new"  # one message to process: {"id"} or an inline webhook mail
TOPIC_CURSOR = "gmail.history.advanced"  # move the stored history id once the emits committed
TOPIC_RECEIVED = "gmail.email.received"  # parsed mail
TOPIC_SPAM = "gmail.spam.detected"
TOPIC_CHECKED = "gmail.email.checked"  # judged not spam: goes on to the priority classifier
TOPIC_HIGH = "gmail.email.high_priority"
TOPIC_CLEANUP = "gmail.cleanup.completed"
TOPIC_LABELS = "gmail.labels.changed"  # the user moved a mail into or out of spam/our labels
TOPIC_NOTIFY = "notify.send"

MAILBOX_GROUP = "gmail.mailbox"  # history_id, watch_expiration
MESSAGES_GROUP = "gmail.messages"  # message id -> metadata (no body)
COUNTERS_GROUP = "gmail.counters"  # "YYYY-MM-DD:cleaned" -> running total
COUNTED_GROUP = "gmail.counted"  # "spam:<id>" -> claim, so a re-run counts nothing twice
VIP_GROUP = "gmail.vip"  # address or *@domain -> true
VERDICTS_GROUP = "gmail.verdicts"  # message id -> {"verdict", "action"}: what the flow did
LEARNED_GROUP = "gmail.learned"  # message id -> {"as", "why", "correction", "day"}, 180 days
