"""Notification providers' settings, from the environment only (they hold secrets)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["NotifySettings"]


class NotifySettings(BaseSettings):
    """Each provider is on when its required variables are set; several may be on at once."""

    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", populate_by_name=True
    )

    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias="SLACK_API_URL")
    slack_default_channel: str | None = Field(None, validation_alias="SLACK_DEFAULT_CHANNEL")
    slack_rate_limit_retries: int = Field(
        3, ge=0, validation_alias="SLACK_RATE_LIMIT_RETRIES", description="Retries after a 429."
    )

    ntfy_url: str = Field("https://ntfy.sh", validation_alias="NTFY_URL")
    ntfy_topic: str | None = Field(None, validation_alias="NTFY_TOPIC")
    ntfy_token: SecretStr | None = Field(None, validation_alias="NTFY_TOKEN")

    pushover_token: SecretStr | None = Field(None, validation_alias="PUSHOVER_TOKEN")
    pushover_user: SecretStr | None = Field(None, validation_alias="PUSHOVER_USER")
    pushover_api_url: str = Field("https://api.pushover.net", validation_alias="PUSHOVER_API_URL")

    # The URL itself is often the credential (chat webhooks embed a token in the path).
    push_webhook_url: SecretStr | None = Field(None, validation_alias="PUSH_WEBHOOK_URL")
    push_webhook_secret: SecretStr | None = Field(None, validation_alias="PUSH_WEBHOOK_SECRET")

    timeout: float = Field(10.0, gt=0, validation_alias="NOTIFY_TIMEOUT", description="Seconds.")
    http_retries: int = Field(
        2, ge=0, validation_alias="NOTIFY_HTTP_RETRIES", description="Push retries on 429/5xx."
    )
    thread_ttl: float = Field(
        30 * 24 * 3600,
        gt=0,
        validation_alias="NOTIFY_THREAD_TTL",
        description="Seconds a Slack thread is remembered for follow-ups.",
    )

    @property
    def slack_on(self) -> bool:
        return _set(self.slack_bot_token)

    @property
    def ntfy_on(self) -> bool:
        return bool(self.ntfy_topic)

    @property
    def pushover_on(self) -> bool:
        return _set(self.pushover_token) and _set(self.pushover_user)

    @property
    def webhook_on(self) -> bool:
        return _set(self.push_webhook_url)


def _set(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value())
