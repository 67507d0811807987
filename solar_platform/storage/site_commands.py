"""`solar-platform sites ...`: register, edit and list the sites panels belong to."""

from __future__ import annotations

from datetime import date
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from solar_platform.settings import load_settings
from solar_platform.storage import db, sites

sites_app = typer.Typer(no_args_is_help=True, add_completion=False)
console = Console()


def _fail(message: str) -> NoReturn:
    """One line on stderr and exit code 2, like every user error of the CLI (cli.py)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"commissioning date {value!r} is not YYYY-MM-DD")


@sites_app.command("register")
def register(
    site_id: str = typer.Argument(..., help="The site's id (letters, digits, '.', '_', '-')."),
    name: str = typer.Option(..., "--name", help="A readable name."),
    latitude: float = typer.Option(..., "--lat", help="Latitude, degrees north (-90..90)."),
    longitude: float = typer.Option(..., "--lon", help="Longitude, degrees east (-180..180)."),
    time_zone: str = typer.Option(..., "--tz", help="IANA time zone of the site's days, e.g. Europe/Madrid."),
    commissioned: str | None = typer.Option(None, "--commissioned", help="Commissioning date, YYYY-MM-DD."),
) -> None:
    """Register a site (or replace every field of an existing one)."""
    try:
        sites.register_site(db.engine(load_settings()), site_id, name=name, latitude=latitude, longitude=longitude,
                            time_zone=time_zone, commissioned_on=_day(commissioned))
    except ValueError as exc:
        _fail(str(exc))
    console.print(f"registered site {escape(site_id)} ({escape(time_zone)})")


@sites_app.command("edit")
def edit(
    site_id: str = typer.Argument(..., help="A registered site id."),
    name: str | None = typer.Option(None, "--name"),
    latitude: float | None = typer.Option(None, "--lat"),
    longitude: float | None = typer.Option(None, "--lon"),
    time_zone: str | None = typer.Option(None, "--tz"),
    commissioned: str | None = typer.Option(None, "--commissioned", help="YYYY-MM-DD."),
) -> None:
    """Change some fields of a site; the others stay. The fleet sync leaves an edited site alone."""
    try:
        found = sites.edit_site(db.engine(load_settings()), site_id, name=name, latitude=latitude,
                                longitude=longitude, time_zone=time_zone, commissioned_on=_day(commissioned))
    except ValueError as exc:
        _fail(str(exc))
    if not found:
        _fail(f"no site {site_id!r}")
    console.print(f"edited site {escape(site_id)}")


@sites_app.command("list")
def list_command() -> None:
    """Every site with its place, zone, panels in service and kWp."""
    with db.engine(load_settings()).connect() as conn:
        rows = sites.list_sites(conn, limit=100_000)
    # One tab-separated line per site: readable, and easy to grep or cut.
    typer.echo("\t".join(("site", "name", "lat", "lon", "zone", "commissioned", "panels", "kWp", "by")))
    for s in rows:
        typer.echo("\t".join((s.site_id, s.name, f"{s.latitude:.4f}", f"{s.longitude:.4f}", s.time_zone,
                              str(s.commissioned_on or "-"), str(s.panels), f"{s.kwp:.3f}", s.registered_by)))
