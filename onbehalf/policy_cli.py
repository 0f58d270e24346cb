"""`onbehalf policy …`: test, check and explain the policies in policies/."""

from __future__ import annotations

import typer

policy_app = typer.Typer(no_args_is_help=True, help=__doc__)
