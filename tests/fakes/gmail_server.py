"""A loopback Gmail API that behaves like Gmail on the calls Stepline makes.

History is paged and forgets old ids (404, as Gmail does after about a week), messages come
in `full`, `metadata` and `raw` formats, labels change through modify/trash, batchDelete
needs the full mail scope, and an OAuth token endpoint issues and refreshes access tokens.

History records have Gmail's documented shape (`users.history` resource): `id`, `messages`
(id, threadId) and per change type `messagesAdded` [{message}], `labelsAdded` / `labelsRemoved`
[{message, labelIds}], `message` being {id, threadId, labelIds} with the labels after the change.
A label change records only the labels that really changed. `history.list` honours
`historyTypes` (records holding none of the asked types are left out, and of the others only
the asked fields are kept) and `labelId` (records whose message carries that label).
Point google-api-python-client at it with `client_options={"api_endpoint": url}`.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.common import FakeRequest, FakeService, Reply
from tests.fakes.gmail_format import gmail_error, message_resource

__all__ = ["FULL_SCOPE", "MODIFY_SCOPE", "FakeGmail", "StoredMessage"]

MODIFY_SCOPE = "https://www.googleapis.com/auth/gmail.modify"
FULL_SCOPE = "https://mail.google.com/"
_SYSTEM_LABELS = ["INBOX", "SPAM", "TRASH", "UNREAD", "STARRED", "IMPORTANT", "SENT", "DRAFT"]
_U = r"/gmail/v1/users/(?P<user>[^/]+)"
_HISTORY_FIELDS = {
    "messageAdded": "messagesAdded",
    "messageDeleted": "messagesDeleted",
    "labelAdded": "labelsAdded",
    "labelRemoved": "labelsRemoved",
}


@dataclass
class StoredMessage:
    id: str
    thread_id: str
    raw: bytes
    label_ids: list[str]
    internal_date_ms: int
    history_id: int


@dataclass
class FakeGmail(FakeService):
    email_address: str = "me@example.com"
    history_page_size: int = 2
    list_page_size: int = 3
    messages: dict[str, StoredMessage] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # id -> name (user labels)
    watches: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, list[str]] = field(default_factory=dict)  # access token -> scopes
    refresh_tokens: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__()
        self.history_id = 1000
        self.oldest_history_id = 1000
        self._history: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self.now = time.time  # tests may replace the clock used for `older_than:`
        r = self._authed_route
        self.route("POST", r"/token", self.token)
        r("GET", _U + r"/profile", self.profile)
        r("GET", _U + r"/history", self.history)
        r("GET", _U + r"/messages", self.list_messages)
        r("POST", _U + r"/messages/batchDelete", self.batch_delete)
        r("GET", _U + r"/messages/(?P<mid>[^/]+)", self.get_message)
        r("POST", _U + r"/messages/(?P<mid>[^/]+)/modify", self.modify)
        r("POST", _U + r"/messages/(?P<mid>[^/]+)/trash", self.trash)
        r("GET", _U + r"/labels", self.list_labels)
        r("POST", _U + r"/labels", self.create_label)
        r("POST", _U + r"/watch", self.watch)
        r("POST", _U + r"/stop", self.stop)

    def _authed_route(self, method: str, path: str, handler: Any) -> None:
        """Like Gmail, every API call needs a valid access token first."""

        def guarded(req: FakeRequest, **kw: str) -> Reply:
            auth = self._auth(req)
            return auth if isinstance(auth, Reply) else handler(req, **kw)

        self.route(method, path, guarded)

    # -- test controls -----------------------------------------------------------------------
    def issue_token(self, scopes: list[str] | None = None) -> tuple[str, str]:
        """A fresh (access token, refresh token) pair for `scopes` (gmail.modify by default)."""
        n = next(self._ids)
        access, refresh = f"ya29.fake-access-{n}", f"1//fake-refresh-{n}"
        with self.lock:
            self.tokens[access] = list(scopes or [MODIFY_SCOPE])
            self.refresh_tokens[refresh] = list(scopes or [MODIFY_SCOPE])
        return access, refresh

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def revoke(self, refresh_token: str) -> None:
        with self.lock:
            self.refresh_tokens.pop(refresh_token, None)
            self.tokens.clear()

    def add_message(
        self, raw: bytes, labels: list[str] | None = None, age_days: float = 0.0
    ) -> str:
        """Deliver a message: it gets an id, a history record and an arrival time."""
        with self.lock:
            mid = f"m{next(self._ids):015x}"
            self.history_id += 1
            label_ids = list(labels if labels is not None else ["INBOX", "UNREAD"])
            arrived = int((self.now() - age_days * 86400) * 1000)
            msg = StoredMessage(mid, "t" + mid[1:], raw, label_ids, arrived, self.history_id)
            self.messages[mid] = msg
            ref = {"id": mid, "threadId": msg.thread_id, "labelIds": list(label_ids)}
            self._history.append(
                {
                    "id": str(self.history_id),
                    "messages": [_bare(ref)],
                    "messagesAdded": [{"message": ref}],
                }
            )
            return mid

    def forget_history(self) -> None:
        """Gmail dropped its history: any earlier start id now answers 404."""
        with self.lock:
            self.history_id += 1
            self.oldest_history_id = self.history_id

    def user_relabels(self, mid: str, add: list[str], remove: list[str]) -> None:
        """The user changes labels in Gmail itself ("Not spam", "Report spam", a label
        removed): the change lands in the history like any other."""
        with self.lock:
            msg = self.messages[mid]
            before = list(msg.label_ids)
            msg.label_ids = [x for x in msg.label_ids if x not in remove]
            msg.label_ids += [x for x in add if x not in msg.label_ids]
            self._record_labels(msg, before)

    def label_id(self, name: str) -> str | None:
        with self.lock:
            return next((i for i, n in self.labels.items() if n == name), None)

    def labels_of(self, mid: str) -> list[str]:
        with self.lock:
            return list(self.messages[mid].label_ids)

    # -- helpers -----------------------------------------------------------------------------
    def _auth(self, req: FakeRequest) -> list[str] | Reply:
        header = req.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        with self.lock:
            scopes = self.tokens.get(token)
        if scopes is None:
            message = "Request had invalid authentication credentials."
            return gmail_error(401, message, "authError", "UNAUTHENTICATED")
        return scopes

    def not_found(self, req: FakeRequest | None) -> Reply:
        return gmail_error(404, "Requested entity was not found.", "notFound", "NOT_FOUND")

    def _message(self, mid: str) -> StoredMessage | Reply:
        msg = self.messages.get(mid)
        return self.not_found(None) if msg is None else msg

    # -- OAuth -------------------------------------------------------------------------------
    def token(self, req: FakeRequest) -> Reply:
        form = req.form()
        grant = form.get("grant_type")
        if grant == "refresh_token":
            with self.lock:
                scopes = self.refresh_tokens.get(form.get("refresh_token", ""))
            if scopes is None:
                why = "Token has been expired or revoked."
                return Reply.json({"error": "invalid_grant", "error_description": why}, 400)
            n = next(self._ids)
            access = f"ya29.fake-access-{n}"
            with self.lock:
                self.tokens[access] = scopes
            return Reply.json(
                {
                    "access_token": access,
                    "expires_in": 3599,
                    "token_type": "Bearer",
                    "scope": " ".join(scopes),
                }
            )
        if grant == "authorization_code":
            if form.get("code") != "good-code":
                return Reply.json({"error": "invalid_grant", "error_description": "Bad code."}, 400)
            access, refresh = self.issue_token()
            return Reply.json(
                {
                    "access_token": access,
                    "refresh_token": refresh,
                    "expires_in": 3599,
                    "token_type": "Bearer",
                    "scope": MODIFY_SCOPE,
                }
            )
        return Reply.json({"error": "unsupported_grant_type"}, 400)

    # -- API ---------------------------------------------------------------------------------
    def profile(self, req: FakeRequest, user: str) -> Reply:
        with self.lock:
            return Reply.json(
                {
                    "emailAddress": self.email_address,
                    "messagesTotal": len(self.messages),
                    "threadsTotal": len(self.messages),
                    "historyId": str(self.history_id),
                }
            )

    def history(self, req: FakeRequest, user: str) -> Reply:
        start = int(req.arg("startHistoryId") or 0)
        label = req.arg("labelId")
        kinds = [_HISTORY_FIELDS.get(t) for t in req.query.get("historyTypes", [])]
        if any(k is None for k in kinds):
            return gmail_error(400, "Invalid historyTypes", "invalidArgument", "INVALID_ARGUMENT")
        with self.lock:
            if start < self.oldest_history_id:
                return self.not_found(req)
            records = []
            for record in self._history:
                if int(record["id"]) <= start:
                    continue
                if label and not any(label in m["labelIds"] for m in _changed(record)):
                    continue
                if kinds:
                    record = {
                        k: v for k, v in record.items() if k in ("id", "messages") or k in kinds
                    }
                    if len(record) == 2:
                        continue
                records.append(record)
            offset = int(req.arg("pageToken") or 0)
            page = records[offset : offset + self.history_page_size]
            body: dict[str, Any] = {"historyId": str(self.history_id)}
            if page:
                body["history"] = page
            if offset + self.history_page_size < len(records):
                body["nextPageToken"] = str(offset + self.history_page_size)
        return Reply.json(body)

    def _record_labels(self, msg: StoredMessage, before: list[str]) -> None:
        """A history record of what really changed in `msg`'s labels (caller holds the lock)."""
        added = [x for x in msg.label_ids if x not in before]
        removed = [x for x in before if x not in msg.label_ids]
        self.history_id += 1
        msg.history_id = self.history_id
        if not added and not removed:
            return
        ref = {"id": msg.id, "threadId": msg.thread_id, "labelIds": list(msg.label_ids)}
        record: dict[str, Any] = {"id": str(self.history_id), "messages": [_bare(ref)]}
        if added:
            record["labelsAdded"] = [{"message": ref, "labelIds": added}]
        if removed:
            record["labelsRemoved"] = [{"message": ref, "labelIds": removed}]
        self._history.append(record)

    def _matches(self, msg: StoredMessage, req: FakeRequest) -> bool:
        labels = req.query.get("labelIds", [])
        if any(label not in msg.label_ids for label in labels):
            return False
        hidden = {"SPAM", "TRASH"} & set(msg.label_ids)
        if hidden and req.arg("includeSpamTrash") != "true" and not hidden & set(labels):
            return False
        for op, n, unit in re.findall(r"(older_than|newer_than):(\d+)([dmy])", req.arg("q") or ""):
            age_days = (self.now() * 1000 - msg.internal_date_ms) / 86_400_000
            limit = int(n) * {"d": 1, "m": 30, "y": 365}[unit]
            if (op == "older_than") != (age_days > limit):
                return False
        return True

    def list_messages(self, req: FakeRequest, user: str) -> Reply:
        size = min(int(req.arg("maxResults") or 100), self.list_page_size)
        offset = int(req.arg("pageToken") or 0)
        with self.lock:
            found = sorted(
                (m for m in self.messages.values() if self._matches(m, req)),
                key=lambda m: -m.internal_date_ms,
            )
        page = found[offset : offset + size]
        body: dict[str, Any] = {"resultSizeEstimate": len(found)}
        if page:
            body["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in page]
        if offset + size < len(found):
            body["nextPageToken"] = str(offset + size)
        return Reply.json(body)

    def get_message(self, req: FakeRequest, user: str, mid: str) -> Reply:
        with self.lock:
            msg = self._message(mid)
        if isinstance(msg, Reply):
            return msg
        fmt = req.arg("format") or "full"
        wanted = {h.lower() for h in req.query.get("metadataHeaders", [])}
        body = message_resource(msg, fmt, wanted)
        if body is None:
            return gmail_error(
                400, f"Invalid value at 'format' ({fmt})", "invalidArgument", "INVALID_ARGUMENT"
            )
        return Reply.json(body)

    def modify(self, req: FakeRequest, user: str, mid: str) -> Reply:
        data = req.json() or {}
        with self.lock:
            msg = self._message(mid)
            if isinstance(msg, Reply):
                return msg
            before = list(msg.label_ids)
            for label in data.get("addLabelIds", []):
                if label not in _SYSTEM_LABELS and label not in self.labels:
                    return gmail_error(
                        400, f"Invalid label: {label}", "invalidArgument", "INVALID_ARGUMENT"
                    )
                if label not in msg.label_ids:
                    msg.label_ids.append(label)
            msg.label_ids = [x for x in msg.label_ids if x not in data.get("removeLabelIds", [])]
            self._record_labels(msg, before)
            return Reply.json({"id": msg.id, "threadId": msg.thread_id, "labelIds": msg.label_ids})

    def trash(self, req: FakeRequest, user: str, mid: str) -> Reply:
        with self.lock:
            msg = self._message(mid)
            if isinstance(msg, Reply):
                return msg
            before = list(msg.label_ids)
            kept = [x for x in msg.label_ids if x not in ("INBOX", "SPAM", "TRASH")]
            msg.label_ids = [*kept, "TRASH"]
            self._record_labels(msg, before)
            return Reply.json({"id": msg.id, "threadId": msg.thread_id, "labelIds": msg.label_ids})

    def batch_delete(self, req: FakeRequest, user: str) -> Reply:
        scopes = self._auth(req)  # a Reply only if unauthenticated, which the guard refused
        if isinstance(scopes, Reply) or FULL_SCOPE not in scopes:
            return gmail_error(
                403,
                "Request had insufficient authentication scopes.",
                "insufficientPermissions",
                "PERMISSION_DENIED",
            )
        ids = (req.json() or {}).get("ids", [])
        if len(ids) > 1000:
            return gmail_error(400, "Too many ids", "invalidArgument", "INVALID_ARGUMENT")
        with self.lock:
            for mid in ids:
                self.messages.pop(mid, None)
        return Reply(204)

    def list_labels(self, req: FakeRequest, user: str) -> Reply:
        with self.lock:
            labels = [{"id": x, "name": x, "type": "system"} for x in _SYSTEM_LABELS]
            labels += [{"id": i, "name": n, "type": "user"} for i, n in self.labels.items()]
        return Reply.json({"labels": labels})

    def create_label(self, req: FakeRequest, user: str) -> Reply:
        name = (req.json() or {}).get("name", "")
        with self.lock:
            if name in self.labels.values() or name in _SYSTEM_LABELS:
                return gmail_error(
                    409, "Label name exists or conflicts", "alreadyExists", "ALREADY_EXISTS"
                )
            lid = f"Label_{next(self._ids)}"
            self.labels[lid] = name
        return Reply.json({"id": lid, "name": name, "type": "user"})

    def watch(self, req: FakeRequest, user: str) -> Reply:
        data = req.json() or {}
        topic = data.get("topicName", "")
        if not re.fullmatch(r"projects/[^/]+/topics/[^/]+", topic):
            return gmail_error(400, "Invalid topicName", "invalidArgument", "INVALID_ARGUMENT")
        with self.lock:
            self.watches.append(data)
            expiration = int((self.now() + 7 * 86400) * 1000)
            return Reply.json({"historyId": str(self.history_id), "expiration": str(expiration)})

    def stop(self, req: FakeRequest, user: str) -> Reply:
        return Reply(204)


def _bare(ref: dict[str, Any]) -> dict[str, Any]:
    # a record's `messages` list: "typically only id and threadId populated" (history.list docs)
    return {"id": ref["id"], "threadId": ref["threadId"]}


def _changed(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages of `record`'s change fields, which carry their labels."""
    kinds = ("messagesAdded", "labelsAdded", "labelsRemoved")
    return [change["message"] for kind in kinds for change in record.get(kind, [])]
