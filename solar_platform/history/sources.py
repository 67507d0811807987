"""A range's readings as a Spark DataFrame (`derive.INPUT_COLUMNS`): from panelData over JDBC, or from
the raw archive, resolved to the rows panelData keeps by the archive's one rule (`INGEST_ORDER`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql.pandas.types import from_arrow_schema

from solar_platform.contracts import PANEL_ID, POWER, STATUS
from solar_platform.history.derive import INPUT_COLUMNS, TIME_US
from solar_platform.runtime.jdbc import MARIADB_DRIVER, jdbc_url
from solar_platform.settings import Settings
from solar_platform.storage.db import READINGS
from solar_platform.storage.history.archive import INGEST_ORDER, KEY, SCHEMA, TIME, Archive

ARCHIVE_SCHEMA = from_arrow_schema(SCHEMA)
# Rows the MariaDB driver streams to Spark per round trip (it buffers a whole result without one).
JDBC_FETCH_SIZE = 10_000
_EPOCH = datetime(1970, 1, 1)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _between(column: Column, start: datetime, end: datetime) -> Column:
    """`start <= column < end` for naive UTC bounds, whatever the Python process's zone (a naive
    datetime literal would be read in it)."""
    lower, upper = (sf.timestamp_micros(sf.lit(_micros(moment))) for moment in (start, end))
    return (column >= lower) & (column < upper)


def raw_readings(spark: SparkSession, settings: Settings, start: datetime, end: datetime,
                 slice_minutes: int = 15) -> DataFrame:
    """panelData's readings with `time_data` in `[start, end)` (naive UTC), one JDBC query per slice of
    `slice_minutes`, each an index range (and a day partition) of its own, READ COMMITTED."""
    user, password = settings.mysql_credentials()
    predicates, a = [], start
    while a < end:
        b = min(a + timedelta(minutes=slice_minutes), end)
        predicates.append(f"time_data >= '{a:%Y-%m-%d %H:%M:%S.%f}' AND time_data < '{b:%Y-%m-%d %H:%M:%S.%f}'")
        a = b
    frame = spark.read.jdbc(jdbc_url(settings, batch_options=""), READINGS, predicates=predicates, properties={
        "user": user, "password": password, "driver": MARIADB_DRIVER, "fetchsize": str(JDBC_FETCH_SIZE),
        "sessionInitStatement": "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"})
    return frame.select(PANEL_ID, sf.unix_micros(TIME).alias(TIME_US), POWER, STATUS)


def archive_frame(spark: SparkSession, archive: Archive, days: list[date]) -> DataFrame | None:
    """Every archived row of these UTC days (unresolved); None when none of them has a file."""
    files = [archive.spark_path(path) for day in days for path in archive.files(day)]
    if not files:
        return None
    return spark.read.schema(ARCHIVE_SCHEMA).parquet(*files)


def resolved(rows: DataFrame) -> DataFrame:
    """The archive's rule: per (panel, time) the row greatest in `INGEST_ORDER` (a struct compares its
    fields in order), every archive column kept."""
    latest = sf.max(sf.struct(*INGEST_ORDER, *(c for c in rows.columns if c not in (*KEY, *INGEST_ORDER))))
    picked = rows.groupBy(*KEY).agg(latest.alias("kept"))
    return picked.select(*KEY, *(sf.col(f"kept.{c}").alias(c) for c in rows.columns if c not in KEY)).select(
        *rows.columns)


def archived_readings(spark: SparkSession, archive: Archive, start: datetime, end: datetime) -> DataFrame:
    """The readings panelData keeps (the archive's rule) with `time_data` in `[start, end)`; empty when
    the archive has no file for those days."""
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    rows = archive_frame(spark, archive, days)
    if rows is None:
        return spark.createDataFrame([], "Panel_id string, time_us long, power_panel double, current_status byte")
    rows = rows.where(_between(sf.col(TIME), start, end))
    return resolved(rows).select(PANEL_ID, sf.unix_micros(TIME).alias(TIME_US), POWER, STATUS).select(*INPUT_COLUMNS)
