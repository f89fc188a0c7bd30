"""Loading the default steps must not import the service clients: an idle server stays small."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each of these costs megabytes of memory; they load when a flow first talks to its service.
HEAVY = ["openai", "github", "googleapiclient", "google_auth_oauthlib", "slack_sdk", "httpx", "jwt"]

_PROBE = """
import json, sys
from pathlib import Path
from app.registry import load_registry
registry = load_registry([Path("steps")])
print(json.dumps({"loaded": sorted(m for m in %r if m in sys.modules)}))
"""


def test_loading_the_steps_imports_no_service_client() -> None:
    # A fresh interpreter: the test process itself has imported all of them already.
    done = subprocess.run(
        [sys.executable, "-c", _PROBE % (HEAVY,)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    last_line = done.stdout.strip().splitlines()[-1]
    assert json.loads(last_line)["loaded"] == []
