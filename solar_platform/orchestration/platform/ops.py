"""Upkeep ops: retention of the raw tables (daily) and the rebuild of derived tables from raw."""

from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import Field

from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.storage import retention
from solar_platform.storage.rebuild import RebuildError


@dg.op(description="Retention of every growing table: make the raw tables' day partitions ahead, drop the days "
                   "older than the raw retention, prune stream_progress and dead_letters, fold energy buckets "
                   "older than SOLAR_BUCKET_RETENTION_DAYS into their daily rollups, and drop the archive's days "
                   "past SOLAR_ARCHIVE_RETENTION_DAYS (none by default). Figures as metadata.")
def apply_retention(context: dg.OpExecutionContext, solar: SolarSettingsResource) -> dg.Output[int]:
    settings = solar.get()
    report = retention.run_retention(settings)
    metadata = {k: dg.MetadataValue.json(v) if isinstance(v, dict | list) else v
                for k, v in report.metadata().items()}
    metadata["raw_retention_days"] = settings.raw_retention_days
    metadata["stream_progress_retention_hours"] = settings.stream_progress_retention_hours
    metadata["bucket_retention_days"] = settings.bucket_retention_days
    metadata["dead_letter_retention_days"] = settings.dead_letter_retention_days
    metadata["archive_retention_days"] = settings.archive_retention_days
    context.log.info(f"retention: {report.metadata()}")
    return dg.Output(int(metadata["partitions_dropped"]), metadata=metadata)


def _instant(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class RebuildConfig(dg.Config):
    start: str = Field(description="From, ISO 8601 (UTC if no zone), e.g. 2026-11-20.")
    end: str = Field(description="To, exclusive, e.g. 2026-11-23.")
    chunk_minutes: int = Field(60, description="Rebuild in chunks of this many minutes (a multiple of 15).")
    panels_per_chunk: int = Field(20_000, description="Panels per write transaction (0 = a chunk's all at once).")
    engine: str = Field("spark", description="spark: on Spark, from panelData or the raw archive; sql: inside "
                                             "MariaDB, from panelData only.")


@dg.op(description="Recompute windows, energy buckets, panel_latest, the registry's first/last seen and the "
                   "daily rollups of the days touched over [start, end): from panelData where it still holds the "
                   "range, from the raw archive where not, on Spark (or in MariaDB), beside the live stream.")
def rebuild_from_raw(context: dg.OpExecutionContext, config: RebuildConfig,
                     solar: SolarSettingsResource) -> dg.Output[int]:
    from solar_platform.history.rebuild import rebuild

    try:
        start, end = _instant(config.start), _instant(config.end)
    except ValueError as exc:
        raise dg.Failure(f"start/end must be ISO 8601 timestamps: {exc}") from exc

    def progress(phase: str, done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            context.log.info(f"{phase}: {done}/{total}")

    try:
        report = rebuild(solar.get(), start, end, engine=config.engine,  # type: ignore[arg-type]
                         chunk=timedelta(minutes=config.chunk_minutes), panels_per_chunk=config.panels_per_chunk,
                         progress=progress)
    except RebuildError as exc:
        raise dg.Failure(str(exc)) from exc
    metadata = {k: dg.MetadataValue.json(v) if isinstance(v, list) else v for k, v in report.metadata().items()}
    return dg.Output(report.readings, metadata=metadata)
