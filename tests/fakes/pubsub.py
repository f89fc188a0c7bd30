"""A fake Pub/Sub push: signs OIDC tokens with its own RSA key, publishes the matching JWKS
on a loopback server (as Google does at /oauth2/v3/certs), and POSTs Gmail notices."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.common import FakeRequest, FakeService, Reply

__all__ = ["FakePubSub"]

SERVICE_ACCOUNT = "gmail-push@my-project.iam.gserviceaccount.com"


class FakePubSub(FakeService):
    def __init__(self, kid: str = "fake-key-1") -> None:
        super().__init__()
        self.kid = kid
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self.private_key.public_key()
        self._n = 0
        self.route("GET", r"/oauth2/v3/certs", self.certs)

    def certs(self, req: FakeRequest) -> Reply:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.public_key))
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        return Reply.json({"keys": [jwk]}, headers={"Cache-Control": "public, max-age=3600"})

    def token(
        self,
        audience: str,
        *,
        email: str = SERVICE_ACCOUNT,
        issuer: str = "https://accounts.google.com",
        lifetime: float = 3600,
        key: Any = None,
    ) -> str:
        now = int(time.time())
        claims = {
            "aud": audience,
            "iss": issuer,
            "iat": now,
            "exp": now + int(lifetime),
            "sub": "1234567890",
            "email": email,
            "email_verified": True,
        }
        return jwt.encode(claims, key or self.private_key, "RS256", headers={"kid": self.kid})

    def body(self, email_address: str, history_id: str | int) -> dict[str, Any]:
        self._n += 1
        data = json.dumps({"emailAddress": email_address, "historyId": int(history_id)})
        return {
            "message": {
                "data": base64.b64encode(data.encode()).decode(),
                "messageId": f"pubsub-{self._n}",
                "publishTime": "2024-06-07T10:00:00Z",
            },
            "subscription": "projects/my-project/subscriptions/gmail-push",
        }

    def push(
        self,
        url: str,
        email_address: str,
        history_id: str | int,
        *,
        audience: str,
        body: dict[str, Any] | None = None,
        **token_args: Any,
    ) -> httpx.Response:
        """Deliver one notice the way Pub/Sub does: POST JSON with the OIDC bearer token."""
        headers = {"Authorization": f"Bearer {self.token(audience, **token_args)}"}
        payload = body or self.body(email_address, history_id)
        return httpx.post(url, json=payload, headers=headers, timeout=10)
