"""Errors of the Gmail flow; each message says what to do about it and quotes no secret.

SteplineError
└── GmailError
    ├── GmailNotConnected     no token file yet
    ├── GmailAuthRevoked      the refresh token no longer works (also an app.Permanent)
    ├── GmailAPIError         Gmail answered an error (status and reason kept)
    │   └── HistoryExpired    the stored history id is too old (404)
    └── PushRejected          a Pub/Sub push failed OIDC verification
"""

from __future__ import annotations

from app.errors import SteplineError
from app.retries import Permanent

__all__ = [
    "GmailAPIError",
    "GmailAuthRevoked",
    "GmailError",
    "GmailNotConnected",
    "HistoryExpired",
    "PushRejected",
]


class GmailError(SteplineError):
    """Root of the Gmail flow's errors."""


class GmailNotConnected(GmailError):
    """No stored token: the user has not run `stepline gmail connect` yet."""


class GmailAuthRevoked(GmailError, Permanent):
    """The stored grant was revoked or expired; connecting again fixes it.

    Also a `Permanent`: a delivery that hits it is dead-lettered at once with the fix, since
    no retry can succeed before someone runs `stepline gmail connect` (replay it after)."""


class GmailAPIError(GmailError):
    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(message)


class HistoryExpired(GmailAPIError):
    """`users.history.list` answered 404: the start id is older than Gmail keeps."""


class PushRejected(GmailError):
    """A push request whose token is missing, invalid, or meant for another audience."""
