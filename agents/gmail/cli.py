"""`stepline gmail ...`: connect an inbox, classify `.eml` files, train the spam model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from agents.gmail.bayes import BayesModel
from agents.gmail.classify import assess, load_model
from agents.gmail.errors import GmailError
from agents.gmail.oauth import connect as oauth_connect
from agents.gmail.oauth import token_file
from agents.gmail.parse import parse_raw
from agents.gmail.settings import GmailSettings, current_settings, settings_file

__all__ = ["app"]

app = typer.Typer(
    help="Gmail triage: connect an inbox, classify mail, train the spam model.",
    no_args_is_help=True,
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _settings_or_exit() -> GmailSettings:
    settings = current_settings()
    if settings_file().error:
        raise _fail(settings_file().error or "")
    return settings


@app.command()
def connect(
    port: Annotated[int, typer.Option(help="Local port for Google's redirect (0: any).")] = 0,
    open_browser: Annotated[bool, typer.Option(help="Open the consent page here.")] = False,
) -> None:
    """Authorise Stepline for your Gmail (OAuth installed-app flow); stores the token 0600."""
    settings = _settings_or_exit()
    full = settings.cleanup.delete

    def show(url: str) -> None:
        typer.echo("Open this URL in a browser and allow access:\n" + url)
        typer.echo("(On a remote server, forward the port first: ssh -L PORT:localhost:PORT ...)")

    try:
        creds = oauth_connect(full_scope=full, port=port, open_browser=open_browser, on_url=show)
    except GmailError as exc:
        raise _fail(str(exc)) from None
    scope = "full mail (permanent delete allowed)" if full else "gmail.modify"
    typer.echo(f"Connected with scope {scope}; token stored in {token_file()} (mode 0600).")
    if settings.mode == "push" and settings.push.topic:
        from agents.gmail.api import GmailAPI

        reply = GmailAPI(creds, user_id=settings.user_id).watch(
            settings.push.topic, settings.push.label_ids
        )
        typer.echo(f"Gmail now publishes to {settings.push.topic} (history {reply['historyId']}).")


@app.command()
def classify(
    files: Annotated[list[Path], typer.Argument(help="Raw RFC 822 messages (.eml).")],
) -> None:
    """Print one JSON line per file: file, spam_score, is_spam, priority, reasons."""
    settings = _settings_or_exit()
    try:
        model = load_model(settings)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    from agents.llm import LLMClient

    llm = LLMClient.from_env() if settings.spam.use_llm else None
    failed = False
    for path in files:
        try:
            mail = parse_raw(path.read_bytes())
        except OSError as exc:
            typer.echo(f"error: cannot read {path}: {exc.strerror}", err=True)
            failed = True
            continue
        result = asyncio.run(assess(mail, settings, llm=llm, model=model))
        typer.echo(json.dumps({"file": str(path), **result.as_json()}, ensure_ascii=False))
    if failed:
        raise typer.Exit(code=1)


@app.command()
def train(
    spam: Annotated[
        list[Path] | None, typer.Option(help="Folder of spam .eml (repeatable).")
    ] = None,
    ham: Annotated[
        list[Path] | None, typer.Option(help="Folder of wanted .eml (repeatable).")
    ] = None,
    mailbox: Annotated[bool, typer.Option(help="Also learn from SPAM and INBOX.")] = False,
    limit: Annotated[
        int, typer.Option(min=1, help="Messages per label from the mailbox.")
    ] = 500,
    reset: Annotated[bool, typer.Option(help="Start from an empty model.")] = False,
) -> None:
    """Train the local naive Bayes spam model; it is stored where the flow loads it."""
    from agents.gmail.training import train_from_dirs, train_from_mailbox

    settings = _settings_or_exit()
    spam, ham = spam or [], ham or []
    path = settings.spam.model_path
    if not (spam or ham or mailbox):
        raise _fail("nothing to learn from: pass --spam DIR and --ham DIR, or --mailbox")
    try:
        model = (None if reset else BayesModel.load(path)) or BayesModel()
        n_spam, n_ham = train_from_dirs(model, spam, ham)
        if mailbox:
            from agents.gmail.api import GmailAPI

            api = GmailAPI.connect(user_id=settings.user_id)
            more = train_from_mailbox(model, api, limit, own_label=settings.spam.label)
            n_spam, n_ham = n_spam + more.spam, n_ham + more.ham
            if more.skipped:
                typer.echo(
                    f"skipped {more.skipped} messages labelled {settings.spam.label!r} "
                    "(the flow's own verdicts, not yours)"
                )
    except (ValueError, GmailError) as exc:
        raise _fail(str(exc)) from None
    model.save(path)
    typer.echo(
        f"learned {n_spam} spam and {n_ham} wanted messages; model now has "
        f"{model.spam_docs} spam and {model.ham_docs} wanted in {path}"
    )
    if not model.trained:
        typer.echo("note: the model needs both spam and wanted mail before it scores anything")
