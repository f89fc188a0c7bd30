"""Failures of the LLM client; callers catch `LLMError` and use their non-LLM fallback."""

from __future__ import annotations

__all__ = ["LLMError", "LLMUnavailable"]


class LLMError(Exception):
    """The model gave no usable answer (server error after retries, invalid output, budget)."""


class LLMUnavailable(LLMError):
    """No model is configured: set OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)."""
