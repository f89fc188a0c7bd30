"""Bare FastAPI answering the webhook POST with 202: the floor bench/api_latency.py measures
Stepline's webhook path against, served by the same uvicorn (uvloop, httptools) with the same
options as `stepline start`.

    .venv/bin/python -m uvicorn --app-dir bench bare_api:app --port 8000
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

__all__ = ["app"]

app = FastAPI()


@app.post("/hook")
async def hook(request: Request) -> JSONResponse:
    await request.body()  # read it, as any webhook receiver must
    return JSONResponse({"ok": True}, status_code=202)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
