"""A loopback stand-in for the OpenAI chat completions API (`POST /v1/chat/completions`).

Answers in the real response shape (`choices[0].message.content`, `usage`, `model`) with the
real error bodies (`{"error": {"message", "type", "param", "code"}}`). The reply content is
taken from `queue_replies(...)` when a test scripted one; otherwise, for a `json_schema`
response format, the fake builds an instance of the requested schema, as a real server would.
`usage.prompt_tokens` is counted with gpt-4o's real tokenizer (o200k_base), as OpenAI does.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from tests.fakes.common import FakeRequest, FakeService, Reply

__all__ = ["FakeOpenAI", "prompt_token_count", "real_token_count", "sample_from_schema"]

_ids = itertools.count(1)


def _error(
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return Reply.json(body, status=status, headers=headers)


class FakeOpenAI(FakeService):
    """Clients use `base_url=f"{server_url}/v1"` and `api_key=fake.api_key`."""

    def __init__(self, api_key: str = "sk-test-fake-key", *, supports_json_schema: bool = True):
        super().__init__()
        self.api_key = api_key
        self.supports_json_schema = supports_json_schema
        self._replies: list[str] = []
        self.route("POST", r"/v1/chat/completions", self.chat_completions)
        self.route("GET", r"/v1/models", self.models)

    # -- scripting -------------------------------------------------------------------------

    def queue_replies(self, *contents: str) -> None:
        """The next completions answer with these message contents, in order."""
        with self.lock:
            self._replies.extend(contents)

    @staticmethod
    def rate_limited(retry_after: str = "1") -> Reply:
        return _error(
            429,
            "Rate limit reached for requests. Please try again later.",
            "requests",
            code="rate_limit_exceeded",
            headers={"Retry-After": retry_after},
        )

    @staticmethod
    def server_error() -> Reply:
        return _error(500, "The server had an error while processing your request.", "server_error")

    def completion_requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of every chat completion request received so far."""
        return [r.json() for r in self.calls(r"/v1/chat/completions", "POST")]

    # -- endpoints -------------------------------------------------------------------------

    def not_found(self, req: FakeRequest) -> Reply:
        return _error(404, f"Invalid URL ({req.method} {req.path})", "invalid_request_error")

    def _unauthorized(self, req: FakeRequest) -> Reply | None:
        if req.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        # Like the real API, echo a masked hint of the key that was sent.
        sent = req.headers.get("authorization", "").removeprefix("Bearer ")
        hint = f"{sent[:3]}***{sent[-4:]}" if len(sent) > 8 else "***"
        return _error(
            401,
            f"Incorrect API key provided: {hint}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            code="invalid_api_key",
        )

    def models(self, req: FakeRequest) -> Reply:
        denied = self._unauthorized(req)
        if denied:
            return denied
        return Reply.json({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})

    def chat_completions(self, req: FakeRequest) -> Reply:
        denied = self._unauthorized(req)
        if denied:
            return denied
        try:
            body = req.json()
        except ValueError:
            return _error(
                400, "We could not parse the JSON body of your request.", "invalid_request_error"
            )
        if not body.get("model"):
            return _error(
                400, "you must provide a model parameter", "invalid_request_error", param="model"
            )
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(
                400,
                "'messages' must be a non-empty array",
                "invalid_request_error",
                param="messages",
            )
        fmt = body.get("response_format") or {"type": "text"}
        if fmt.get("type") == "json_schema" and not self.supports_json_schema:
            return _error(
                400,
                "response_format 'json_schema' is not supported by this model",
                "invalid_request_error",
                param="response_format",
            )
        content = self._next_content(fmt)
        prompt_tokens = prompt_token_count(messages, fmt)
        completion_tokens = real_token_count(content)
        return Reply.json(
            {
                "id": f"chatcmpl-fake{next(_ids)}",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
            headers={"x-request-id": f"req_{next(_ids)}"},
        )

    def _next_content(self, fmt: dict[str, Any]) -> str:
        with self.lock:
            if self._replies:
                return self._replies.pop(0)
        if fmt.get("type") == "json_schema":
            schema = fmt.get("json_schema", {}).get("schema", {})
            return json.dumps(sample_from_schema(schema, schema))
        if fmt.get("type") == "json_object":
            return "{}"
        return "Hello from the fake model."


def real_token_count(text: str) -> int:
    """What o200k_base (gpt-4o's tokenizer) makes of `text`; quicktok ships its vocabulary."""
    import quicktok

    return int(quicktok.get_encoding("o200k_base").count(text))


def prompt_token_count(messages: list[dict[str, Any]], fmt: dict[str, Any]) -> int:
    """`usage.prompt_tokens` as OpenAI counts it: each message's content plus 3 tokens of
    framing per message and 3 to prime the reply; a `json_schema` format's schema counts too."""
    tokens = 3 + sum(3 + real_token_count(str(m.get("content") or "")) for m in messages)
    if fmt.get("type") == "json_schema":
        schema = fmt.get("json_schema", {}).get("schema", {})
        tokens += real_token_count(json.dumps(schema, separators=(",", ":")))
    return tokens


def sample_from_schema(node: dict[str, Any], root: dict[str, Any]) -> Any:
    """A minimal value that satisfies `node` (enough of JSON Schema for pydantic's output)."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return sample_from_schema(root.get("$defs", {}).get(name, {}), root)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return node["enum"][0]
    if "default" in node:
        return node["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            options = [o for o in node[key] if o.get("type") != "null"] or node[key]
            return sample_from_schema(options[0], root)
    kind = node.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = node.get("properties", {})
        return {name: sample_from_schema(sub, root) for name, sub in props.items()}
    if kind == "array":
        count = node.get("minItems", 0)
        return [sample_from_schema(node.get("items", {}), root) for _ in range(count)]
    if kind == "string":
        return "x" * max(node.get("minLength", 0), 1)
    if kind == "integer":
        return int(node.get("minimum", 0))
    if kind == "number":
        return float(node.get("minimum", 0))
    if kind == "boolean":
        return False
    return None
