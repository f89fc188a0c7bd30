"""`stepline db`: maintenance of the SQLite database file itself."""

from __future__ import annotations

import typer

from app.cli_common import console, fail, settings_from, use_project

__all__ = ["db_app"]

db_app = typer.Typer(
    help="Maintain the SQLite database file (STEPLINE_DB, else .stepline/stepline.db of the "
    "project).",
    no_args_is_help=True,
)


@db_app.command("vacuum")
def vacuum() -> None:
    """Convert a database created by an older Stepline so that it gives free space back.

    A file created before incremental auto-vacuum (`stepline start`, `dev` and `worker` log
    "was created before incremental auto-vacuum" when they open one) stays within its
    retention limits but never shrinks after a burst. This command sets
    `auto_vacuum=INCREMENTAL` and rewrites the file
    once (`VACUUM`); from then on the periodic sweep releases free pages by itself, as it does
    for files created by this version. A file that can shrink already is left as it is.

    Stop every process using the database first (`stepline start`, `dev`, `worker`): the
    command refuses, changing nothing, while another process has the file open. The rewrite
    needs free disk space of about the file's size and takes about a second per 100 MiB on an
    SSD. Exit status: 0 converted or nothing to do, 1 refused or failed.
    """
    use_project(None)
    settings = settings_from(None)
    if settings.backend != "sqlite":
        raise fail(f"STEPLINE_BACKEND is {settings.backend}: there is no SQLite file to vacuum")
    from app.backends.sqlite_vacuum import convert
    from app.errors import BackendError

    path = settings.db
    if not path.is_file():
        raise fail(f"no database at {path}: nothing to vacuum (STEPLINE_DB names another file?)")
    try:
        with console().status(f"Rewriting {path} ..."):
            done = convert(path)
    except BackendError as exc:  # DatabaseInUse included
        raise fail(str(exc)) from None
    before, after = done.bytes_before / 2**20, done.bytes_after / 2**20
    if not done.converted:
        typer.echo(f"{path} gives free space back already ({before:.1f} MiB): nothing to do")
        return
    typer.echo(
        f"{path} converted: {before:.1f} MiB -> {after:.1f} MiB; "
        "it now gives free space back by itself"
    )
