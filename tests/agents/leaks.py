"""After an end-to-end run: no secret the test used shows up where an operator can read it."""

from __future__ import annotations

import json
from typing import Any

from app.testing import Harness

__all__ = ["assert_no_secrets"]


def _text(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


async def assert_no_secrets(h: Harness, secrets: dict[str, str]) -> None:
    """Logs (message and fields), span errors and emitted event data hold none of `secrets`
    (name -> value). Fails if there is nothing to look at, so the scan cannot pass vacuously."""
    logs, spans, emitted = await h.logs(), await h.spans(), h.emitted()
    assert logs and spans and emitted, "nothing was logged, traced or emitted"
    places = [(f"log {e.message!r}", _text([e.message, e.fields])) for e in logs]
    places += [(f"span {s.step} error", s.error) for s in spans if s.error]
    places += [(f"event {m.topic}", _text(m.data)) for m in emitted]
    for name, value in secrets.items():
        assert len(value) >= 8, f"{name}: too short to scan for"
        for where, text in places:
            assert value not in text, f"{name} leaked into {where}"
