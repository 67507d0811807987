"""The raw archive as a Dagster asset: one partition per UTC day, compacted on Spark and checked
against panelData while panelData still holds the day."""

from datetime import date

import dagster as dg

from solar_platform.history.compaction import check_day, compact_day
from solar_platform.orchestration import keys
from solar_platform.orchestration.resources import SolarSettingsResource, SolarSparkResource
from solar_platform.orchestration.rollups.partitions import DAILY_START
from solar_platform.storage import db
from solar_platform.storage.history.archive import Archive

GROUP = "history"
CHECK = "matches_panel_data"

utc_days = dg.DailyPartitionsDefinition(start_date=DAILY_START, timezone="UTC")


@dg.asset(key=keys.RAW_ARCHIVE, group_name=GROUP, kinds={"parquet", "spark"}, partitions_def=utc_days,
          deps=[keys.PANEL_DATA],
          check_specs=[dg.AssetCheckSpec(CHECK, asset=keys.RAW_ARCHIVE, description=(
              "The compacted day equals panelData's while panelData still holds it: the same number of rows, "
              "and for a sample of panels (SOLAR_ARCHIVE_CHECK_SAMPLE_PANELS) the same rows with the same "
              "values. A day retention dropped from panelData is not compared."))])
def raw_archive(context: dg.AssetExecutionContext, solar: SolarSettingsResource,
                spark: SolarSparkResource):  # noqa: ANN201
    """Every reading the stream accepted, as Parquet by UTC day (SOLAR_ARCHIVE_URI; README "Raw archive"):
    the stream writes a file per batch; materializing a day compacts it into at most
    SOLAR_ARCHIVE_COMPACTED_FILES_PER_DAY files, sorted by hour, panel and time, keeping the rows panelData
    keeps (the archive's one resolution rule). Rebuilds read it where panelData's retention dropped
    the readings. Kept for ever unless SOLAR_ARCHIVE_RETENTION_DAYS is set."""
    settings = solar.get()
    archive = Archive.of(settings)
    day = date.fromisoformat(context.partition_key)
    compaction = compact_day(spark.spark_session, archive, day, settings.archive_compacted_files_per_day)
    check = check_day(spark.spark_session, archive, db.engine(settings), settings, day)
    context.log.info(f"{day}: {compaction.files_before} -> {compaction.files_after} files, "
                     f"{compaction.rows_kept} rows; check {'passed' if check.passed else 'FAILED'}")
    yield dg.MaterializeResult(metadata={**compaction.metadata(), "location": archive.location})
    yield dg.AssetCheckResult(check_name=CHECK, passed=check.passed, severity=dg.AssetCheckSeverity.ERROR,
                              metadata={k: dg.MetadataValue.json(v) if isinstance(v, list) else v
                                        for k, v in check.metadata().items()})
