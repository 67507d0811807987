"""The foreachBatch sink: one micro-batch of Kafka records -> panelData, derived tables, dead letters.

Each micro-batch reads its Kafka records once and:

1. collects them to the driver as one Arrow table, and judges them with the contract's parser and
   the clock rules (`parse`): valid readings, and the rejects with their raw records;
2. archives them (`storage.history.archive`): a Parquet file per UTC day at a path named by the
   query and batch id, written before the transaction below, so a replay rewrites the same file;
3. in one MariaDB transaction (`storage.stream`): checks the stage lock, skips the batch if its
   progress row exists (a replay of a batch that committed), writes the readings (appends in bulk,
   corrections exactly), inserts the rejects into `dead_letters` and records the progress row
   (the heartbeat and the replay guard, with a per-step profile);
4. keeps the panels' latest readings in memory for the next batch, once the transaction committed.

While a batch runs, a pulse thread refreshes `stream_pulse` every few seconds: the heartbeat
sensor tells a slow batch from a stuck stream by it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from sqlalchemy import Engine

from solar_platform.settings import Settings
from solar_platform.storage.history.archive import Archive, write_batch
from solar_platform.storage.stream import progress
from solar_platform.storage.stream.appends import AppendConflict
from solar_platform.storage.stream.commit import commit_batch
from solar_platform.storage.stream.latest import LatestReadings, record_fleet_now
from solar_platform.storage.stream.readings import COLUMNS as READING_COLUMNS
from solar_platform.storage.stream.readings import Readings, from_arrow
from solar_platform.streaming import parse
from solar_platform.streaming.stage_lock import StageLock

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1)


def _utc_naive(epoch_micros: int | None) -> datetime | None:
    """What a DATETIME column holds: the UTC wall clock, from epoch microseconds."""
    if epoch_micros is None:
        return None
    return _EPOCH + timedelta(microseconds=int(epoch_micros))


def dead_letter_rows(rejected: pa.Table, topic: str) -> Iterator[dict[str, object]]:
    """The rejects of a batch (of the one topic the query reads) as `dead_letters` rows, the key cut
    to its column."""
    for row in rejected.to_pylist():
        key = row["key"]
        yield {"topic": topic, "partition": row["partition"], "offset": row["offset"],
               "key": None if key is None else bytes(key[: progress.DEAD_LETTER_KEY_BYTES]),
               "payload": row["value"], "reason": row[parse.REJECT_REASON],
               "timestamp": _utc_naive(row[parse.TIMESTAMP_MICROS])}


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


class BatchPulse:
    """Refreshes `stream_pulse` every `every_s` while a batch is in flight, from a thread of its own
    (autocommitted, outside the batch's transaction). A failure to write it is logged, never raised:
    the pulse only informs the heartbeat sensor."""

    def __init__(self, engine: Engine, query_name: str, every_s: float) -> None:
        self._engine = engine
        self._query_name = query_name
        self._every_s = every_s
        self._batch: tuple[int, datetime] | None = None
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="stream-pulse", daemon=True)
        self._thread.start()

    def _write(self, batch_id: int, started_at: datetime, in_flight: bool) -> None:
        try:
            with self._engine.begin() as connection:
                progress.record_pulse(connection, query_name=self._query_name, batch_id=batch_id,
                                      started_at=started_at.replace(tzinfo=None), in_flight=in_flight)
        except Exception:  # noqa: BLE001 - MariaDB away: the batch itself will say so
            log.debug("could not write the stream pulse", exc_info=True)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._every_s)
            self._wake.clear()
            with self._lock:
                batch = self._batch
            if batch is not None:
                self._write(*batch, in_flight=True)

    def begin(self, batch_id: int, started_at: datetime) -> None:
        with self._lock:
            self._batch = (batch_id, started_at)
        self._wake.set()

    def end(self, batch_id: int, started_at: datetime) -> None:
        with self._lock:
            self._batch = None
        self._write(batch_id, started_at, in_flight=False)


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
        self.latest = LatestReadings()  # loaded in the first batch's transaction
        self.archive = Archive.of(settings)
        self.pulse = BatchPulse(engine, query_name, every_s=min(5.0, settings.stream_stale_after_seconds / 4))

    def query_id(self) -> str:
        """The running query's id (stable across restarts: the checkpoint's)."""
        if self._query_id is None:
            self._query_id = next(
                (str(query.id) for query in self._spark.streams.active if query.name == self.query_name), None)
        if self._query_id is None:  # a batch only runs inside its (registered) query
            raise RuntimeError(f"no active streaming query named {self.query_name!r}")
        return self._query_id

    def __call__(self, records: DataFrame, batch_id: int) -> None:
        ingested_at = datetime.now(UTC)
        self.pulse.begin(batch_id, ingested_at)
        try:
            self._run_batch(records, batch_id, ingested_at)
        finally:
            self.pulse.end(batch_id, ingested_at)

    def _run_batch(self, records: DataFrame, batch_id: int, ingested_at: datetime) -> None:
        started = time.monotonic()
        steps = _StepTimer()
        settings = self.settings
        with steps("kafka_read"):
            collected = parse.collect_records(records)
        with steps("parse"):
            judged = parse.judge(collected, settings.source_timezone, ingested_at, settings.max_clock_skew_seconds,
                                 settings.min_reading_time)
            readings = from_arrow(judged.readings.select(list(READING_COLUMNS)))
        rejected, rows_in = judged.rejected, judged.records
        with steps("archive"):  # before the commit: a committed batch is always archived
            write_batch(self.archive, self.query_id(), batch_id, ingested_at, judged.readings)
        timings: dict[str, float] = {}
        try:
            outcome = self._commit(batch_id, readings, rejected, rows_in, started, steps, timings, all_exact=False)
        except AppendConflict as conflict:
            log.warning("batch %d: %s; panel_latest is behind panelData (a bulk import without a rebuild?): "
                        "committing the whole batch by the exact path", batch_id, conflict)
            self.latest = LatestReadings()
            timings.clear()
            outcome = self._commit(batch_id, readings, rejected, rows_in, started, steps, timings, all_exact=True)
        if outcome is None:
            log.info("batch %d: already committed (a replay after a restart); skipped", batch_id)
            return
        log.info("batch %d: %d in, %d appended, %d corrected, %d rejected (%s; sql %s)", batch_id, rows_in,
                 outcome[0], outcome[1], rejected.num_rows, steps, _durations(timings))

    def _commit(self, batch_id: int, readings: Readings, rejected: pa.Table, rows_in: int, started: float,
                steps: _StepTimer, timings: dict[str, float], *, all_exact: bool) -> tuple[int, int] | None:
        """The batch's one transaction; None when its progress row says it committed already."""
        with steps("commit"), self.engine.begin() as connection:
            # Only a job that still holds the lock may write, and only once per batch.
            self.lock.verify(connection)
            if progress.batch_committed(connection, self.query_id(), batch_id):
                return None
            committed = commit_batch(connection, readings, self.latest,
                                     self.settings.energy_max_gap_seconds, all_exact=all_exact, timings=timings)
            progress.insert_dead_letters(connection, dead_letter_rows(rejected, self.settings.topic))
            if len(readings):
                record_fleet_now(connection, committed.latest, as_of=datetime.now(UTC),
                                 reference_us=readings.frontier_us(),
                                 horizon_seconds=self.settings.current_power_horizon_seconds)
            times = readings.time_us
            profile = {f"{name}_ms": round(seconds * 1000) for name, seconds in steps.seconds.items()}
            profile.update({f"sql_{name}_ms": round(seconds * 1000) for name, seconds in timings.items()})
            progress.record_progress(
                connection, query_id=self.query_id(), query_name=self.query_name, batch_id=batch_id,
                rows_in=rows_in, rows_written=committed.appended + committed.corrected,
                dead_letters=rejected.num_rows, appended=committed.appended, corrected=committed.corrected,
                max_event_time=_utc_naive(int(times.max())) if times.size else None,
                frontier_time=_utc_naive(readings.frontier_us()),
                duration_ms=int((time.monotonic() - started) * 1000), profile=profile,
            )
        self.latest = committed.latest
        return committed.appended, committed.corrected

