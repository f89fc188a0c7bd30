"""Every `GMAIL_*` variable in one pydantic-settings class, so that `.env` works like the
environment (the environment wins where both set a value).

Read on each use, not once at import: `stepline gmail connect` may write a new token file,
and tests point these at loopback fakes. Secrets never come from config/ files.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["GmailEnv", "gmail_env"]


class GmailEnv(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GMAIL_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    credentials_file: Path = Field(
        Path("credentials.json"), description="OAuth client JSON downloaded from Google Cloud."
    )
    token_file: Path = Field(
        Path(".stepline/gmail-token.json"), description="The stored grant (written 0600)."
    )
    webhook_token: SecretStr | None = Field(
        None, description="Bearer token for POST /webhooks/email; unset disables it."
    )
    api_url: str = Field("https://gmail.googleapis.com/", description="Gmail API endpoint.")
    token_uri: str = Field(
        "https://oauth2.googleapis.com/token", description="OAuth token endpoint."
    )
    push_certs_url: str = Field(
        "https://www.googleapis.com/oauth2/v3/certs", description="Keys that sign push tokens."
    )


def gmail_env() -> GmailEnv:
    return GmailEnv()
