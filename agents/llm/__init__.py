"""The LLM client both flows share: structured output into pydantic models, within a budget.

A caller builds one `LLMClient.from_env()`, awaits `structured(system=, prompt=, schema=,
state=ctx.state)` and, on `LLMError` (which includes `LLMUnavailable`: nothing configured),
falls back to its rule-based path. A 429 with Retry-After raises `LLMRateLimited` (the
runtime's `Retry(delay)`, not an `LLMError`): let it through, the delivery runs again then.
"""

from typing import TYPE_CHECKING

from agents.common.lazy import lazy_exports

if TYPE_CHECKING:
    from agents.llm.client import LLMClient
    from agents.llm.errors import LLMError, LLMUnavailable
    from agents.llm.ratelimit import LLMRateLimited
    from agents.llm.settings import LLMSettings
    from agents.llm.state import StateLike
    from agents.llm.tokens import count_tokens, trim_to_tokens
    from agents.llm.usage import USAGE_GROUP

__all__ = [
    "USAGE_GROUP",
    "LLMClient",
    "LLMError",
    "LLMRateLimited",
    "LLMSettings",
    "LLMUnavailable",
    "StateLike",
    "count_tokens",
    "trim_to_tokens",
]

# Imported when first used: see agents/common/lazy.py.
__getattr__ = lazy_exports(
    __name__,
    {
        "LLMClient": "agents.llm.client",
        "LLMError": "agents.llm.errors",
        "LLMRateLimited": "agents.llm.ratelimit",
        "LLMSettings": "agents.llm.settings",
        "LLMUnavailable": "agents.llm.errors",
        "StateLike": "agents.llm.state",
        "USAGE_GROUP": "agents.llm.usage",
        "count_tokens": "agents.llm.tokens",
        "trim_to_tokens": "agents.llm.tokens",
    },
)
