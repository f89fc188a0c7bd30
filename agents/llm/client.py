"""Structured output from any OpenAI-compatible chat server, within a token budget.

Retries on 5xx/timeouts are the `openai` client's own (exponential backoff); a 429 that says
when to come back (`Retry-After`) is the runtime's: the call raises `LLMRateLimited`, a
`Retry(delay)`, instead of sleeping in the handler (see agents/llm/ratelimit.py). This module
adds the budget, the schema, one corrective retry for invalid output, usage accounting, and
errors that say what to fix without ever quoting the key.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from agents.llm.errors import LLMError, LLMUnavailable
from agents.llm.ratelimit import LLMRateLimited, paced_client_class, retry_after
from agents.llm.settings import LLMSettings, ResponseFormat
from agents.llm.state import StateLike
from agents.llm.tokens import count_tokens, trim_to_tokens
from agents.llm.usage import Usage, record_usage

if TYPE_CHECKING:
    import openai

__all__ = ["LLMClient"]

T = TypeVar("T", bound=BaseModel)

logger = logging.getLogger("agents.llm")

# Chat formats add a few tokens of framing per message.
_MESSAGE_OVERHEAD = 8
# How much of an invalid reply the corrective retry shows the model again (at most, and the
# least worth showing at all).
_ECHO_TOKENS = 1_000
_MIN_ECHO_TOKENS = 40
_SCHEMA_NOTE = "\n\nReply with only a JSON object that matches this JSON schema:\n"
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
_DOWNGRADE: dict[ResponseFormat, ResponseFormat] = {
    "json_schema": "json_object",
    "json_object": "prompt",
}
_unconfigured_reported = False


class LLMClient:
    """One client per process is enough; it is safe to share between concurrent handlers."""

    def __init__(self, settings: LLMSettings | None = None) -> None:
        self.settings = settings if settings is not None else LLMSettings()
        # Lowered for good when a server rejects a format, so later calls skip the failed try.
        self._format: ResponseFormat = self.settings.response_format
        self._openai: openai.AsyncOpenAI | None = None

    @classmethod
    def from_env(cls) -> LLMClient:
        """Client from OPENAI_* / LLM_* variables; says once per process when none is set."""
        global _unconfigured_reported
        client = cls(LLMSettings())
        if not client.configured and not _unconfigured_reported:
            _unconfigured_reported = True
            logger.warning(
                "LLM not configured (set OPENAI_API_KEY, or OPENAI_BASE_URL for a local "
                "server): flows use their built-in rules instead"
            )
        return client

    @property
    def configured(self) -> bool:
        return self.settings.configured

    def count_tokens(self, text: str) -> int:
        return count_tokens(text)

    def prompt_room(self, system: str, schema: type[BaseModel], budget: int) -> int:
        """Tokens left for the user prompt of one call within `budget` (the system prompt,
        the schema and the chat framing already taken off)."""
        # The schema costs about the same wherever it goes (response_format or the
        # instructions), so the room does not change when a server makes us step down.
        fixed = count_tokens(system) + count_tokens(_SCHEMA_NOTE + _schema_text(schema))
        return budget - fixed - 2 * _MESSAGE_OVERHEAD

    def _estimate(self, messages: list[dict[str, str]], schema: type[BaseModel]) -> int:
        """Our estimate of the `usage.prompt_tokens` the server will report for `messages`."""
        total = sum(count_tokens(m["content"]) + _MESSAGE_OVERHEAD for m in messages)
        if self._format == "json_schema":
            total += count_tokens(_schema_text(schema))  # the server counts its schema too
        return total

    def trim(self, text: str, max_tokens: int) -> str:
        return trim_to_tokens(text, max_tokens)

    async def aclose(self) -> None:
        if self._openai is not None:
            await self._openai.close()
            self._openai = None

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def structured(
        self,
        *,
        system: str,
        prompt: str,
        schema: type[T],
        max_input_tokens: int | None = None,
        state: StateLike | None = None,
        trim: bool = True,
    ) -> T:
        """Ask for a `schema` instance; `prompt` is trimmed to fit the budget first.

        With `trim=False` a prompt over the budget is an `LLMError` instead: callers that
        planned their prompts with `prompt_room` must not lose part of them silently.
        Raises `LLMUnavailable` when no server is configured and `LLMError` when no valid
        answer came back (server failure after retries, or invalid output twice).
        """
        if not self.configured:
            raise LLMUnavailable(
                "LLM not configured: set OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)"
            )
        budget = max_input_tokens or self.settings.max_input_tokens
        messages = self._messages(system, prompt, schema, budget, trim)
        content = await self._complete(messages, schema, state)
        try:
            return _parse(content, schema)
        except (ValidationError, ValueError) as exc:
            reason = _short_reason(exc)
        logger.info("llm output did not match %s, asking once more: %s", schema.__name__, reason)
        messages += self._correction(messages, content, reason, schema, budget, planned=not trim)
        content = await self._complete(messages, schema, state)
        try:
            return _parse(content, schema)
        except (ValidationError, ValueError) as exc:
            raise LLMError(
                f"the model's output did not match {schema.__name__} after a corrective retry: "
                f"{_short_reason(exc)}"
            ) from None

    def _correction(
        self,
        messages: list[dict[str, str]],
        reply: str,
        reason: str,
        schema: type[BaseModel],
        budget: int,
        planned: bool,
    ) -> list[dict[str, str]]:
        """What the corrective retry adds: the invalid reply (cut) and what was wrong with it.

        A `planned` call (`trim=False`) was sized to its budget by the caller, so its retry
        stays inside that budget too: the reply is cut to the room left, or left out, and
        when not even the note fits the same request is simply sent again."""
        note = {
            "role": "user",
            "content": f"That reply was not valid: {reason}. Reply again with only a "
            "JSON object that matches the schema.",
        }
        cap = _ECHO_TOKENS
        if planned:
            # Room for the reply shown again, once its own message framing is paid.
            left = budget - self._estimate([*messages, note], schema) - _MESSAGE_OVERHEAD
            if left < _MIN_ECHO_TOKENS:
                return [note] if left + _MESSAGE_OVERHEAD >= 0 else []
            cap = min(cap, left)
        return [{"role": "assistant", "content": trim_to_tokens(reply, cap)}, note]

    def _system(self, system: str, schema: type[BaseModel]) -> str:
        if self._format == "json_schema":
            return system
        # Without server-side schemas the model learns the shape from the instructions.
        return f"{system}{_SCHEMA_NOTE}{_schema_text(schema)}"

    def _messages(
        self, system: str, prompt: str, schema: type[BaseModel], budget: int, trim: bool = True
    ) -> list[dict[str, str]]:
        room = self.prompt_room(system, schema, budget)
        system = self._system(system, schema)
        if room < 1:
            raise LLMError(
                f"the system prompt alone exceeds the input budget of {budget} tokens: "
                "raise LLM_MAX_INPUT_TOKENS or shorten the instructions"
            )
        if not trim and count_tokens(prompt) > room:
            raise LLMError(
                f"the prompt needs {count_tokens(prompt)} tokens but only {room} of the budget "
                f"of {budget} are left: the caller's plan is wrong (nothing was sent)"
            )
        trimmed = trim_to_tokens(prompt, room)
        if trimmed is not prompt:
            logger.info(
                "llm prompt trimmed from %d to %d tokens to fit the budget of %d",
                count_tokens(prompt),
                count_tokens(trimmed),
                budget,
            )
        return [{"role": "system", "content": system}, {"role": "user", "content": trimmed}]

    async def _complete(
        self, messages: list[dict[str, str]], schema: type[BaseModel], state: StateLike | None
    ) -> str:
        # The openai package is large; it is imported on the first call, not when steps load.
        import openai

        while True:
            estimate = self._estimate(messages, schema)
            sent_format = self._format
            started = time.perf_counter()
            try:
                completion = await self._client().chat.completions.create(
                    model=self.settings.model,
                    messages=messages,  # type: ignore[arg-type]
                    **self._format_args(schema),
                )
            except openai.BadRequestError as exc:
                if sent_format in _DOWNGRADE and _about_response_format(exc):
                    # Concurrent calls learn of the same refusal: only the first steps down,
                    # the others retry with the format it chose.
                    if self._format == sent_format:
                        logger.warning(
                            "llm server rejected response_format %s; using %s from now on",
                            sent_format,
                            _DOWNGRADE[sent_format],
                        )
                        self._format = _DOWNGRADE[sent_format]
                    messages = self._with_schema_instructions(messages, schema)
                    continue
                await self._record_failure(started, state)
                raise self._error(exc) from None
            except openai.RateLimitError as exc:
                await self._record_failure(started, state)
                wait = retry_after(exc.response.headers)
                if wait is None:
                    raise self._error(exc) from None
                where = _safe_url(self.settings.base_url or "https://api.openai.com/v1")
                reason = f"the LLM server at {where} answered 429: retry in {wait:g} s"
                raise LLMRateLimited(wait, reason) from None
            except openai.OpenAIError as exc:
                await self._record_failure(started, state)
                raise self._error(exc) from None
            latency_ms = (time.perf_counter() - started) * 1000
            usage = completion.usage
            await record_usage(
                Usage(
                    model=completion.model or self.settings.model,
                    prompt_tokens=usage.prompt_tokens if usage else 0,
                    completion_tokens=usage.completion_tokens if usage else 0,
                    latency_ms=latency_ms,
                    estimated_prompt_tokens=estimate,
                ),
                state,
            )
            if not completion.choices:
                raise LLMError("the LLM server answered with no choices")
            message = completion.choices[0].message
            if getattr(message, "refusal", None):
                raise LLMError(f"the model refused: {message.refusal}")
            return message.content or ""

    def _format_args(self, schema: type[BaseModel]) -> dict[str, Any]:
        if self._format == "json_schema":
            name = re.sub(r"[^A-Za-z0-9_-]", "_", schema.__name__)[:64]
            return {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": name, "schema": schema.model_json_schema()},
                }
            }
        if self._format == "json_object":
            return {"response_format": {"type": "json_object"}}
        return {}

    def _with_schema_instructions(
        self, messages: list[dict[str, str]], schema: type[BaseModel]
    ) -> list[dict[str, str]]:
        system = messages[0]["content"]
        if "matches this JSON schema" in system:
            return messages
        system += f"{_SCHEMA_NOTE}{_schema_text(schema)}"
        return [{"role": "system", "content": system}, *messages[1:]]

    def _client(self) -> openai.AsyncOpenAI:
        if self._openai is None:
            key = self.settings.api_key
            self._openai = paced_client_class()(
                # Local servers ignore the key, but the client insists on having one.
                api_key=key.get_secret_value() if key else "not-needed",
                base_url=self.settings.base_url or None,
                timeout=self.settings.timeout,
                max_retries=self.settings.max_retries,
            )
        return self._openai

    async def _record_failure(self, started: float, state: StateLike | None) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        await record_usage(Usage(self.settings.model, 0, 0, latency_ms, ok=False), state)

    def _error(self, exc: openai.OpenAIError) -> LLMError:
        import openai

        where = _safe_url(self.settings.base_url or "https://api.openai.com/v1")
        retries = self.settings.max_retries
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            # The server's own text may echo part of the key, so it is left out.
            return LLMError(
                f"the LLM server at {where} rejected the credentials ({exc.status_code}): "
                "check OPENAI_API_KEY"
            )
        if isinstance(exc, openai.NotFoundError):
            return LLMError(
                f"model or endpoint not found at {where}: check OPENAI_MODEL "
                f"({self.settings.model}) and OPENAI_BASE_URL"
            )
        if isinstance(exc, openai.APIStatusError):
            return LLMError(
                f"the LLM server at {where} answered {exc.status_code} "
                f"(after up to {retries} retries): {self._scrub(exc.message)}"
            )
        if isinstance(exc, openai.APITimeoutError):
            return LLMError(
                f"the LLM server at {where} did not answer within {self.settings.timeout:g}s "
                f"(after up to {retries} retries): raise LLM_TIMEOUT or check the server"
            )
        if isinstance(exc, openai.APIConnectionError):
            return LLMError(f"could not reach the LLM server at {where}: check OPENAI_BASE_URL")
        return LLMError(f"LLM call failed: {type(exc).__name__}: {self._scrub(str(exc))}")

    def _scrub(self, text: str) -> str:
        key = self.settings.api_key.get_secret_value() if self.settings.api_key else ""
        text = text.replace(key, "***") if key else text
        return text[:300]


def _schema_text(schema: type[BaseModel]) -> str:
    return json.dumps(schema.model_json_schema(), separators=(",", ":"))


def _parse(content: str, schema: type[T]) -> T:
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    if not text:
        raise ValueError("the reply was empty")
    return schema.model_validate_json(text)


def _short_reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or 'reply'}: {err['msg']}"
            for err in exc.errors()[:5]
        ]
        return "; ".join(parts)
    return str(exc)[:300]


def _about_response_format(exc: openai.BadRequestError) -> bool:
    text = f"{exc.message} {exc.body}".lower()
    return "response_format" in text or "json_schema" in text


def _safe_url(url: str) -> str:
    """`url` without any user:password part."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host).geturl()
