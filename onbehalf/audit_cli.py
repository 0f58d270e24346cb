"""`onbehalf audit …`: verify the audit chain and follow new events."""

from __future__ import annotations

import typer

audit_app = typer.Typer(no_args_is_help=True, help=__doc__)
