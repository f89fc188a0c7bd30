"""The request an API handler receives and the response it may return."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import Headers

__all__ = ["Request", "Response"]


@dataclass(slots=True)
class Request:
    """An HTTP request as an API step sees it. `headers` is case-insensitive."""

    method: str
    path: str
    path_params: dict[str, str]
    query: dict[str, str]
    headers: Headers
    raw: bytes
    body: Any = None


@dataclass(slots=True)
class Response:
    """What an API handler may return instead of `{"status", "body", "headers"}`."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
