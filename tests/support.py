"""Small helpers shared by the test packages."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

__all__ = ["free_port", "write_steps"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_steps(directory: Path, files: dict[str, str]) -> Path:
    """Write step sources (dedented) under `directory`; names may contain sub-folders."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return directory
