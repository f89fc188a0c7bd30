"""schemathesis over `/openapi.json` of a real `stepline start`: of the shipped project, and of a
project with path parameters and pydantic bodies. No generated request may get a 5xx, and the
schema must load without errors (every path parameter declared). Few examples per operation,
so the run stays short; the seed is fixed so a failure can be reproduced."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import SteplineProcess
from tests.support import write_steps

pytest.importorskip("schemathesis", reason="schemathesis is a dev extra")

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "fuzz-token-0123456789abcdef"
SHAPES = {
    "items_step.py": """
        from pydantic import BaseModel, Field

        class Item(BaseModel):
            name: str = Field(min_length=1, max_length=50)
            price: float = Field(ge=0)
            tags: list[str] = []

        class Saved(BaseModel):
            id: str
            name: str

        config = {"type": "api", "name": "PutItem", "path": "/items/{item_id}",
                  "method": "PUT", "body": Item, "response": Saved, "emits": ["item.saved"]}

        async def handler(req, ctx):
            await ctx.emit("item.saved", {"id": req.path_params["item_id"],
                                          **req.body.model_dump()})
            await ctx.state.set("items", req.path_params["item_id"], req.body.model_dump())
            return {"id": req.path_params["item_id"], "name": req.body.name}
    """,
    "get_item_step.py": """
        config = {"type": "api", "name": "GetItem", "path": "/items/{item_id}/tags/{tag}",
                  "method": "GET"}

        async def handler(req, ctx):
            item = await ctx.state.get("items", req.path_params["item_id"])
            if item is None:
                return {"status": 404, "body": {"error": "no such item"}}
            return {"tag": req.path_params["tag"], "has": req.path_params["tag"] in item["tags"]}
    """,
    "saved_step.py": """
        config = {"type": "event", "name": "Saved", "subscribes": ["item.saved"]}

        async def handler(data, ctx):
            ctx.logger.info("saved", item=data["id"])
    """,
}


def _fuzz(server: SteplineProcess, tmp: Path) -> None:
    schema = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            named = {part[1:-1].split(":")[0] for part in path.split("/") if part[:1] == "{"}
            assert named <= declared, f"{method.upper()} {path} does not declare {named}"
    (tmp / "schema.json").write_text(json.dumps(schema))
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli is not None, "schemathesis is installed but its command is not"
    done = subprocess.run(
        [
            cli,
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "6",
            "--seed",
            "1",
            "--no-shrink",
            "--workers",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-database",
            "none",
            "--request-timeout",
            "20",
            "--header",
            f"Authorization: Bearer {TOKEN}",
            # Server-Sent Events never end by themselves.
            "--exclude-path-regex",
            "(^/streams/|/logs/stream$)",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp,
    )
    report = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, f"schemathesis found problems:\n{report}\n{server.output()}"
    counted = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert counted and int(counted[1]) > 100 and counted[1] == counted[2], report
    assert "Schema Errors" not in done.stdout, report


def test_the_shipped_project_survives_schemathesis(tmp_path):
    # Both webhooks configured, as in production (an unconfigured flow is off under start).
    env = {
        "STEPLINE_WORKBENCH_TOKEN": TOKEN,
        "STEPLINE_CONFIG_DIR": str(ROOT / "config"),
        "GITHUB_WEBHOOK_SECRET": "fuzz-webhook-secret",
        "GMAIL_WEBHOOK_TOKEN": "fuzz-mail",
        "GITHUB_TOKEN": "ghp_" + "f" * 36,
        "STEPLINE_VERIFY_CREDENTIALS": "0",
    }
    with SteplineProcess(ROOT / "steps", tmp_path / "shipped.db", env=env, cwd=tmp_path) as server:
        _fuzz(server, tmp_path)


def test_path_parameters_and_pydantic_bodies_survive_schemathesis(tmp_path):
    steps = write_steps(tmp_path / "steps", SHAPES)
    with SteplineProcess(
        steps, tmp_path / "shapes.db", env={"STEPLINE_WORKBENCH_TOKEN": TOKEN}, cwd=tmp_path
    ) as server:
        _fuzz(server, tmp_path)
