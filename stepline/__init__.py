"""`python -m stepline`: the `stepline` command, for environments without the console script
on PATH. The runtime itself is the `app` package."""

from app.version import __version__

__all__ = ["__version__"]
