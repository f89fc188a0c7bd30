"""The per-process cache behind each flow's `services` module: one lock, one dict, and the two
collaborators every flow builds the same way (the LLM client and the notifiers).

Each flow owns its own `Collaborators`, so resetting one flow never drops the other's clients.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.llm import LLMClient
    from agents.notify import Notifiers

__all__ = ["Collaborators"]


class Collaborators:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cache: dict[str, Any] = {}

    def llm(self) -> LLMClient:
        # Imported on first use so that loading a step file does not import the OpenAI SDK.
        from agents.llm import LLMClient

        with self.lock:
            if "llm" not in self.cache:
                self.cache["llm"] = LLMClient.from_env()
            return self.cache["llm"]

    def notifiers(self) -> Notifiers:
        # Cheap to build, so per call: it follows the process's current environment.
        from agents.notify import Notifiers

        return Notifiers()
