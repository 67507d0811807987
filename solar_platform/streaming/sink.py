"""The foreachBatch sink: one micro-batch of Kafka records -> panelData, derived tables, dead letters.

Each micro-batch reads its Kafka records once and:

1. parses them (`parse.parse_records`) and applies the clock rules (`with_clock_rules`);
2. stages the valid readings (one per panel and time, the last offset wins) over JDBC, tagged with
   this job's id, once it has checked that it still holds the stage lock;
3. in one transaction: checks the lock again, merges the staged readings into `panelData` with
   every derived table kept in step, inserts the rejects into `dead_letters` and records the
   progress row (the heartbeat, with a per-step profile). The SQL is `storage.ingest`'s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf
from sqlalchemy import Engine

from solar_platform.contracts import RejectReason
from solar_platform.runtime.jdbc import jdbc_append
from solar_platform.settings import Settings
from solar_platform.storage import db, ingest
from solar_platform.streaming import parse
from solar_platform.streaming.stage_lock import StageLock

log = logging.getLogger(__name__)


def with_clock_rules(parsed: DataFrame, ingested_at: datetime, settings: Settings) -> DataFrame:
    """Reject readings stamped too far ahead of `ingested_at`, or before the configured floor.

    A reading stamped more than `max_clock_skew_seconds` after `ingested_at` is `time_in_future`,
    one before `min_reading_time` is `time_out_of_range`, so one wrong clock moves nobody else's
    data. `ingested_at` is one instant per batch (the platform's clock when the batch started), so
    a replayed batch judges every reading the same way within itself.
    """
    # Aware datetimes: pyspark turns a naive one into an instant with the host's zone, not UTC.
    latest_allowed = (ingested_at + timedelta(seconds=settings.max_clock_skew_seconds)).astimezone(UTC)
    floor = settings.min_reading_time.astimezone(UTC)
    in_future, too_old = RejectReason.TIME_IN_FUTURE.value, RejectReason.TIME_OUT_OF_RANGE.value
    reason = (
        sf.when(sf.col(parse.REJECT_REASON).isNotNull(), sf.col(parse.REJECT_REASON))
        .when(sf.col(parse.TIME) > sf.lit(latest_allowed), sf.lit(in_future))
        .when(sf.col(parse.TIME) < sf.lit(floor), sf.lit(too_old))
    )
    valid = reason.isNull()
    return parsed.select(
        *[column for column in parsed.columns if column not in (*parse.READING_COLUMNS, parse.REJECT_REASON)],
        *[sf.when(valid, sf.col(column)).alias(column) for column in parse.READING_COLUMNS],
        reason.alias(parse.REJECT_REASON),
    )


def last_offset_wins(readings: DataFrame) -> DataFrame:
    """One row per (panel, time) in a micro-batch: the one with the highest Kafka offset.

    A replayed or re-sent reading can repeat within a batch; panelData's upsert would otherwise
    apply them in an arbitrary order. Last offset wins, as the upsert does across batches.
    """
    order = sf.struct(sf.col("partition"), sf.col("offset"))
    last = sf.max_by(sf.struct(sf.col(parse.POWER), sf.col(parse.STATUS)), order)
    return (
        readings.groupBy(parse.PANEL_ID, parse.TIME)
        .agg(last.alias("_last"))
        .select(parse.PANEL_ID, f"_last.{parse.POWER}", f"_last.{parse.STATUS}", parse.TIME)
    )


def _utc_naive(epoch_micros: int | None) -> datetime | None:
    """What a DATETIME column holds: the UTC wall clock, from epoch microseconds."""
    if epoch_micros is None:
        return None
    return datetime(1970, 1, 1) + timedelta(microseconds=int(epoch_micros))


def _dead_letter_rows(batch: DataFrame) -> Iterator[dict[str, object]]:
    rejects = parse.rejected_records(batch).select(
        "topic", "partition", "offset", sf.substring("key", 1, ingest.DEAD_LETTER_KEY_BYTES).alias("key"),
        sf.col("value").alias("payload"), sf.col(parse.REJECT_REASON).alias("reason"),
        sf.unix_micros("timestamp").alias("timestamp"),
    )
    for row in rejects.toLocalIterator():
        record = row.asDict()
        record["timestamp"] = _utc_naive(record["timestamp"])
        for field in ("key", "payload"):
            if record[field] is not None:
                record[field] = bytes(record[field])
        yield record


class _StepTimer:
    """Wall time per named step of a batch, for the log line that says where a slow batch went."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - started

    def __str__(self) -> str:
        return _durations(self.seconds)


def _durations(seconds: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f} s" for name, value in seconds.items())


class ReadingsSink:
    """foreachBatch of the query named `query_name`: Kafka records -> panelData, derived tables, dead letters."""

    def __init__(self, settings: Settings, engine: Engine, lock: StageLock, spark: SparkSession,
                 query_name: str) -> None:
        self.settings = settings
        self.engine = engine
        self.lock = lock
        self.query_name = query_name
        self._spark = spark
        self._query_id: str | None = None

    def query_id(self) -> str:
        """The running query's id (stable across restarts: the checkpoint's)."""
        if self._query_id is None:
            self._query_id = next(
                (str(query.id) for query in self._spark.streams.active if query.name == self.query_name), None)
        if self._query_id is None:  # a batch only runs inside its (registered) query
            raise RuntimeError(f"no active streaming query named {self.query_name!r}")
        return self._query_id

    def __call__(self, records: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        ingested_at = datetime.now(UTC)
        steps = _StepTimer()
        records = records.select("key", "value", "topic", "partition", "offset", "timestamp").persist()
        parsed: DataFrame | None = None
        try:
            with steps("kafka_read"):
                records.count()
            parsed = with_clock_rules(
                parse.parse_records(records, self.settings.source_timezone), ingested_at, self.settings)
            # Payloads are kept only for rejects (they are the bulk otherwise).
            reject = sf.col(parse.REJECT_REASON).isNotNull()
            parsed = parsed.select(
                "topic", "partition", "offset", "timestamp", *parse.READING_COLUMNS, parse.REJECT_REASON,
                sf.when(reject, sf.col("key")).alias("key"), sf.when(reject, sf.col("value")).alias("value"),
            ).persist()
            with steps("parse"):
                stats = parsed.agg(
                    sf.count(sf.lit(1)).alias("rows_in"),
                    sf.count(sf.col(parse.REJECT_REASON)).alias("rejects"),
                    # Epoch microseconds: pyspark would hand back a timestamp in the host's zone.
                    sf.unix_micros(sf.max(parse.TIME)).alias("max_event_micros"),
                ).first()
            records.unpersist()
            assert stats is not None
            rows_in, rejects = int(stats["rows_in"]), int(stats["rejects"])
            job_id = self.lock.job_id
            with steps("stage"):
                with self.engine.begin() as connection:
                    # Only a job that still holds the lock may touch the stage, and only its own rows.
                    self.lock.verify(connection)
                    ingest.clear_stage(connection, job_id)
                if rows_in > rejects:
                    staged = last_offset_wins(parse.valid_readings(parsed)).withColumn(ingest.STAGE_JOB_ID,
                                                                                       sf.lit(job_id))
                    jdbc_append(staged.select(*ingest.STAGE_COLUMNS), self.settings, db.STAGE_READINGS)
            dead = _dead_letter_rows(parsed) if rejects else iter(())
            timings: dict[str, float] = {}
            with steps("commit"), self.engine.begin() as connection:
                self.lock.verify(connection)
                written = ingest.merge_stage(connection, job_id, self.settings.energy_max_gap_seconds, timings)
                ingest.insert_dead_letters(connection, dead)
                profile = {f"{name}_ms": round(seconds * 1000) for name, seconds in steps.seconds.items()}
                profile.update({f"sql_{name}_ms": round(seconds * 1000) for name, seconds in timings.items()})
                ingest.record_progress(
                    connection, query_id=self.query_id(), query_name=self.query_name, batch_id=batch_id,
                    rows_in=rows_in, rows_written=written, dead_letters=rejects,
                    max_event_time=_utc_naive(stats["max_event_micros"]),
                    duration_ms=int((time.monotonic() - started) * 1000), profile=profile,
                )
            log.info("batch %d: %d in, %d new or changed, %d rejected (%s; sql %s)", batch_id, rows_in, written,
                     rejects, steps, _durations(timings))
        finally:
            records.unpersist()
            if parsed is not None:
                parsed.unpersist()
