"""`solar-platform fleet run`: the simulated fleet, live or fast-forwarded over a past range."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from solar_platform.fleet.faults import FaultSpecError
from solar_platform.fleet.live import run_live
from solar_platform.fleet.publisher import FleetError, PublishSummary, expected_messages, fast_forward
from solar_platform.runtime.signals import stop_on_signals
from solar_platform.settings import Settings, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False)
console = Console(stderr=True)  # progress and diagnostics
report = Console()  # the run's summary: the result, on stdout

HEARTBEAT_SECONDS = 60.0  # live mode prints one status line about this often


@app.callback()
def fleet() -> None:
    """The simulated panel fleet."""  # a callback keeps `run` a sub-command even when it is the only one


def parse_moment(text: str) -> datetime:
    """An ISO 8601 timestamp; naive means UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO timestamp: {text!r} (e.g. 2024-06-01T00:00:00Z)") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _announce_stop(signal_name: str) -> None:
    console.print(f"[yellow]{signal_name}: finishing up, flushing what was sent…[/]")


def _print_summary(summary: PublishSummary) -> None:
    report.print(
        f"{summary.mode}: {summary.messages_sent:,} messages ({summary.panels:,} panels × {summary.cycles:,} "
        f"cycles) to {summary.topic!r} in {summary.seconds:.1f} s = {summary.messages_per_second:,.0f} msg/s; "
        f"seed {summary.seed}"
    )
    if summary.mode == "live" and summary.cycles:
        report.print(
            f"publishing took {summary.busy_seconds / summary.cycles:.2f} s per cycle on average; "
            f"{summary.cycles_late:,} cycles started late, {summary.cycles_acked_late:,} not acknowledged within "
            f"their interval (slowest {summary.slowest_cycle_ack_s:.1f} s)"
        )
    if summary.mode == "live" and (summary.messages_spooled or summary.messages_drained or summary.spool_records):
        report.print(f"spool: {_spool_line(summary)}")
    if summary.stopped_early:
        report.print("[yellow]stopped before the end (signal)[/]")
    if summary.cycles_skipped:
        report.print(f"[red]{summary.cycles_skipped:,} cycles not generated: the spool was full (policy block)[/]")
    if not summary.all_delivered:
        report.print(
            f"[red]{summary.messages_failed:,} failed, {summary.messages_dropped:,} dropped from the full spool "
            f"and {summary.messages_unconfirmed:,} unconfirmed of {summary.messages_sent:,} messages[/]"
        )
        for error in summary.first_errors:
            report.print(f"[red]  {escape(error)}[/]")


def _spool_line(summary: PublishSummary) -> str:
    """The spool's figures, for the heartbeat and the summary (README: the fleet's spool)."""
    return (
        f"{summary.messages_spooled:,} readings spooled, {summary.messages_drained:,} drained, "
        f"{summary.messages_dropped:,} dropped; {summary.spool_records:,} held "
        f"({summary.spool_bytes / 2**20:,.1f} MiB); "
        f"Kafka away {summary.kafka_outages:,} times, {summary.kafka_unavailable_s:,.0f} s"
    )


@app.command("run")
def run(
    panels: int | None = typer.Option(None, "--panels", min=1, help="Fleet size (settings: panels, CONTAINERS)."),
    interval: float | None = typer.Option(
        None, "--interval", min=0.001, help="Seconds between cycles (settings: interval_seconds, TIME)."
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="Random seed; the same seed gives the same fleet (settings: seed, SOLAR_SEED)."
    ),
    cycles: int | None = typer.Option(None, "--cycles", min=1, help="Live mode: stop after N cycles."),
    start: str | None = typer.Option(
        None, "--from", help="Fast-forward: first simulated instant (ISO 8601, UTC if naive)."
    ),
    end: str | None = typer.Option(None, "--to", help="Fast-forward: end of the range (exclusive)."),
    topic: str | None = typer.Option(None, "--topic", help="Kafka topic (settings: topic, TOPIC)."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", help="Kafka bootstrap HOST:PORT[,HOST:PORT]."),
    faults: str | None = typer.Option(
        None, "--faults", help="Fault spec to inject: inline JSON or a JSON file (README, Fault detection)."
    ),
) -> None:
    """Publish one reading per panel per cycle: live every --interval, or fast-forward over --from/--to.

    Without --seed the fleet uses SOLAR_SEED (fixed by default, so a panel keeps its Pmax across
    restarts); the seed used is printed, so any run can be repeated.
    """
    if (start is None) != (end is None):
        raise typer.BadParameter("--from and --to go together")
    if start is not None and cycles is not None:
        raise typer.BadParameter("--cycles is for live mode; fast-forward runs over --from/--to")
    time_range = (parse_moment(start), parse_moment(end)) if start is not None and end is not None else None
    settings = load_settings(
        panels=panels, interval_seconds=interval, seed=seed, topic=topic, kafka_bootstrap_override=bootstrap
    )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # kafka-python logs every retry of a broker it cannot reach; what matters (failed deliveries,
    # missing topic, no brokers) reaches the summary or a one-line error instead.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    stop = threading.Event()
    try:
        with stop_on_signals(stop, on_signal=_announce_stop, second_interrupt_raises=True):
            if time_range is not None:
                summary = _fast_forward(settings, *time_range, stop, faults)
            else:
                summary = _live(settings, cycles, stop, faults)
    except (FleetError, FaultSpecError) as exc:
        console.print(f"[red]error: {escape(str(exc))}[/]", soft_wrap=True)  # one line, however long
        raise typer.Exit(2) from exc
    _print_summary(summary)
    if not summary.all_delivered:
        raise typer.Exit(1)


def _fast_forward(
    settings: Settings, start: datetime, end: datetime, stop: threading.Event, faults: str | None = None
) -> PublishSummary:
    try:
        total = expected_messages(settings, start, end)
    except ValueError as exc:
        raise FleetError(str(exc)) from exc
    columns = (
        TextColumn("[bold]fast-forward"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("messages", total=total)
        return fast_forward(
            settings,
            start=start,
            end=end,
            stop=stop,
            on_progress=lambda sent: progress.update(task, completed=sent),
            faults=faults,
        )


def _live(settings: Settings, cycles: int | None, stop: threading.Event, faults: str | None = None) -> PublishSummary:
    every = max(1, round(HEARTBEAT_SECONDS / settings.interval_seconds))
    console.print(
        f"live: {settings.panels:,} panels every {settings.interval_seconds:g} s to {settings.topic!r} "
        f"on {settings.kafka_bootstrap} (Ctrl-C or SIGTERM stops)"
    )

    def heartbeat(summary: PublishSummary) -> None:
        slot = summary.cycles + summary.cycles_skipped
        if slot == 1 or slot % every == 0:
            console.print(
                f"cycle {summary.cycles:,}: {summary.messages_delivered:,}/{summary.messages_sent:,} delivered, "
                f"{summary.messages_failed:,} failed, {summary.cycles_late:,} late, seed {summary.seed}; "
                f"spool: {_spool_line(summary)}"
            )

    return run_live(settings, cycles=cycles, stop=stop, on_cycle=heartbeat, faults=faults)
