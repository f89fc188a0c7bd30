"""Whether the stored Gmail grant still works, as every process of the app sees it.

When Google refuses the refresh token (`invalid_grant`: the user removed Stepline's access in
their Google account, or the grant expired), no retry can succeed until someone connects
again. The flow records that once in runtime state (group `gmail.status`, key `grant`), so
`/readyz` and `stepline gmail status` of any process name it, and the poll skips quietly
instead of asking Google every minute. The record keeps the token file's stamp: a new
`stepline gmail connect` rewrites the file, the next sync tries again by itself and, when it
works, removes the record. It holds the time, the token file's path and the fix; never a token.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.gmail.errors import GmailAuthRevoked
from agents.gmail.oauth import token_file
from app.redact import redact_text

if TYPE_CHECKING:
    from agents.gmail.flow import SyncResult
    from agents.gmail.settings import GmailSettings

__all__ = [
    "GROUP",
    "KEY",
    "applies",
    "clear",
    "describe",
    "load",
    "record_revoked",
    "stamp",
    "sync",
]

GROUP = "gmail.status"
KEY = "grant"


def stamp(path: Path | None = None) -> str | None:
    """What changes when the token file is written again (None: there is none)."""
    try:
        st = (path or token_file()).stat()
    except OSError:
        return None
    return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"


async def load(state: Any) -> dict[str, Any] | None:
    record = await state.get(GROUP, KEY)
    return record if isinstance(record, dict) else None


def applies(record: dict[str, Any] | None) -> bool:
    """True while the recorded refusal is about the token file as it is now."""
    return record is not None and record.get("token_stamp") == stamp()


async def record_revoked(state: Any, reason: str) -> bool:
    """Record the refusal of the current token file; True for the call that recorded it (the
    one to log the warning), False when it was recorded already."""
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    fresh = {
        "status": "revoked",
        "since": now,
        "token_file": str(token_file()),
        "token_stamp": stamp(),
        "reason": redact_text(reason),
        "fix": "run `stepline gmail connect` again, then `stepline dlq replay` what failed",
    }

    def keep_first(old: Any) -> Any:
        same = isinstance(old, dict) and old.get("token_stamp") == fresh["token_stamp"]
        return old if same else fresh

    return bool(await state.update(GROUP, KEY, keep_first) == fresh)


async def clear(state: Any) -> bool:
    """Forget the refusal (the grant works again); True when there was one."""
    return bool(await state.delete(GROUP, KEY))


def describe(record: dict[str, Any]) -> str:
    """One line for `/readyz` and `stepline gmail status`."""
    return (
        f"Gmail access revoked or expired since {record.get('since', '?')} (Google answered "
        f"invalid_grant for {record.get('token_file', 'the token file')}): "
        f"{record.get('fix', 'run `stepline gmail connect` again')}"
    )


async def sync(ctx: Any, settings: GmailSettings) -> SyncResult | None:
    """Read the mailbox history (`flow.emit_sync`) unless the grant is known to be refused;
    None when skipped. A refusal is recorded and warned about once; later runs skip with a
    debug line until the token file changes. A sync that works again clears the record."""
    # imported here: the plugin imports this module at start-up, the API client only on use
    from agents.gmail import flow, services

    record = await load(ctx.state)
    if applies(record):
        ctx.logger.debug("Gmail sync skipped: access revoked, waiting for `stepline gmail connect`")
        return None
    try:
        result = await flow.emit_sync(ctx, services.gmail(), settings)
    except GmailAuthRevoked as exc:
        if await record_revoked(ctx.state, str(exc)):
            ctx.logger.warning(f"{exc}; Gmail sync paused until the token file changes")
        return None
    if record is not None and await clear(ctx.state):
        ctx.logger.info("Gmail access works again: sync resumed")
    return result
