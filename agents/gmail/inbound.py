"""`POST /webhooks/email`: mail from other sources (or tests) fed into the same flow."""

from __future__ import annotations

import hmac

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["InboundEmail", "bearer_ok"]


class InboundEmail(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    message_id: str = Field(alias="messageId", min_length=1, max_length=500)
    sender: str = Field(alias="from", min_length=3, max_length=500)
    subject: str = Field("", max_length=2_000)
    body: str = Field("", max_length=2_000_000)


def bearer_ok(authorization: str | None, token: str) -> bool:
    """Constant-time check of `Authorization: Bearer <token>`."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(authorization[7:].strip().encode(), token.encode())
