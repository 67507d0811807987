"""`solar-platform notify ...`: deliver alert notifications now, and show their state."""

from __future__ import annotations

import typer
from rich.console import Console

from solar_platform.settings import load_settings
from solar_platform.storage import db
from solar_platform.storage import notifications as outbox

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()


@app.command("deliver")
def deliver(
    budget: float = typer.Option(60.0, min=1, help="Stop sending after this many seconds (the rest waits)."),
) -> None:
    """Plan pending alert events into messages and deliver what is due, as Dagster's sensor does.

    The deliver_notifications sensor runs this every 30 s. Exit code 1 when a delivery failed.
    """
    from solar_platform.notifications.delivery import describe, run_once

    settings = load_settings()
    report = run_once(db.engine(settings), settings, budget_seconds=budget)
    console.print(describe(report))
    for error in report.errors:
        console.print(f"[red]failed[/] {error}")
    if report.failed or report.abandoned:
        raise typer.Exit(1)


@app.command("status")
def status() -> None:
    """Pending, failing and recently abandoned notifications, and the newest error."""
    from datetime import UTC, datetime

    settings = load_settings()
    with db.engine(settings).connect() as conn:
        state = outbox.delivery_status(conn, datetime.now(UTC).replace(tzinfo=None))
    console.print(f"channels: {', '.join(settings.notify_channels) or 'none configured'}")
    console.print(f"events waiting to be planned: {state.events_waiting}")
    console.print(f"pending deliveries: {state.pending} ({state.failing} failing), oldest from "
                  f"{state.oldest_pending or '-'}; abandoned in the last 24 h: {state.abandoned_recently}")
    if state.last_error:
        console.print(f"last error: {state.last_error}")
