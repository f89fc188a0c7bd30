"""What a client sends, read safely at the edge: JSON bodies parsed with limits, and the trace
id a request may ask for.

Python's JSON parser has traps that turn bad input into a 500 far from where it came in: an
integer of more than 4,300 digits raises a plain `ValueError`, `NaN`/`1e999` become floats
that no JSON encoder will write back, deep nesting hits the recursion limit, and a lone
surrogate (`"\\ud800"`, valid JSON) cannot be encoded to UTF-8, so it fails the database write
of every request that shares its commit. All of them are refused here with a 400 and a reason.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from typing import Any

from pydantic_core import to_json

from app.backends.base import dump_json
from app.state import jsonable
from app.types import new_id

__all__ = [
    "MAX_DEPTH",
    "BadBody",
    "check_text",
    "json_bytes",
    "parse_json",
    "response_json",
    "trace_id_for",
]

MAX_DEPTH = 200
"""Deepest nesting of arrays and objects accepted in a request body (pydantic serialises at
most 255 levels, and an emit wraps the body in a few more)."""

# Only these can produce a lone surrogate or a NUL: an escape, or a surrogate encoded as UTF-8
# bytes (which json.loads decodes with "surrogatepass"); JSON refuses unescaped control
# characters. A body without them needs no walk.
# A surrogate escape not in a pair (emoji arrive as pairs, "\\ud83d\\ude80"), or \\u0000.
# One literal start (\\u), so the search runs at memchr speed on bodies without any.
_RISKY_ESCAPE = re.compile(
    rb"\\u(?:[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2}\\u)[dD][c-fC-F][0-9a-fA-F]{2}|0000)"
)
_RAW_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")
_UNSAFE_CHAR = re.compile("[\x00\ud800-\udfff]")
_ESCAPED = re.compile(rb'\\[\\"]')
_NOT_SKELETON = bytes(c for c in range(256) if c not in b'[]{}"')
_PAIR = re.compile(rb"\[\]|\{\}")
_NOT_PLAIN = frozenset(b"\x00\xef\xfe\xff")  # NUL, or the first byte of a BOM
_TRACE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


class BadBody(json.JSONDecodeError):
    """The request body cannot be accepted; the message says why (answered 400). A kind of
    JSONDecodeError, so a parser's existing `except` for malformed JSON catches it too."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "", 0)
        self.args = (message,)

    def __str__(self) -> str:
        return str(self.msg)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadBody(f"the number {text[:40]} is out of range (JSON numbers are finite)")
    return value


def _constant(name: str) -> Any:
    raise BadBody(f"{name} is not a JSON number (send a finite number or null)")


_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_constant)


def parse_json(raw: bytes | str) -> Any:
    """The JSON value of `raw`, or BadBody naming what is wrong with it."""
    try:
        # As json.loads decodes bytes, with one decoder made once.
        encoding = "utf-8" if isinstance(raw, str) else _encoding(raw)
        text = raw if isinstance(raw, str) else raw.decode(encoding, "surrogatepass")
        value = _DECODER.decode(text)
    except BadBody:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadBody(str(exc)) from None
    except RecursionError:
        raise BadBody(f"it is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        # Python refuses to convert integers of more than 4,300 digits (sys.int_info).
        raise BadBody(f"a number has more than {sys.get_int_max_str_digits()} digits") from None
    # The checks below read UTF-8 bytes (a UTF-16 or -32 body is re-encoded for them).
    data = (
        raw
        if isinstance(raw, bytes) and encoding == "utf-8"
        else text.encode("utf-8", "surrogatepass")
    )
    if _too_deep(data):
        raise BadBody(f"it is nested deeper than {MAX_DEPTH} levels")
    # Two searches with a literal start each: far faster than one alternation.
    if _RISKY_ESCAPE.search(data) or (b"\xed" in data and _RAW_SURROGATE.search(data)):
        check_text(value, "a string")
    return value


def _encoding(raw: bytes) -> str:
    # What json.detect_encoding answers, without its BOM and NUL probes for the usual body:
    # a first byte that starts no BOM and neither of the first two NUL is UTF-8 there too.
    if len(raw) >= 2 and raw[0] not in _NOT_PLAIN and raw[1]:
        return "utf-8"
    return json.detect_encoding(raw)


def _too_deep(data: bytes) -> bool:
    # On valid JSON: drop escaped backslashes and quotes, keep only brackets and quotes, drop
    # strings, then peel innermost pairs; each pass removes one level, all at C speed.
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return False
    if b"\\" in data:
        data = _ESCAPED.sub(b"", data)
    # Outside strings are the even pieces between quotes.
    skeleton = b"".join(data.translate(None, _NOT_SKELETON).split(b'"')[::2])
    for _ in range(MAX_DEPTH):
        skeleton = _PAIR.sub(b"", skeleton)
        if not skeleton:
            return False
    return True


def check_text(value: Any, where: str = "value") -> None:
    """Refuse lone surrogates and NUL characters anywhere in `value` (keys included), and
    nesting deeper than MAX_DEPTH. Iterative, so hostile depth cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_string(item, where)
        elif isinstance(item, dict | list | tuple):
            if depth >= MAX_DEPTH:
                raise BadBody(f"{where} is nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str):
                        _check_string(key, where)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _check_string(text: str, where: str) -> None:
    found = _UNSAFE_CHAR.search(text)
    if found is None:
        return
    char = found.group()
    what = "a NUL character" if char == "\x00" else f"a lone surrogate (\\u{ord(char):04x})"
    raise BadBody(
        f"{where} holds {what}, which cannot be stored as text (send valid "
        "Unicode: surrogates only in pairs, no \\u0000)"
    )


def json_bytes(value: Any, what: str = "the response body") -> bytes:
    """`value` as JSON to send back: NaN or Infinity is refused with an error that says so
    (a handler bug, reported as such), a lone surrogate goes out as its escape."""
    return dump_json(value, what, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "backslashreplace"
    )


def response_json(value: Any) -> bytes:
    """`json_bytes(jsonable(value, "response body"))` in one pass through pydantic-core's
    encoder (the same conversions of models, dataclasses and dates; compact, UTF-8); what
    it would write differently (NaN or Infinity, which are refused, and lone surrogates,
    escaped) or cannot write goes the standard way, with its errors."""
    try:
        out = to_json(value)
    except Exception:
        return json_bytes(jsonable(value, "response body"))
    if b"NaN" in out or b"Infinity" in out:
        return json_bytes(jsonable(value, "response body"))
    return out


def trace_id_for(headers: Mapping[str, str], *, dev: bool) -> str:
    """The trace id of an incoming request. A W3C `traceparent` continues the caller's trace
    (its trace id, a new span of ours). A bare `x-trace-id` is honoured only in `dev`, where
    it helps to pick one by hand; elsewhere it would let any client attach spans to someone
    else's trace."""
    parent = _TRACEPARENT.fullmatch(headers.get("traceparent", "").strip().lower())
    if parent is not None and parent.group(1) != "0" * 32 and parent.group(2) != "0" * 16:
        return parent.group(1)
    if dev and _TRACE_ID.fullmatch(given := headers.get("x-trace-id", "")):
        return given
    return new_id()
