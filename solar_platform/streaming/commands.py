"""`solar-platform stream ...`: run the Spark Structured Streaming job."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from solar_platform.runtime.host import SetupError
from solar_platform.settings import SettingsError, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


class TriggerChoice(StrEnum):
    continuous = "continuous"
    available_now = "available-now"


class StartingOffsets(StrEnum):
    earliest = "earliest"
    latest = "latest"


@app.callback()
def stream() -> None:
    """The Spark Structured Streaming job (a group, so `stream run` stays `run` on its own too)."""


@app.command("run")
def run(
    trigger: Annotated[TriggerChoice, typer.Option(
        help="continuous: a micro-batch every SOLAR_STREAM_TRIGGER_SECONDS until stopped (SIGTERM/Ctrl-C); "
             "available-now: process what is in the topic, then exit 0.",
    )] = TriggerChoice.continuous,
    master: Annotated[str | None, typer.Option(
        help="Spark master URL (default: SOLAR_SPARK_MASTER, else the local cluster when "
             "SOLAR_SPARK_WORKERS > 0, else local[*]).")] = None,
    topic: Annotated[str | None, typer.Option(help="Kafka topic (default: SOLAR_TOPIC / TOPIC).")] = None,
    starting_offsets: Annotated[StartingOffsets | None, typer.Option(
        help="earliest|latest: where a new checkpoint starts reading (ignored once a checkpoint exists).",
    )] = None,
) -> None:
    """Kafka -> contract -> MySQL: panelData, panelDataAgg (30 s means), dead_letters, stream_progress."""
    from solar_platform.streaming.errors import StreamQueryFailed
    from solar_platform.streaming.job import run_job

    try:
        settings = load_settings(
            spark_master=master, topic=topic,
            stream_starting_offsets=starting_offsets.value if starting_offsets else None,
        )
        run_job(settings, trigger.value)  # type: ignore[arg-type]
    except (SetupError, SettingsError) as exc:  # includes StreamAlreadyRunning
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    except StreamQueryFailed as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    sys.stdout.flush()
