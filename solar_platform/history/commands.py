"""`solar-platform rebuild --from T --to T`: every derived table recomputed over a range, from panelData
where it still holds the range and from the raw archive where it does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from solar_platform.history.rebuild import ENGINES, rebuild
from solar_platform.settings import load_settings
from solar_platform.storage.rebuild import RebuildError, align, chunks

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
    chunk_minutes: int = typer.Option(60, "--chunk-minutes", help="Minutes per chunk (a multiple of 15)."),
    panels_per_chunk: int = typer.Option(20_000, "--panels-per-chunk",
                                         help="Panels per write transaction (0 = all of a chunk's at once)."),
    engine: str = typer.Option("spark", "--engine",
                               help="spark: on Spark, from panelData or the archive; sql: inside MariaDB, "
                                    "from panelData only."),
) -> None:
    """Recompute windows, energy buckets, panel_latest, the registry's first/last seen and the daily
    rollups of the days touched, over [from, to), beside the live stream. Idempotent. A range with no
    source (panelData dropped it and the archive does not have it) changes nothing."""
    a, b = _moment(start, "--from"), _moment(end, "--to")
    if engine not in ENGINES:
        raise _fail(f"--engine: one of {', '.join(ENGINES)}, not {engine!r}")
    try:
        chunks(*align(a, b), timedelta(minutes=chunk_minutes))  # a bad range or chunk: one line, before Spark
    except RebuildError as exc:
        raise _fail(str(exc)) from None
    settings = load_settings()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        tasks: dict[str, object] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total)
            progress.update(tasks[phase], completed=done, total=total)  # type: ignore[arg-type]

        try:
            result = rebuild(settings, a, b, engine=engine, chunk=timedelta(minutes=chunk_minutes),  # type: ignore[arg-type]
                             panels_per_chunk=panels_per_chunk, progress=update)
        except RebuildError as exc:
            raise _fail(str(exc)) from None
    archived = f", {result.chunks_from_archive} of {result.chunks} chunks from the archive" \
        if result.chunks_from_archive else ""
    report.print(
        f"rebuilt {result.start:%Y-%m-%d %H:%M} .. {result.end:%Y-%m-%d %H:%M} UTC: {result.readings} readings, "
        f"{result.windows} windows, {result.panel_buckets} panel buckets, {result.panels_latest} panels, "
        f"{result.panel_days} panel-days over {len(result.days)} day(s); {result.seconds:.1f} s "
        f"({result.readings_per_second:,.0f} readings/s, {result.engine}{archived})", highlight=False, soft_wrap=True)
