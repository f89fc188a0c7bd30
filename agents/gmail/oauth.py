"""Connect a Gmail account (OAuth installed-app flow) and keep its token usable.

The token file holds a refresh token, which is as good as the mailbox password: it is written
with owner-only permissions (0600), atomically, and never logged.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.gmail.env import gmail_env
from agents.gmail.errors import GmailAuthRevoked, GmailError, GmailNotConnected

if TYPE_CHECKING:
    from google.oauth2.credentials import Credentials
    from google_auth_oauthlib.flow import InstalledAppFlow

__all__ = [
    "SCOPE_FULL",
    "SCOPE_MODIFY",
    "connect",
    "credentials_file",
    "has_full_scope",
    "load_credentials",
    "revoked_message",
    "save_token",
    "scopes_for",
    "token_file",
    "token_uri",
]

SCOPE_MODIFY = "https://www.googleapis.com/auth/gmail.modify"
# Only this scope permits permanent deletion; asked for only when cleanup.delete is true.
SCOPE_FULL = "https://mail.google.com/"


def credentials_file() -> Path:
    """The OAuth client file downloaded from Google Cloud (`GMAIL_CREDENTIALS_FILE`)."""
    return gmail_env().credentials_file.expanduser()


def token_file() -> Path:
    """Where the grant is stored (`GMAIL_TOKEN_FILE`, default `.stepline/gmail-token.json`)."""
    return gmail_env().token_file.expanduser()


def token_uri() -> str:
    """Google's OAuth token endpoint, or `GMAIL_TOKEN_URI` when set."""
    return gmail_env().token_uri


def scopes_for(full: bool) -> list[str]:
    return [SCOPE_FULL] if full else [SCOPE_MODIFY]


def has_full_scope(creds: Credentials) -> bool:
    granted = set(getattr(creds, "granted_scopes", None) or creds.scopes or [])
    return SCOPE_FULL in granted


def revoked_message(path: Path) -> str:
    return (
        "Gmail access was revoked or has expired (Google refused the stored refresh token): "
        f"run `stepline gmail connect` again to renew {path}, then `stepline dlq replay` "
        "the mail deliveries dead-lettered meanwhile"
    )


def save_token(creds: Credentials, path: Path) -> None:
    """Write the token atomically with mode 0600 (directory 0700 when we create it)."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".gmail-token-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(creds.to_json())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_credentials(path: Path | None = None, *, request: Any = None) -> Credentials:
    """Credentials from the token file, refreshed (and saved) when expired.

    Raises GmailNotConnected when there is no token and GmailAuthRevoked when Google refuses
    the refresh token.
    """
    path = path or token_file()
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GmailNotConnected(
            f"Gmail is not connected ({path} does not exist): run `stepline gmail connect`"
        ) from None
    except (OSError, ValueError) as exc:
        raise GmailError(
            f"cannot read the Gmail token {path} ({exc.__class__.__name__}): "
            "run `stepline gmail connect` again"
        ) from None
    # google-auth is imported here, not at module load: steps load without a mailbox.
    from google.oauth2.credentials import Credentials

    try:
        creds = Credentials.from_authorized_user_info(info)
    except ValueError as exc:
        raise GmailError(f"the Gmail token {path} is incomplete ({exc}); connect again") from None
    # google-auth ignores a token_uri stored in the file; the env var lets tests and
    # proxies point refreshes elsewhere.
    expiry = creds.expiry
    creds = creds.with_token_uri(token_uri())
    creds.expiry = expiry  # the copy drops it, which would make an expired token look valid
    if not creds.valid:
        refresh(creds, path, request=request)
    return creds


def refresh(creds: Credentials, path: Path, *, request: Any = None) -> None:
    from google.auth.exceptions import RefreshError
    from google.auth.transport.requests import Request

    if not creds.refresh_token:
        raise GmailAuthRevoked(revoked_message(path))
    try:
        creds.refresh(request or Request())
    except RefreshError:
        raise GmailAuthRevoked(revoked_message(path)) from None
    save_token(creds, path)


@cache
def _flow_class() -> type[InstalledAppFlow]:
    """The flow class, built on first use: google_auth_oauthlib is only needed to connect."""
    from google_auth_oauthlib.flow import InstalledAppFlow

    class _Flow(InstalledAppFlow):
        """Hands the consent URL to a callback, so a headless server can print it."""

        on_url: Callable[[str], None] | None = None

        def authorization_url(self, **kwargs: Any) -> tuple[str, str]:
            url, state = super().authorization_url(**kwargs)
            if self.on_url is not None:
                self.on_url(url)
            return url, state

    return _Flow


def connect(
    *,
    client_file: Path | None = None,
    token_path: Path | None = None,
    full_scope: bool = False,
    host: str = "localhost",
    port: int = 0,
    open_browser: bool = False,
    on_url: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> Credentials:
    """Run the installed-app flow and store the token; returns the new credentials."""
    client_file = client_file or credentials_file()
    token_path = token_path or token_file()
    if not client_file.is_file():
        raise GmailError(
            f"OAuth client file {client_file} not found: create a Desktop OAuth client in Google "
            "Cloud, download its JSON and set GMAIL_CREDENTIALS_FILE to its path"
        )
    try:
        flow = _flow_class().from_client_secrets_file(
            str(client_file), scopes=scopes_for(full_scope)
        )
    except ValueError as exc:
        raise GmailError(f"{client_file} is not an OAuth client file: {exc}") from None
    flow.on_url = on_url
    creds = flow.run_local_server(
        host=host,
        port=port,
        open_browser=open_browser,
        authorization_prompt_message="" if on_url else "Open this URL to allow access:\n{url}",
        success_message="Stepline is connected to Gmail. You can close this tab.",
        timeout_seconds=timeout,
        access_type="offline",
        prompt="consent",
    )
    save_token(creds, token_path)
    return creds
