"""A package's public names imported when first used (PEP 562), not when the package is.

`stepline start` imports every installed flow's plugin module to ask whether the flow is on,
and every step module of this repository: with eager package `__init__`s, asking the Gmail
flow's settings loaded its whole classifier and the LLM client (importing
`agents.notify.settings` ran `agents/notify/__init__.py`, which imported the notifiers and
through them the LLM client), megabytes of an idle server's memory for flows that are off.
A package lists its names here and imports them under `TYPE_CHECKING` for the type checker.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: `exports` maps each public name to the module
    that defines it; the value is imported on first access and kept in the package."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
