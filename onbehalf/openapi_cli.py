"""`onbehalf openapi export|check`: the five services' OpenAPI documents in docs/openapi/."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import typer

from libs.common.settings import PROJECT_ROOT

openapi_app = typer.Typer(no_args_is_help=True, help=__doc__)

SERVICES = ("identity", "catalog", "cart", "orders", "audit")
DEFAULT_DIR = PROJECT_ROOT / "docs" / "openapi"


def spec_of(service: str) -> dict[str, Any]:
    """The document the running service serves at /openapi.json (its app, never started)."""
    module = importlib.import_module(f"services.{service}.app")
    spec: dict[str, Any] = module.create_app().openapi()
    return spec


def rendered(service: str) -> str:
    return json.dumps(spec_of(service), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale(directory: Path = DEFAULT_DIR) -> list[str]:
    """The services whose exported document differs from what the code serves."""
    return [
        service
        for service in SERVICES
        if not (directory / f"{service}.json").is_file()
        or (directory / f"{service}.json").read_text() != rendered(service)
    ]


@openapi_app.command()
def export(directory: Path = typer.Option(DEFAULT_DIR, help="Where the documents go")) -> None:
    """Write docs/openapi/<service>.json for every service."""
    directory.mkdir(parents=True, exist_ok=True)
    for service in SERVICES:
        (directory / f"{service}.json").write_text(rendered(service))
        typer.echo(f"wrote {directory / service}.json")


@openapi_app.command()
def check(directory: Path = typer.Option(DEFAULT_DIR, help="Where the documents are")) -> None:
    """Exit 1 when an exported document is not what the code serves (run `export`)."""
    outdated = stale(directory)
    if outdated:
        typer.echo(f"stale: {', '.join(outdated)} (run: onbehalf openapi export)")
        raise typer.Exit(1)
    typer.echo("docs/openapi is current")
