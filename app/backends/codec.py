"""JSON on the SQLite backend's hot path, through pydantic-core's Rust codec.

Every delivery's payload is encoded once when its emit is stored and decoded once when it is
claimed, and every commit encodes its spans (app/backends/sqlite_spans.py). With the standard
library that was 3 encodes and 3 decodes per 3-step chain at 1-2 µs each (each `encode` call
builds a new C encoder), plus the span floats' `repr`; pydantic-core (already a dependency,
through pydantic) does the same in a fraction of that. The stored text is standard JSON either
way, so rows written by earlier versions read back the same.

What the standard path guarantees is kept by falling back to it: NaN and Infinity are refused
with `dump_json`'s error (pydantic-core would write them as bare constants), and text SQLite
cannot store (a lone surrogate) is encoded as `json.dumps` does it, as an escape, which
`json.loads` reads back; an integer longer than Python reads back from text (4,300 digits by
default), which pydantic-core writes, is refused as `json.dumps` refuses it: stored, it would
fail every claim of its step.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from pydantic_core import from_json, to_json

from app.backends.base import dump_json

__all__ = ["dump_payload", "dump_records", "encode", "load"]

_N, _I = ord("N"), ord("I")  # the first letters of NaN and Infinity as pydantic-core writes them


def load(text: str) -> Any:
    """`json.loads(text)` for text this backend wrote."""
    try:
        return from_json(text)
    except ValueError:  # the escape of a lone surrogate, which pydantic-core refuses to read
        return json.loads(text)


def encode(value: Any) -> str | None:
    """`value` (JSON data, or what pydantic-core serialises: models, dataclasses, datetimes,
    enums, sets, bytes, Decimal, UUID) as compact JSON text, or None where the standard path
    must decide: a lone surrogate, NaN or Infinity, an integer too long to read back, a type
    JSON cannot carry. An emit encodes its data here once, and the store writes the text."""
    try:
        out = to_json(value)
    except Exception:
        return None
    # `78 in out` (a byte: "N") first: `b"NaN" in out` tries the word as an integer first and
    # builds and drops a TypeError each time, 2,000 instructions per test.
    if (_N in out or _I in out) and (out.find(b"NaN") >= 0 or out.find(b"Infinity") >= 0):
        return None  # a float NaN or Infinity, or a string that merely holds the word
    digits = sys.get_int_max_str_digits()  # 0: no limit
    # Only from the start of a run of digits: tried inside runs too, a search would recount
    # each one from every digit (seconds for a megabyte of digit strings).
    if digits and len(out) > digits and re.search(rb"(?<![0-9])[0-9]{%d}" % (digits + 1), out):
        return None  # a long int (refused there); a long run of digits in text passes there
    return out.decode()


def dump_payload(value: Any, what: str = "value") -> str:
    """`dump_json(value, what)`, faster: the same JSON data, compact."""
    out = encode(value)
    # The standard path refuses NaN, Infinity and a long int with its reason, and writes a
    # lone surrogate as `json.dumps` does, as an escape, which `json.loads` reads back.
    return dump_json(value, what) if out is None else out


def dump_records(value: Any) -> str:
    """JSON of span records (strings, numbers, lists, None) with non-ASCII text kept as it is,
    so text the database cannot store fails the write, as a column of it would."""
    return to_json(value).decode()
