"""An emit encodes its data once and the store writes that text as it is: for the types an emit
accepts (datetimes, enums, pydantic models, dataclasses, sets, bytes, Decimal, UUID) the text is
the one SQLite stored before (the data made plain first, then encoded; Redis, which encoded with
the standard library, now stores the same data with non-ASCII text unescaped), and a handler, a
flow-control key and the harness's `emitted()` read the same plain data. Both backends."""

from __future__ import annotations

import dataclasses
import enum
import math
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from app.backends.codec import dump_payload
from app.testing import Harness
from tests.support import write_steps


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class User(BaseModel):
    name: str
    joined: datetime


@dataclasses.dataclass
class Point:
    x: float
    tags: frozenset[str]


VALUE = {
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "at": datetime(2026, 12, 1, 20, 15, 30, 123456, tzinfo=UTC),
    "naive": datetime(2026, 1, 2, 3, 4, 5),
    "day": date(2026, 12, 1),
    "clock": time(7, 30),
    "span": timedelta(hours=1, microseconds=5),
    "colour": Colour.RED,
    "level": Level.HIGH,
    "user": User(name="Ada", joined=datetime(2020, 5, 17, tzinfo=UTC)),
    "point": Point(1.5, frozenset({"a"})),
    "set": {3},
    "tuple": (1, "two"),
    "bytes": b"raw bytes",
    "price": Decimal("12.340"),
    "big": 2**100,
    "tiny": 5e-324,
    "text": 'naïve 日本 \U0001f600 \n\t"',
    "ints": {1: "one"},
}

STEPS = {
    "keep_step.py": """
        config = {"type": "event", "name": "Keep", "subscribes": ["odd"],
                  "key": "id", "concurrency_per_key": 1}

        async def handler(data, ctx):
            await ctx.state.set("got", "odd", data)
    """,
}


async def test_emitted_data_is_stored_as_before_and_read_back_the_same(make_app):
    plain = to_jsonable_python(VALUE)
    async with make_app(STEPS) as app:
        await app.emit("odd", VALUE)
        await app.drain(10)
        assert await app.state.get("got", "odd") == plain
        assert await app.dead_letters() == []
        [m] = app.emitted("odd")
        assert m.data == plain
        # The text the emit encoded, which the store writes, is what was stored before.
        assert m.raw == dump_payload(plain)
        assert m.partitions is not None and m.partitions["Keep"].key == str(VALUE["id"])


async def test_what_the_quick_encoding_declines_keeps_its_reasons(tmp_path):
    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        with pytest.raises(TypeError, match="data emitted to 'odd' is not JSON-serialisable"):
            app.runtime.message("odd", {"id": "1", "f": object()})
        # NaN and a long int are refused by the store with their reasons (not encoded here),
        # a lone surrogate is stored as an escape, a string holding "NaN" as before.
        for bad in (
            {"id": "1", "x": math.nan},
            {"id": "1", "n": 10**5000},
            {"id": "\ud800"},
            {"id": "NaN and Infinity"},
        ):
            m = app.runtime.message("odd", bad)
            assert m.raw is None and m.data == bad


DEPTH_STEPS = {
    "keep_step.py": """
        config = {"type": "event", "name": "Keep", "subscribes": ["odd"],
                  "key": "id", "concurrency_per_key": 1}

        async def handler(data, ctx):
            depth, tree = 0, data["tree"]
            while isinstance(tree, list):
                depth, tree = depth + 1, tree[0]
            await ctx.state.set("got", "depth", depth)
    """,
}


async def test_data_nested_deeper_than_pydantic_core_reads_still_gets_its_key(make_app):
    # pydantic-core writes up to 254 levels but reads only 200: the flow-control key is read
    # from the data decoded from that text, and the harness's emitted() shows it.
    tree: object = "leaf"
    for _ in range(230):
        tree = [tree]
    async with make_app(DEPTH_STEPS) as app:
        await app.emit("odd", {"id": "7", "tree": tree})
        await app.drain(10)
        assert await app.state.get("got", "depth") == 230
        [m] = app.emitted("odd")
        assert m.raw is not None and m.data["tree"] == tree
        assert m.partitions is not None and m.partitions["Keep"].key == "7"
