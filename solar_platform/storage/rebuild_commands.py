"""`solar-platform rebuild --from T --to T`: every derived table recomputed from panelData over a range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from solar_platform.settings import load_settings
from solar_platform.storage.rebuild import RebuildError, align, chunks, rebuild

console = Console(stderr=True)  # progress
report = Console()  # the summary, on stdout


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _moment(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise _fail(f"{name}: not an ISO 8601 timestamp: {text!r} (e.g. 2026-11-20 or 2026-11-20T06:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def rebuild_command(
    start: str = typer.Option(..., "--from", help="Start, ISO 8601 (UTC if no zone); widened to 15 minutes."),
    end: str = typer.Option(..., "--to", help="End, exclusive, ISO 8601 (UTC if no zone)."),
    chunk_minutes: int = typer.Option(60, "--chunk-minutes", help="Minutes per transaction (a multiple of 15)."),
) -> None:
    """Recompute windows, energy buckets, panel_latest, the registry's first/last seen and the daily
    rollups of the days touched, from panelData over [from, to). Idempotent."""
    a, b = _moment(start, "--from"), _moment(end, "--to")
    try:
        pieces = len(chunks(*align(a, b), timedelta(minutes=chunk_minutes)))
    except RebuildError as exc:
        raise _fail(str(exc)) from None
    settings = load_settings()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        tasks = {"windows and buckets": progress.add_task("windows and buckets", total=pieces)}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total)
            progress.update(tasks[phase], completed=done)

        try:
            result = rebuild(settings, a, b, chunk=timedelta(minutes=chunk_minutes), progress=update)
        except RebuildError as exc:
            raise _fail(str(exc)) from None
    report.print(
        f"rebuilt {result.start:%Y-%m-%d %H:%M} .. {result.end:%Y-%m-%d %H:%M} UTC: {result.readings} readings, "
        f"{result.windows} windows, {result.panel_buckets} panel buckets, {result.panels_latest} panels, "
        f"{result.panel_days} panel-days over {len(result.days)} day(s); {result.seconds:.1f} s "
        f"({result.readings_per_second:,.0f} readings/s)", highlight=False, soft_wrap=True)
