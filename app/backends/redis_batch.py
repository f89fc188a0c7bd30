"""The Redis backend's hot path: a writer commit and a claim, encoded in few arguments.

redis-py packs every argument of a command separately (and re-copies its buffer as it goes),
so a commit of a hundred runs sent as two thousand arguments cost the worker more than the
handlers did. Here the common records travel as lines of one argument each, and the Lua side
(redis_lua_batch.py) applies them with a handful of commands per step rather than several per
delivery:

- messages: one line per message, its payload (compact JSON, which never holds a raw newline),
  after a line "#<route>" naming the steps the following payloads go to. A message with a
  flow plan is one line too: "&<route>\t", an ordering key ('' for none) and its limit per
  step of its route, each ending in a tab, then its payload (leading with its rate key, if
  any), when no step debounces and the route has one rate key at most; else "%<route>\t"
  with six plan fields per step (ordering key, limit, debounce key, quiet, max wait, rate
  key). One with an emit key, a
  future due time or a key holding a tab or a newline is a line "=" whose fields follow as
  separate arguments, in the format of `messages` in redis_lua.py.
- outcomes: "<step> 0-<id> 0-<id> ..." for plain acknowledgements (one XACK and one XDEL for
  the line); "%<step>\t<id>\t<key>\t<id>\t<key>..." for those of keyed deliveries (each
  lets the next of its key go); "=" for the rest (retry, dead letter, a key holding a tab or
  a newline, an acknowledgement of a run after the first), as separate arguments, in order.
  The lines hold first runs only (attempt 1), so the Lua side knows each one's attempt: an
  outcome settles only the claim it came from (a stale run's is ignored, Backend.write). A
  retry keeps the time of the delivery's first run in its payload ('{"f":<time>,...'), where
  its `Retry` window starts; one of a step with `key_on_failure: "release"` has the status
  "release": it frees its key while it waits.
- spans and logs: one record per commit, the JSON rows one a line (compact JSON never holds a
  raw newline), with its index entry "<count>\\n" and "<step>\\t<trace>\\n" per row, so Redis
  stores a commit's spans with one HSET and one ZADD and parses none of them.

Steps are numbered in a table sent first (0 is "no step"), so a step name is never parsed out
of a line. A claim answers per step: the step, "<seq> <attempt> ..." and a JSON array of the
payloads, decoded with one `json.loads`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from json.encoder import c_make_encoder  # type: ignore[attr-defined]
from json.encoder import encode_basestring_ascii as _esc
from typing import Any

from app.backends.base import dump_json
from app.backends.redis_records import index_text, log_json, span_json
from app.settings import Settings
from app.types import Batch, Delivery, FlowPlan, LogEntry, Message, Span

__all__ = ["claim_args", "deliveries", "message_args", "write_args"]

_SEP = (",", ":")
_NO_PLAN = FlowPlan()


_strict = json.JSONEncoder(allow_nan=False, separators=_SEP)
# json's C encoder held once (JSONEncoder.encode builds one per call, most of its cost); no
# circular-reference marks: such data recurses out (RecursionError), and dump_json then says so.
_c_encoder = (
    c_make_encoder(None, _strict.default, _esc, None, ":", ",", False, False, False)
    if c_make_encoder is not None
    else None
)


def _encode(value: Any) -> str:
    return "".join(_c_encoder(value, 0)) if _c_encoder is not None else _strict.encode(value)


def _payload(m: Message, now: float) -> str:
    """{"t": topic, "d": data, "tr": trace, "c": now} as compact JSON, with one encoder for
    every payload (json.dumps with options builds one per call)."""
    data = m.raw  # the text its emit encoded, written as it is
    try:
        if data is None:  # not encoded at its emit (cron, a message built in code)
            data = _encode(m.data)
        return f'{{"t":{_esc(m.topic)},"d":{data},"tr":{_esc(m.trace_id)},"c":{now!r}}}'
    except (TypeError, ValueError, RecursionError):  # dump_json says what is wrong with it
        return dump_json(
            {"t": m.topic, "d": m.data, "tr": m.trace_id, "c": now},
            f"data emitted to {m.topic!r}",
            separators=_SEP,
        )


def message_args(m: Message, now: float, payload: str | None = None) -> list[Any]:
    """One message as separate arguments (the format of `messages` in redis_lua.py)."""
    # A delayed emit waits in the step's retry set until its due time ("" = at once).
    due = repr(m.due) if m.due is not None and m.due > now else ""
    parts = m.partitions or {}
    steps: list[Any] = []
    for step in m.steps:
        p = parts.get(step) or _NO_PLAN
        quiet = "" if p.debounce_key is None else repr(p.quiet)
        steps += [step, p.key or "", p.limit or 0, p.debounce_key or "", quiet, repr(p.max_wait)]
        steps.append(p.rate_key or "")
    if payload is None:
        payload = _payload(m, now)
    return [m.topic, m.key or "", payload, due, len(m.steps), *steps]


def _plain(m: Message) -> bool:
    """True when none of the message's steps has a plan (given no emit key or delay)."""
    parts = m.partitions
    if parts:
        for step in m.steps:
            p = parts.get(step)
            if p is not None and (p.key or p.debounce_key is not None or p.rate_key):
                return False
    return True


def _planned(m: Message, payload: str) -> tuple[str, str] | None:
    """The line of a message with a flow plan but no emit key or delay, as (its fields, its
    payload): "&<route>\t" with "<key>\t<limit>\t" per step of its route when no step
    debounces and their rate keys agree (the payload then leads with the rate key, '{"rk":'),
    else "%<route>\t" with "<key>\t<limit>\t<debounce key>\t<quiet>\t<max
    wait>\t<rate key>\t" per step. None when it needs the separate arguments (a key holding
    a tab or a newline)."""
    parts = m.partitions or {}
    fields: list[str] = []
    rate_key = ""
    for step in m.steps:
        p = parts.get(step)
        if p is None:
            fields.append("\t0\t")
            continue
        if p.debounce_key is not None or (p.rate_key and rate_key and p.rate_key != rate_key):
            text = _planned_fully(m, parts)
            return None if text is None else (text, payload)
        rate_key = p.rate_key or rate_key
        fields.append(f"{p.key or ''}\t{p.limit or 0}\t")
    text = "&" + "".join(fields)
    if "\n" in text or text.count("\t") != 2 * len(fields):
        return None
    # A step without a rate limit ignores the stamp; redis_rates.py reads it where it leads.
    return text, f'{{"rk":{_esc(rate_key)},{payload[1:]}' if rate_key else payload


def _planned_fully(m: Message, parts: dict[str, FlowPlan]) -> str | None:
    fields: list[str] = []
    for step in m.steps:
        p = parts.get(step) or _NO_PLAN
        quiet = "" if p.debounce_key is None else repr(p.quiet)
        fields.append(
            f"{p.key or ''}\t{p.limit or 0}\t{p.debounce_key or ''}\t{quiet}\t"
            f"{p.max_wait!r}\t{p.rate_key or ''}\t"
        )
    text = "%" + "".join(fields)
    return None if "\n" in text or text.count("\t") != 6 * len(fields) else text


def _unsafe(key: str) -> bool:
    return "\t" in key or "\n" in key


def write_args(
    batch: Batch, s: Settings, now: float, ordered: Mapping[str, bool] | None = None
) -> list[Any]:
    """The arguments of the write section (WRITE from ARGV[2]); `ordered[step]` True: a keyed
    delivery of it that waits for a retry releases its key (status "release")."""
    steps: dict[str, int] = {}

    def index(step: str) -> int:
        n = steps.get(step)
        if n is None:
            n = steps[step] = len(steps) + 1
        return n

    routes: dict[tuple[str, ...], int] = {}
    route_args: list[Any] = []

    def route_of(targets: tuple[str, ...]) -> int:
        r = routes.get(targets)
        if r is None:
            r = routes[targets] = len(routes) + 1
            route_args.extend([len(targets), *map(index, targets)])
        return r

    lines: list[str] = []
    cold: list[Any] = []
    plain = 0
    route = 0
    for m in batch.messages:
        payload = _payload(m, now)  # also where NaN or Infinity is refused, steps or not
        hot = not m.key and (m.due is None or m.due <= now)
        if hot and (not m.partitions or _plain(m)):
            if m.steps:
                r = route_of(m.steps)
                if r != route:
                    lines.append(f"#{r}")
                    route = r
                lines.append(payload)
                plain += len(m.steps)
            continue
        line = _planned(m, payload) if hot else None
        if line is None:
            lines.append("=")
            cold += message_args(m, now, payload)
        elif m.steps:
            # One line, its route's steps each with its plan: "&<route>\t<fields>...<payload>"
            fields, body = line
            lines.append(f"{fields[0]}{route_of(m.steps)}\t{fields[1:]}{body}")
            plain += len(m.steps)  # an upper bound: one waiting for its key's turn takes none
    acks: list[str] = []
    settle: list[Any] = []
    ready: dict[str, list[str]] = {}  # plain acks since the last other outcome, per step
    keyed: dict[str, list[str]] = {}  # acks of keyed deliveries: "<seq>\t<key>", per step

    def flush() -> None:
        acks.extend(f"{index(step)} {' '.join(ids)}" for step, ids in ready.items())
        acks.extend(f"%{index(step)}\t" + "\t".join(ids) for step, ids in keyed.items())
        ready.clear()
        keyed.clear()

    for o in batch.outcomes:
        d = o.delivery
        if o.status == "ok" and d.attempt == 1 and d.id.isdigit():
            if not d.key:
                ready.setdefault(d.step, []).append("0-" + d.id)
                continue
            if not _unsafe(d.key):
                keyed.setdefault(d.step, []).append(f"{d.id}\t{d.key}")
                continue
        flush()  # in order: a delivery settled twice in one commit keeps its first outcome
        acks.append("=")
        meta = ""
        if o.status == "dead":
            meta = json.dumps(
                {
                    "attempts": d.attempt,
                    "error": o.error or "",
                    "traceback": o.traceback or "",
                    "failed_at": now,
                }
            )
        retry_at = o.retry_at if o.retry_at is not None else now
        status: str = o.status
        if status == "retry" and d.key and ordered and ordered.get(d.step):
            status = "release"
        settle += [
            d.step,
            d.id,
            status,
            repr(retry_at),
            max(d.attempt - 1, 0) if o.uncounted else d.attempt,  # the attempt stored
            meta,
            d.key or "",
            d.key_limit,
            "" if d.first_run is None else repr(d.first_run),
            d.attempt,  # the attempt it was claimed with
        ]
    flush()
    spans, span_index = _records([span_json(sp) for sp in batch.spans], batch.spans)
    logs, log_index = _records([log_json(e) for e in batch.logs], batch.logs)
    return [
        repr(now),
        int(s.dedup_ttl * 1000),
        s.dead_retention,
        s.trace_retention,
        s.log_retention,
        len(steps),
        *steps,
        len(routes),
        *route_args,
        plain,
        "\n".join(lines),
        *cold,
        "\n".join(acks),
        *settle,
        spans,
        span_index,
        logs,
        log_index,
    ]


def _records(rows: list[str], items: list[Span] | list[LogEntry]) -> tuple[str, str]:
    """A commit's spans or logs as one record: their JSON rows, one a line, and its index
    entry: the count, then "<step>\\t<trace>" of each row, each ending in a newline."""
    if not rows:
        return "", ""
    entries = [f"{index_text(x.step or '')}\t{index_text(x.trace_id or '')}\n" for x in items]
    return "\n".join(rows), f"{len(rows)}\n{''.join(entries)}"


def claim_args(
    consumer: str,
    now: float,
    wants: Mapping[str, int],
    plan: Mapping[str, tuple[int, bool, int, float, bool]],
) -> list[Any]:
    """The arguments of the claim section; `plan[step]` is (lease ms, reclaim, rate, window,
    per rate key)."""
    args: list[Any] = [consumer, repr(now), len(wants)]
    for step, n in wants.items():
        lease_ms, reclaim, rate, window, per_key = plan[step]
        args += [step, n, lease_ms, "1" if reclaim else "0", rate, window, "1" if per_key else "0"]
    return args


def deliveries(rows: list[Any], now: float) -> list[Delivery]:
    """The deliveries of a claim's answer (step, "<seq> <attempt> ...", payload array) made
    at `now`: the first run of each, unless a retry stored an earlier one ("f")."""
    out: list[Delivery] = []
    for k in range(0, len(rows), 3):
        step, numbers, payloads = rows[k : k + 3]
        nums = numbers.split(" ")
        for j, p in enumerate(json.loads(payloads)):
            out.append(
                Delivery(
                    nums[2 * j],
                    step,
                    p["t"],
                    p["d"],
                    p["tr"],
                    int(nums[2 * j + 1]),
                    p["c"],
                    p.get("k"),
                    p.get("kl", 0),
                    p.get("f", now),
                )
            )
    return out
