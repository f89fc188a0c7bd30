"""HTTP server: API-step routes, /healthz, SSE streams and the /_stepline API."""

from app.server.factory import create_app

__all__ = ["create_app"]
