"""The Workbench: a browser UI over `/_stepline`, served as hand-written static files.

`workbench_router()` (in `routes`) is included by `app.server.factory` when present.
"""

from __future__ import annotations

__all__: list[str] = []
