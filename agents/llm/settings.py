"""LLM settings from the environment (secrets never come from config/ files)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LLMSettings", "ResponseFormat"]

# json_schema: the server enforces the schema (OpenAI, vLLM, recent Ollama);
# json_object: the server only guarantees JSON, the schema goes into the instructions;
# prompt: plain text mode with instructions, for servers that support neither.
ResponseFormat = Literal["json_schema", "json_object", "prompt"]


class LLMSettings(BaseSettings):
    """Which OpenAI-compatible server to call and how hard to try."""

    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", populate_by_name=True
    )

    api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    base_url: str | None = Field(
        None,
        validation_alias="OPENAI_BASE_URL",
        description="Any OpenAI-compatible endpoint, e.g. http://localhost:11434/v1 for Ollama.",
    )
    model: str = Field("gpt-4o-mini", validation_alias="OPENAI_MODEL")
    max_input_tokens: int = Field(
        12_000,
        gt=0,
        validation_alias="LLM_MAX_INPUT_TOKENS",
        description="Prompt budget; longer input is trimmed before it is sent.",
    )
    timeout: float = Field(60.0, gt=0, validation_alias="LLM_TIMEOUT", description="Seconds.")
    max_retries: int = Field(
        3, ge=0, validation_alias="LLM_MAX_RETRIES", description="Retries on 429/5xx/timeouts."
    )
    response_format: ResponseFormat = Field("json_schema", validation_alias="LLM_RESPONSE_FORMAT")

    @property
    def configured(self) -> bool:
        # A local server (Ollama, vLLM) needs no key, so a base URL alone is enough.
        has_key = self.api_key is not None and bool(self.api_key.get_secret_value())
        return has_key or bool(self.base_url)
