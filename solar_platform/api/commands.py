"""Placeholder replaced by the API work (issue 4)."""

import typer

app = typer.Typer(no_args_is_help=True)
