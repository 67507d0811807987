"""`solar-platform panels ...` and `solar-platform health check`: the registry and fault detection by hand."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from solar_platform.contracts import PANEL_ID_RULE, is_valid_panel_id
from solar_platform.settings import load_settings
from solar_platform.storage import db
from solar_platform.storage.health import alerts, registry

panels_app = typer.Typer(no_args_is_help=True, add_completion=False)
health_app = typer.Typer(no_args_is_help=True, add_completion=False)
console = Console()


@panels_app.command("register")
def register(
    panel_id: str = typer.Argument(..., help="The panel id its readings carry."),
    pmax: float = typer.Option(..., "--pmax", min=0.001, help="Nameplate peak power, W."),
    site: str | None = typer.Option(None, "--site", help="Its site (default: where it is, or the default site)."),
) -> None:
    """Register a panel (or re-register a retired one) with its nameplate Pmax, at a site."""
    try:  # `register_panel` refuses a bad id, Pmax or an unknown site
        registry.register_panel(db.engine(load_settings()), panel_id, pmax, site_id=site)
    except ValueError as exc:
        _fail(str(exc))
    console.print(f"registered {escape(panel_id)} with Pmax {pmax:g} W" + (f" at {escape(site)}" if site else ""))


@panels_app.command("retire")
def retire(panel_id: str = typer.Argument(..., help="A registered panel id.")) -> None:
    """Retire a panel: no longer judged, its open alerts resolved; its history stays."""
    _require_valid_id(panel_id)
    if not registry.retire_panel(db.engine(load_settings()), panel_id):
        _fail(f"no registered panel {panel_id!r}")
    console.print(f"retired {escape(panel_id)}")


def _require_valid_id(panel_id: str) -> None:
    """Refuse an id the message contract would refuse, before touching the database."""
    if not is_valid_panel_id(panel_id):
        _fail(f"invalid panel id {panel_id!r}: a panel id is {PANEL_ID_RULE}")


def _fail(message: str) -> NoReturn:
    """One line on stderr and exit code 2, like every user error of the CLI (cli.py)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@health_app.command("check")
def check() -> None:
    """Run fault detection once now (what the panel_health sensor does every minute) and print open alerts."""
    settings = load_settings()
    run = alerts.run_health(db.engine(settings), settings)
    changes = run.changes
    if run.pipeline.open:
        console.print(f"[yellow]pipeline alarm: {escape(run.pipeline.detail)}[/]")
    if run.evaluation.silence_suppressed:
        console.print("[yellow]no readings committed lately: silence not judged[/]")
    console.print(f"{len(run.evaluation.panel_ids)} panels judged over {run.window_start:%H:%M:%S}-"
                  f"{run.window_end:%H:%M:%S} UTC; opened {changes.opened}, resolved {changes.resolved}")
    console.print("open: " + ", ".join(f"{kind} {n}" for kind, n in changes.open_by_kind.items()))
