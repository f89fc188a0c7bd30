"""Loading the default steps must not import the service clients: an idle server stays small."""

from __future__ import annotations

import json
import os
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


# What each flow's handlers need, and what only the CLI prints with: imported by the first
# delivery (or command) that uses them, never by a server whose flows are off.
HANDLERS_ONLY = [
    "rich",
    "agents.github.client",
    "agents.github.review",
    "agents.github.webhook",
    "agents.github.automerge",
    "agents.gmail.api",
    "agents.gmail.classify",
    "agents.gmail.flow",
    "agents.llm.client",
    "agents.notify.notifiers",
]

_SERVER_PROBE = """
import json, sys
import app.cli  # what the `stepline` script imports
from app.server.main import app_from_env
app_from_env()
print(json.dumps({"loaded": sorted(m for m in %r if m in sys.modules)}))
"""


def test_a_server_with_both_flows_off_loads_no_handler_code(tmp_path: Path) -> None:
    """`stepline start` over this repository's steps with no credentials anywhere (a clean
    environment, no .env) builds its app without importing what only a delivery would run."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "STEPLINE_STEPS": str(ROOT / "steps"),
        "STEPLINE_CONFIG_DIR": str(ROOT / "config"),
        "STEPLINE_DB": str(tmp_path / "stepline.db"),
        "STEPLINE_MODE": "start",
    }
    done = subprocess.run(
        [sys.executable, "-c", _SERVER_PROBE % (HEAVY + HANDLERS_ONLY,)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "flow github is off" in done.stderr and "flow gmail is off" in done.stderr
    last_line = done.stdout.strip().splitlines()[-1]
    assert json.loads(last_line)["loaded"] == []
