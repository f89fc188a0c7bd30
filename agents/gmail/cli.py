"""`stepline gmail ...`: connect an inbox, classify `.eml` files, train the spam model, and
show what the flow counted and learned."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from agents.gmail.bayes import BayesModel
from agents.gmail.classify import assess, load_model
from agents.gmail.errors import GmailError
from agents.gmail.message import ParsedEmail
from agents.gmail.oauth import connect as oauth_connect
from agents.gmail.oauth import token_file
from agents.gmail.settings import GmailSettings, current_settings, settings_file

__all__ = ["app"]

app = typer.Typer(
    help="Gmail triage: connect an inbox, classify mail, train the spam model, show stats.",
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
    """Print one JSON line per file: file, spam_score, is_spam, unsure, priority, reasons.

    A file that cannot be read is reported on stderr and the others are still classified;
    the exit code is then 1."""
    settings = _settings_or_exit()
    try:
        model = load_model(settings)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    from agents.gmail.training import read_mail_file
    from agents.llm import LLMClient

    llm = LLMClient.from_env() if settings.spam.use_llm else None
    failed = False
    for path in files:
        mail, why = read_mail_file(path)
        if mail is None:
            typer.echo(f"error: {why}", err=True)
            failed = True
            continue
        result = asyncio.run(assess(mail, settings, llm=llm, model=model))
        typer.echo(json.dumps({"file": str(path), **result.as_json()}, ensure_ascii=False))
    if failed:
        raise typer.Exit(code=1)


@app.command()
def train(
    spam: Annotated[
        list[Path] | None,
        typer.Option(metavar="DIR", help="Folder of spam .eml (repeatable)."),
    ] = None,
    ham: Annotated[
        list[Path] | None,
        typer.Option(metavar="DIR", help="Folder of wanted .eml (repeatable)."),
    ] = None,
    mailbox: Annotated[bool, typer.Option(help="Also learn from SPAM and INBOX.")] = False,
    limit: Annotated[
        int, typer.Option(min=1, metavar="N", help="Messages per label from the mailbox.")
    ] = 500,
    balance: Annotated[
        bool, typer.Option(help="From the mailbox, learn as many wanted mails as spam.")
    ] = True,
    reset: Annotated[bool, typer.Option(help="Start from an empty model.")] = False,
    relearn: Annotated[
        bool,
        typer.Option(help="Learn twice the wanted mail the model would flag without it."),
    ] = True,
) -> None:
    """Train the local Bayes spam model; it is stored where the flow loads it.

    Files that cannot be read are listed and skipped; the rest is learned."""
    from agents.gmail.training import relearn_mistakes, train_from_dirs, train_from_mailbox

    settings = _settings_or_exit()
    spam, ham = spam or [], ham or []
    path = settings.spam.model_path
    if not (spam or ham or mailbox):
        raise _fail("nothing to learn from: pass --spam DIR and --ham DIR, or --mailbox")
    from agents.gmail.learning import model_lock

    # held from load to save: a lesson the flow learns meanwhile waits for this run instead
    # of being lost when it saves the model it loaded before
    with model_lock(path):
        try:
            model = (None if reset else BayesModel.load(path)) or BayesModel()
            lessons: list[tuple[ParsedEmail, bool]] = []
            files = train_from_dirs(model, spam, ham, lessons)
            n_spam, n_ham = files.spam, files.ham
            if mailbox:
                from agents.gmail.api import GmailAPI
                from agents.gmail.learning import flow_moved_to_spam
                from app.cli_common import run_with_runtime

                api = GmailAPI.connect(user_id=settings.user_id)
                own = (settings.spam.label, settings.spam.unsure_label)
                moved = run_with_runtime(lambda rt: flow_moved_to_spam(rt.state), load_steps=False)
                more = train_from_mailbox(
                    model, api, limit, own, balanced=balance, flow_moved=moved, lessons=lessons
                )
                if more.moved_by_flow:
                    typer.echo(
                        f"skipped {more.moved_by_flow} messages the flow moved to Spam itself "
                        "(its own verdicts, not yours)"
                    )
                n_spam, n_ham = n_spam + more.spam, n_ham + more.ham
                if more.skipped:
                    typer.echo(
                        f"skipped {more.skipped} messages labelled {settings.spam.label!r} or "
                        f"{settings.spam.unsure_label!r} (the flow's own verdicts, not yours)"
                    )
                if more.left_out:
                    typer.echo(
                        f"left out {more.left_out} messages to learn spam and wanted mail in equal "
                        "numbers (--no-balance learns them all)"
                    )
            again = relearn_mistakes(model, lessons, settings.spam) if relearn else 0
        except (ValueError, GmailError) as exc:
            raise _fail(str(exc)) from None
        for why in files.unreadable:
            typer.echo(f"skipped: {why}", err=True)
        model.save(path)
    typer.echo(
        f"learned {n_spam} spam and {n_ham} wanted messages; model now has "
        f"{model.spam_docs} spam and {model.ham_docs} wanted in {path}"
    )
    if again:
        typer.echo(
            f"learned {again} wanted messages twice: without them the model would have flagged "
            "them (--no-relearn learns each once)"
        )
    if files.unreadable:
        typer.echo(f"{len(files.unreadable)} files could not be read (listed above)")
    if not model.trained:
        typer.echo("note: the model needs both spam and wanted mail before it scores anything")


@app.command()
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Today's counts, the model's size, and what it learned from your own corrections."""
    from agents.gmail.learning import gather_stats

    settings = _settings_or_exit()
    try:
        found = gather_stats(settings)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    day = found["today"]
    typer.echo(f"today ({found['day']}): " + ", ".join(f"{k} {v}" for k, v in day.items()))
    model = found["model"]
    typer.echo(
        f"model {model['path']}: {model['spam_docs']} spam and {model['ham_docs']} wanted mails"
    )
    learned = found["learned"]
    typer.echo(
        f"learned from your label changes: {learned['total']} messages "
        f"({learned['spam']} as spam, {learned['ham']} as wanted), "
        f"{learned['corrections']} of them corrections of the flow's verdict"
    )


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Whether the flow can run: its configuration, and whether Google still accepts the
    stored grant (as the flow's last sync found). Exit code 1 when something needs fixing."""
    from agents.gmail import grant
    from agents.gmail.plugin import status as flow_status
    from app.cli_common import run_with_runtime

    problems = list(flow_status().problems)
    if not as_json:
        # said before the runtime state is read, which needs the project's database
        typer.echo(f"token file: {token_file()}" + ("" if token_file().exists() else " (missing)"))
        for problem in problems:
            typer.echo(f"problem: {problem}")
    record = run_with_runtime(lambda rt: grant.load(rt.state), load_steps=False)
    refused = [grant.describe(record)] if record is not None and grant.applies(record) else []
    problems += refused
    if as_json:
        out = {"token_file": str(token_file()), "problems": problems, "grant": record}
        typer.echo(json.dumps(out, indent=2))
    elif refused:
        typer.echo(f"problem: {refused[0]}")
    elif record is not None:
        typer.echo(
            f"the grant refused at {record.get('since')} was replaced (the token file changed "
            "since): the next sync tries it"
        )
    if problems:
        raise typer.Exit(code=1)
    if not as_json:
        typer.echo("ok: configured, and no refused grant recorded")
