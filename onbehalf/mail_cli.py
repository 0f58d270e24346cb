"""`onbehalf mail list|show`: the messages the development SMTP sink of `make run` stored."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from onbehalf.mail_sink import stored_messages, summary

mail_app = typer.Typer(no_args_is_help=True, help=__doc__, add_completion=False)
console = Console()

DATA_DIR = typer.Option(Path("data"), help="The `onbehalf run` data folder (mail is in <it>/mail)")


@mail_app.command("list")
def list_mail(
    data_dir: Path = DATA_DIR,
    to: str | None = typer.Option(None, help="Only mail to this address"),
    last: int = typer.Option(20, help="How many of the newest messages"),
) -> None:
    """The newest messages, oldest first: id, date, recipient, subject."""
    messages = [summary(path) for path in stored_messages(data_dir / "mail")]
    if to:
        messages = [m for m in messages if to.lower() in m["to"].lower()]
    table = Table("id", "date", "to", "kind", "subject")
    for message in messages[-last:]:
        table.add_row(
            message["id"], message["date"], message["to"], message["kind"], message["subject"]
        )
    console.print(table)
    if not messages:
        console.print(f"no mail in {data_dir / 'mail'}")


@mail_app.command("show")
def show_mail(
    message_id: str = typer.Argument(
        ..., help="An id from `onbehalf mail list` (a prefix will do)"
    ),
    data_dir: Path = DATA_DIR,
) -> None:
    """One message: its headers and text (with the links to click)."""
    found = [
        p
        for p in stored_messages(data_dir / "mail")
        if p.stem.split("-", 1)[1].startswith(message_id)
    ]
    if len(found) != 1:
        console.print(
            f"[red]{'no' if not found else 'more than one'} message matches {message_id}[/]"
        )
        raise typer.Exit(1)
    message = summary(found[0])
    for header in ("to", "date", "kind", "subject"):
        console.print(f"[bold]{header.capitalize()}:[/] {message[header]}", highlight=False)
    console.print()
    console.print(message["body"], markup=False, highlight=False, soft_wrap=True)
