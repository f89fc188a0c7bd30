"""The two server-rendered pages of the Workbench: the login form and the refusal page.

Everything else is static; these carry a message chosen by the server, so they are built
here with every interpolated value escaped.
"""

from __future__ import annotations

from html import escape

__all__ = ["SECURITY_HEADERS", "login_page", "refusal_page"]

# Scripts and styles come only from our own static files, so an injected string cannot run.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · Stepline Workbench</title>"
        '<link rel="icon" href="data:,"><link rel="stylesheet" '
        'href="/workbench/static/workbench.css"></head>'
        f'<body class="gate"><main class="gate-card">{body}</main></body></html>'
    )


def login_page(error: str | None = None) -> str:
    """The token form; it posts to /workbench/login, which sets the HttpOnly cookie."""
    problem = f'<p class="gate-error" role="alert">{escape(error)}</p>' if error else ""
    return _page(
        "Sign in",
        (
            "<h1>Stepline Workbench</h1>"
            "<p>This server runs in <code>start</code> mode. Enter the value of "
            "<code>STEPLINE_WORKBENCH_TOKEN</code> to open the Workbench.</p>"
            f"{problem}"
            '<form method="post" action="/workbench/login" class="gate-form">'
            '<label for="token">Workbench token</label>'
            '<input id="token" name="token" type="password" autocomplete="current-password" '
            "required autofocus>"
            '<button type="submit">Sign in</button></form>'
        ),
    )


def refusal_page(reason: str) -> str:
    return _page(
        "Unavailable",
        (f'<h1>Workbench unavailable</h1><p class="gate-error" role="alert">{escape(reason)}</p>'),
    )
