"""`onbehalf deadletters …`: read the messages consumers gave up on, with why."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sys
from pathlib import Path

import nats
import typer

from libs.common.bus import server_list
from libs.common.deadletter import DeadLetter, count_dead_letters, read_dead_letters
from onbehalf.nats_setup import (
    DATA_DIR_OPTION,
    NATS_CREDS_OPTION,
    nats_url_for,
    operator_credentials,
    operator_seed,
)

deadletters_app = typer.Typer(no_args_is_help=True, help=__doc__)

PAYLOAD_PREVIEW_CHARS = 200


def letter_json(letter: DeadLetter) -> dict[str, object]:
    """A dead letter as one JSON object: the payload both as text and exactly (base64)."""
    return {
        "sequence": letter.sequence,
        "subject": letter.subject,
        "durable": letter.durable,
        "reason": letter.reason,
        "error": letter.error,
        "deliveries": letter.deliveries,
        "failed_at": letter.failed_at,
        "original_subject": letter.original_subject,
        "original_sequence": letter.original_sequence,
        "payload_text": letter.payload.decode(errors="replace"),
        "payload_base64": base64.b64encode(letter.payload).decode(),
    }


def letter_line(letter: DeadLetter) -> str:
    preview = letter.payload.decode(errors="replace")
    preview = " ".join(preview.split())[:PAYLOAD_PREVIEW_CHARS]
    return (
        f"#{letter.sequence}  {letter.failed_at or '-'}  {letter.durable or '-'}  "
        f"{letter.reason or '-'}  deliveries={letter.deliveries}  "
        f"from {letter.original_subject}#{letter.original_sequence}\n"
        f"    error:   {letter.error or '-'}\n"
        f"    payload: {preview}"
    )


async def _list(
    *, nats_url: str, seed_file: Path | None, subject: str, after: int, limit: int
) -> tuple[list[DeadLetter], int]:
    credentials = operator_credentials(seed_file)
    try:
        nc = await asyncio.wait_for(
            nats.connect(
                server_list(nats_url),
                name="onbehalf-deadletters",
                allow_reconnect=False,
                **credentials,
            ),
            timeout=5.0,
        )
    except Exception as exc:
        typer.echo(f"cannot reach NATS at {nats_url} ({type(exc).__name__})", err=True)
        raise typer.Exit(2) from exc
    try:
        js = nc.jetstream()
        return (
            await read_dead_letters(js, subject=subject, after=after, limit=limit),
            await count_dead_letters(js),
        )
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


@deadletters_app.command("list")
def list_letters(
    nats_url: str | None = typer.Option(
        None,
        "--nats-url",
        envvar="NATS_URL",
        help="NATS with JetStream (default: the one `make run` started for --data-dir)",
    ),
    seed_file: Path | None = NATS_CREDS_OPTION,
    data_dir: Path = DATA_DIR_OPTION,
    service: str = typer.Option("*", "--service", help="Only this service's dead letters"),
    durable: str = typer.Option("*", "--durable", help="Only this consumer's dead letters"),
    after: int = typer.Option(0, "--after", min=0, help="Only those after this sequence"),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="At most this many"),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per dead letter"),
) -> None:
    """Dead letters oldest first: consumer, reason, deliveries, error, and the original message.

    Page on with `--after <last sequence shown>`."""
    subject = f"deadletter.{service}.{durable}"
    letters, total = asyncio.run(
        _list(
            nats_url=nats_url_for(nats_url, data_dir),
            seed_file=operator_seed(seed_file, data_dir),
            subject=subject,
            after=after,
            limit=limit,
        )
    )
    for letter in letters:
        sys.stdout.write(
            (json.dumps(letter_json(letter)) if as_json else letter_line(letter)) + "\n"
        )
    more = f"; next page: --after {letters[-1].sequence}" if len(letters) == limit else ""
    typer.echo(f"{len(letters)} shown, {total} in the dead-letter stream{more}", err=True)
