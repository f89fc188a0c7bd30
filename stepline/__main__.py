"""`python -m stepline ...` is `stepline ...`."""

from app.cli import main

main()
