"""Pub/Sub push for Gmail: verify the OIDC token Google attaches, then read the notice.

A push subscription with authentication sends `Authorization: Bearer <JWT>` signed by Google.
We check signature, issuer, expiry, the audience configured for the subscription and,
optionally, the service account's email. The keys come from a `KeySource`, by default
Google's published JWKS (`GMAIL_PUSH_CERTS_URL` overrides the address), so tests can sign
with their own key and never reach Google.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Protocol

from agents.gmail.env import gmail_env
from agents.gmail.errors import PushRejected

__all__ = [
    "GOOGLE_CERTS_URL",
    "JWKSKeys",
    "KeySource",
    "PushNotice",
    "StaticKeys",
    "certs_url",
    "parse_push",
    "verify_push_token",
]

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"
_ISSUERS = ("accounts.google.com", "https://accounts.google.com")


class KeySource(Protocol):
    def key_for(self, token: str) -> Any:
        """The public key that should have signed `token` (chosen by its `kid`)."""


class StaticKeys:
    """Fixed public keys by `kid`, for tests and air-gapped set-ups."""

    def __init__(self, keys: dict[str, Any]) -> None:
        self.keys = keys

    def key_for(self, token: str) -> Any:
        import jwt

        kid = jwt.get_unverified_header(token).get("kid", "")
        if kid not in self.keys:
            raise PushRejected("push token signed with an unknown key")
        return self.keys[kid]


class JWKSKeys:
    """Keys fetched from a JWKS URL and cached (Google rotates them every few days)."""

    def __init__(self, url: str, lifespan: float = 3600.0) -> None:
        import jwt

        self.url = url
        self._client = jwt.PyJWKClient(url, cache_keys=True, lifespan=int(lifespan), timeout=10)

    def key_for(self, token: str) -> Any:
        import jwt

        try:
            return self._client.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientError as exc:
            raise PushRejected(f"cannot get the push signing key from {self.url}: {exc}") from None


def certs_url() -> str:
    return gmail_env().push_certs_url or GOOGLE_CERTS_URL


def verify_push_token(
    authorization: str | None,
    *,
    audience: str,
    keys: KeySource,
    service_account: str = "",
    leeway: float = 30.0,
) -> dict[str, Any]:
    """The token's claims; raises PushRejected with a reason that quotes no token text."""
    if not audience:
        raise PushRejected("push.audience is not set in config/gmail.yaml; pushes are refused")
    if not authorization or not authorization.lower().startswith("bearer "):
        raise PushRejected("push request without a Bearer token")
    token = authorization[7:].strip()
    # PyJWT (and the cryptography it loads) is imported on the first push, not at step load.
    import jwt

    try:
        key = keys.key_for(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=["RS256"],
            audience=audience,
            issuer=_ISSUERS,
            leeway=leeway,
            options={"require": ["exp", "iat", "iss", "aud"]},
        )
    except jwt.InvalidAudienceError:
        raise PushRejected("push token is for another audience") from None
    except jwt.ExpiredSignatureError:
        raise PushRejected("push token has expired") from None
    except jwt.InvalidIssuerError:
        raise PushRejected("push token was not issued by Google") from None
    except jwt.PyJWTError as exc:
        raise PushRejected(f"push token is invalid ({exc.__class__.__name__})") from None
    verified = claims.get("email") == service_account and claims.get("email_verified", False)
    if service_account and not verified:
        raise PushRejected("push token belongs to another service account")
    return claims


@dataclass(frozen=True)
class PushNotice:
    email: str
    history_id: str
    message_id: str


def parse_push(body: Any) -> PushNotice:
    """Read `{"message": {"data": base64(json), "messageId"}}` as Gmail publishes it."""
    try:
        message = body["message"]
        data = json.loads(base64.b64decode(message["data"]))
        return PushNotice(
            email=str(data["emailAddress"]),
            history_id=str(data["historyId"]),
            message_id=str(message.get("messageId") or message.get("message_id") or ""),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a Gmail Pub/Sub push body ({exc.__class__.__name__})") from None
