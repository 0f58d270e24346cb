"""`onbehalf keys`: rotate identity's token-signing keys, as a platform admin, over HTTP."""

from __future__ import annotations

import json

import httpx
import typer
from rich.console import Console

keys_app = typer.Typer(no_args_is_help=True, help=__doc__, add_completion=False)
console = Console()


@keys_app.command()
def rotate(
    identity_url: str = typer.Option(
        "http://127.0.0.1:8001", envvar="ONBEHALF_IDENTITY_URL", help="Where identity listens"
    ),
    email: str = typer.Option(
        "admin@seller.example", envvar="ONBEHALF_ADMIN_EMAIL", help="A platform admin"
    ),
    password: str = typer.Option(
        ..., envvar="ONBEHALF_ADMIN_PASSWORD", prompt=True, hide_input=True, help="Their password"
    ),
) -> None:
    """Sign with a new key now; tokens of the old one stay valid until they expire (nobody is
    logged out), and services fetch the new key set when they first see the new key."""
    base = identity_url.rstrip("/")
    with httpx.Client(timeout=30.0) as client:
        login = client.post(f"{base}/v1/auth/token", json={"email": email, "password": password})
        if login.status_code != 200:
            console.print(f"[red]login refused ({login.status_code}): {login.text}[/]")
            raise typer.Exit(1)
        token = login.json()["access_token"]
        response = client.post(
            f"{base}/v1/keys/rotate", headers={"Authorization": f"Bearer {token}"}
        )
    if response.status_code != 200:
        console.print(f"[red]rotation refused ({response.status_code}): {response.text}[/]")
        raise typer.Exit(1)
    console.print_json(json.dumps(response.json()))
