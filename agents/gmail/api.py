"""The Gmail API calls the flow makes, through google-api-python-client.

The client uses the discovery document shipped in the package (no network at build time)
and `GMAIL_API_URL` as endpoint, so tests point it at a loopback fake. Calls are blocking;
async callers run them with `asyncio.to_thread`. Each call gets its own HTTP connection
object because httplib2 is not thread-safe.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agents.gmail.env import gmail_env
from agents.gmail.errors import GmailAPIError, GmailAuthRevoked, HistoryExpired
from agents.gmail.oauth import load_credentials, revoked_message, save_token, token_file
from agents.gmail.parse import ParsedEmail, b64url_decode, parse_raw, with_gmail_fields

if TYPE_CHECKING:
    from google.oauth2.credentials import Credentials
    from googleapiclient.errors import HttpError

__all__ = ["DEFAULT_API_URL", "GmailAPI", "HistoryPage", "LabelChange", "api_url"]

DEFAULT_API_URL = "https://gmail.googleapis.com/"
_BATCH_DELETE_MAX = 1000  # Gmail's limit per batchDelete call


def api_url() -> str:
    return gmail_env().api_url or DEFAULT_API_URL


@dataclass(frozen=True)
class LabelChange:
    """One message's labels changed in one history record."""

    record_id: str
    message_id: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    labels: tuple[str, ...]  # the message's labels after the change


@dataclass
class HistoryPage:
    latest: str
    added: list[str] = field(default_factory=list)
    label_changes: list[LabelChange] = field(default_factory=list)


def _label_changes(record: dict[str, Any]) -> list[LabelChange]:
    by_message: dict[str, tuple[list[str], list[str], list[str]]] = {}
    for key, index in (("labelsAdded", 0), ("labelsRemoved", 1)):
        for change in record.get(key, []):
            message = change.get("message", {})
            mid = message.get("id")
            if not mid:
                continue
            entry = by_message.setdefault(mid, ([], [], []))
            entry[index].extend(change.get("labelIds", []))
            entry[2][:] = message.get("labelIds", [])
    return [
        LabelChange(str(record.get("id", "")), mid, tuple(a), tuple(r), tuple(now))
        for mid, (a, r, now) in by_message.items()
    ]


def _error(exc: HttpError, what: str) -> GmailAPIError:
    status = int(exc.resp.status)
    reason = ""
    try:
        body = json.loads(exc.content or b"{}")
        err = body.get("error", {})
        reason = (err.get("errors") or [{}])[0].get("reason", "") or err.get("status", "")
        detail = err.get("message", "")
    except (ValueError, AttributeError):
        detail = ""
    hint = {
        401: "the token was not accepted; run `stepline gmail connect` again",
        403: "permission denied (a missing scope or a disabled Gmail API in the Cloud project)",
        429: "rate limited by Gmail; it will be retried",
    }.get(status, detail or "see the Gmail API status")
    cls = HistoryExpired if (status == 404 and what == "history.list") else GmailAPIError
    return cls(status, reason, f"Gmail {what} failed with HTTP {status}: {hint}")


class GmailAPI:
    def __init__(
        self,
        credentials: Credentials,
        *,
        user_id: str = "me",
        endpoint: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
    ) -> None:
        self.credentials = credentials
        self.user_id = user_id
        self.timeout = timeout
        self.retries = retries
        # The Google client libraries are imported on first use, not when the steps load.
        from googleapiclient.discovery import build

        self._service = build(
            "gmail",
            "v1",
            credentials=credentials,
            client_options={"api_endpoint": endpoint or api_url()},
            static_discovery=True,
            cache_discovery=False,
        )
        self._users = self._service.users()

    @classmethod
    def connect(cls, *, user_id: str = "me") -> GmailAPI:
        """From the stored token (refreshed if needed) and the configured endpoint."""
        return cls(load_credentials(), user_id=user_id)

    def _run(self, request: Any, what: str) -> Any:
        import google_auth_httplib2
        import httplib2
        from google.auth.exceptions import RefreshError
        from googleapiclient.errors import HttpError

        http = google_auth_httplib2.AuthorizedHttp(
            self.credentials, http=httplib2.Http(timeout=self.timeout)
        )
        before = self.credentials.token
        try:
            return request.execute(http=http, num_retries=self.retries)
        except HttpError as exc:
            raise _error(exc, what) from None
        except RefreshError:
            raise GmailAuthRevoked(revoked_message(token_file())) from None
        finally:
            if self.credentials.token != before and self.credentials.refresh_token:
                # refreshed after a 401: keep the new access token for the next process
                save_token(self.credentials, token_file())

    # -- reading -----------------------------------------------------------------------------
    def profile(self) -> dict[str, Any]:
        return self._run(self._users.getProfile(userId=self.user_id), "getProfile")

    def history_since(self, start_history_id: str, label_id: str = "INBOX") -> HistoryPage:
        """What happened since `start_history_id` (every page): messages added to `label_id`,
        label changes on any message, and the newest history id to store. Raises
        HistoryExpired when Gmail no longer has that history.

        One listing, not filtered by label on Gmail's side: a mail moved out of Spam, or
        reported as spam from the inbox, must be seen whichever label it left."""
        out = HistoryPage(latest=start_history_id)
        seen: set[str] = set()
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "userId": self.user_id,
                "startHistoryId": start_history_id,
                "historyTypes": ["messageAdded", "labelAdded", "labelRemoved"],
            }
            if token:
                kwargs["pageToken"] = token
            page = self._run(self._users.history().list(**kwargs), "history.list")
            for record in page.get("history", []):
                for added in record.get("messagesAdded", []):
                    message = added.get("message", {})
                    mid = message.get("id")
                    if mid and mid not in seen and label_id in message.get("labelIds", []):
                        seen.add(mid)
                        out.added.append(mid)
                out.label_changes += _label_changes(record)
            out.latest = str(page.get("historyId") or out.latest)
            token = page.get("nextPageToken")
            if not token:
                return out

    def list_ids(
        self,
        *,
        q: str | None = None,
        label_ids: list[str] | None = None,
        include_spam_trash: bool = False,
        limit: int | None = None,
    ) -> list[str]:
        return list(
            self.iter_ids(
                q=q, label_ids=label_ids, include_spam_trash=include_spam_trash, limit=limit
            )
        )

    def iter_ids(
        self,
        *,
        q: str | None = None,
        label_ids: list[str] | None = None,
        include_spam_trash: bool = False,
        limit: int | None = None,
    ) -> Iterator[str]:
        token: str | None = None
        count = 0
        while True:
            kwargs: dict[str, Any] = {"userId": self.user_id, "maxResults": 500}
            if limit is not None:
                kwargs["maxResults"] = min(500, limit - count)
            if q:
                kwargs["q"] = q
            if label_ids:
                kwargs["labelIds"] = label_ids
            if include_spam_trash:
                kwargs["includeSpamTrash"] = True
            if token:
                kwargs["pageToken"] = token
            page = self._run(self._users.messages().list(**kwargs), "messages.list")
            for item in page.get("messages", []):
                yield item["id"]
                count += 1
                if limit is not None and count >= limit:
                    return
            token = page.get("nextPageToken")
            if not token:
                return

    def get(self, message_id: str, fmt: str = "full") -> dict[str, Any]:
        request = self._users.messages().get(userId=self.user_id, id=message_id, format=fmt)
        return self._run(request, "messages.get")

    def get_parsed(self, message_id: str) -> ParsedEmail:
        """Fetch in `raw` format and parse with the same code as `.eml` files."""
        message = self.get(message_id, "raw")
        return with_gmail_fields(parse_raw(b64url_decode(message.get("raw", ""))), message)

    # -- changing ----------------------------------------------------------------------------
    def modify(
        self, message_id: str, add: list[str] | None = None, remove: list[str] | None = None
    ) -> dict[str, Any]:
        body = {"addLabelIds": add or [], "removeLabelIds": remove or []}
        request = self._users.messages().modify(userId=self.user_id, id=message_id, body=body)
        return self._run(request, "messages.modify")

    def trash(self, message_id: str) -> dict[str, Any]:
        request = self._users.messages().trash(userId=self.user_id, id=message_id)
        return self._run(request, "messages.trash")

    def batch_delete(self, ids: list[str]) -> None:
        """Delete for good (needs the full mail scope)."""
        for start in range(0, len(ids), _BATCH_DELETE_MAX):
            chunk = ids[start : start + _BATCH_DELETE_MAX]
            request = self._users.messages().batchDelete(userId=self.user_id, body={"ids": chunk})
            self._run(request, "messages.batchDelete")

    def find_label(self, name: str) -> str | None:
        """The id of the label called `name`, or None when the mailbox has no such label."""
        labels = self._run(self._users.labels().list(userId=self.user_id), "labels.list")
        for label in labels.get("labels", []):
            if label.get("name") == name:
                return str(label["id"])
        return None

    def ensure_label(self, name: str) -> str:
        """The id of the user label `name`, created when missing."""
        found = self.find_label(name)
        if found is not None:
            return found
        body = {"name": name, "labelListVisibility": "labelShow", "messageListVisibility": "show"}
        created = self._run(
            self._users.labels().create(userId=self.user_id, body=body), "labels.create"
        )
        return str(created["id"])

    def watch(self, topic: str, label_ids: list[str]) -> dict[str, Any]:
        body = {"topicName": topic, "labelIds": label_ids, "labelFilterBehavior": "include"}
        return self._run(self._users.watch(userId=self.user_id, body=body), "watch")

    def stop(self) -> None:
        self._run(self._users.stop(userId=self.user_id), "stop")
