"""The streaming job: Kafka -> contract -> MySQL, exactly once, as two Structured Streaming queries.

- `readings`: every record is parsed (`parse.parse_records`); valid readings are upserted into
  `panelData`, rejects are kept whole in `dead_letters`.
- `windows`: valid readings, watermarked, in tumbling windows per panel: the mean power and the
  reading count, upserted into `panelDataAgg` in update mode (a window is rewritten each time it
  changes, never appended twice).

Exactly once = Spark's checkpoint (offsets of each micro-batch, logged before it runs) + sinks that
can be replayed: upserts keyed by (panel, time) and (panel, window_start), `INSERT IGNORE` on the
dead letters' (topic, partition, offset), and progress rows keyed by (query_id, batch_id). A batch
that crashed half way is re-run from the same offsets and writes the same rows again.

Each micro-batch goes in two steps: Spark's JDBC writer appends it (in parallel, batched) to a
staging table, then one transaction on the driver moves it into the real table with
`INSERT ... SELECT ... ON DUPLICATE KEY UPDATE` (the JDBC writer cannot upsert), empties the stage,
and records the batch's progress row. Stages belong to one job at a time: a MySQL advisory lock
held for the job's lifetime keeps a second job on the same database out.

Repeated readings (same panel and time): panelData keeps the one with the highest offset (within a
batch, `latest_per_key`; across batches, the upsert). The windows count a reading once, the first
one seen (streaming deduplication, its state bounded by the watermark). A reading later than the
watermark (`stream_watermark_seconds` behind the newest one) still lands in panelData but no
longer changes its window, which has been final since.
"""

from __future__ import annotations

import hashlib
import logging
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql.streaming import StreamingQuery
from sqlalchemy import Connection, Engine, text

from solar_platform.settings import Settings
from solar_platform.stack.preflight import StackError
from solar_platform.storage import db
from solar_platform.streaming import parse

log = logging.getLogger(__name__)

Trigger = Literal["continuous", "available-now"]
TRIGGERS: tuple[Trigger, ...] = ("continuous", "available-now")

READINGS_QUERY = "readings"
WINDOWS_QUERY = "windows"
QUERY_NAMES = (READINGS_QUERY, WINDOWS_QUERY)

# panelDataAgg's value columns (the seed's `total_power` is the window's mean power).
MEAN_POWER = "total_power"
READING_COUNT = "reading_count"
WINDOW_START = "window_start"
WINDOW_END = "window_end"
_LAST_READING = "last_reading_time"  # per window, for the progress row's max_event_time

# dead_letters.kafka_key is VARBINARY(1024): a longer key is cut rather than failing the batch.
DEAD_LETTER_KEY_BYTES = 1024
_DEAD_LETTER_CHUNK = 500

# mariadb-java-client options for the staging writes (bench/stream_throughput.py, 500k rows, 4
# partitions, 2 cores): the MariaDB protocol's bulk insert (`useBulkStmts`, the 3.5 default) 230k
# rows/s; bulk off 60k; bulk off + `rewriteBatchedStatements` (multi-row INSERT) 170k; LOAD DATA
# LOCAL INFILE of the same rows 225k. Set explicitly so a driver upgrade cannot change it silently.
JDBC_BATCH_OPTIONS = "useBulkStmts=true"
JDBC_BATCH_SIZE = 10_000


class StreamAlreadyRunning(StackError):
    """Another `stream run` holds the stages of this database (exit code 2, like other user errors)."""


class StreamQueryFailed(RuntimeError):
    """A streaming query stopped with an error; the message names the query and the root cause."""


# ----------------------------------------------------------------------------------------- JDBC
def jdbc_url(settings: Settings, batch_options: str = JDBC_BATCH_OPTIONS) -> str:
    """The MariaDB driver's URL for the writer's database.

    `permitMysqlScheme` lets the MariaDB driver accept `jdbc:mysql:`, the scheme Spark maps to its
    MySQL dialect (backtick quoting); `sessionVariables` keeps NOW() and friends in UTC, and the
    JVM's own UTC zone (session.py) makes java.sql.Timestamp values arrive as UTC wall clocks.
    """
    options = ["permitMysqlScheme", "sessionVariables=time_zone='+00:00'", batch_options]
    return f"jdbc:mysql://{settings.mysql_host}:{settings.mysql_port}/{settings.mysql_database}?" + "&".join(
        option for option in options if option
    )


def jdbc_append(frame: DataFrame, settings: Settings, table: str, *, batch_options: str = JDBC_BATCH_OPTIONS,
                batch_size: int = JDBC_BATCH_SIZE) -> None:
    """Append `frame` to an existing table with Spark's JDBC writer (one transaction per partition)."""
    (
        frame.write.format("jdbc")
        .option("url", jdbc_url(settings, batch_options))
        .option("driver", "org.mariadb.jdbc.Driver")
        .option("user", settings.mysql_writer_user)
        .option("password", settings.mysql_writer_password)
        .option("dbtable", table)
        .option("batchsize", str(batch_size))
        .option("isolationLevel", "READ_COMMITTED")
        .mode("append")
        .save()
    )


# ------------------------------------------------------------------------------------ stage lock
def stage_lock_name(settings: Settings) -> str:
    """Advisory lock names are server-wide (max 64 chars): one per database the job writes to."""
    name = f"solar_platform.stream.{settings.mysql_database}"
    if len(name) > 64:
        name = "solar_platform.stream." + hashlib.sha256(settings.mysql_database.encode()).hexdigest()[:40]
    return name


class StageLock:
    """`GET_LOCK` on a connection of its own, held while the job runs.

    The lock dies with its connection, so a crashed job never leaves it behind. Each batch checks,
    inside its own transaction, that this job still holds it (`verify`).
    """

    def __init__(self, settings: Settings) -> None:
        self.name = stage_lock_name(settings)
        self._settings = settings
        self._connection: Connection | None = None
        self._connection_id: int | None = None

    def acquire(self) -> None:
        connection = db.engine(self._settings).connect()
        try:
            # The lock lives as long as this (idle) connection: don't let the server time it out.
            connection.execute(text("SET SESSION wait_timeout = 31536000"))
            got = connection.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": self.name}).scalar()
            if got != 1:
                holder = connection.execute(text("SELECT IS_USED_LOCK(:name)"), {"name": self.name}).scalar()
                raise StreamAlreadyRunning(
                    f"another `solar-platform stream run` (MySQL connection {holder}) is already writing to "
                    f"database {self._settings.mysql_database!r}; stop it first, or point this one at "
                    "another database (SOLAR_MYSQL_DATABASE)"
                )
            self._connection_id = connection.execute(text("SELECT CONNECTION_ID()")).scalar()
            connection.commit()
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    def verify(self, connection: Connection) -> None:
        holder = connection.execute(text("SELECT IS_USED_LOCK(:name)"), {"name": self.name}).scalar()
        if holder is None or holder != self._connection_id:
            raise StreamQueryFailed(
                f"lost the stage lock {self.name!r} (its MySQL connection dropped); stopping so that "
                "two jobs never share the staging tables"
            )

    def release(self) -> None:
        if self._connection is None:
            return
        connection, self._connection = self._connection, None
        try:
            connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": self.name})
            connection.commit()
        except Exception:  # noqa: BLE001 - a connection that might still hold the lock is not pooled
            log.debug("RELEASE_LOCK failed; dropping the connection instead", exc_info=True)
            connection.invalidate()
        finally:
            connection.close()


# ------------------------------------------------------------------------------------ SQL steps
@dataclass(frozen=True)
class _Upsert:
    """INSERT ... SELECT from a stage into its table, built from the live schema (storage.db)."""

    stage: str
    target: str
    columns: tuple[str, ...]
    key: tuple[str, ...]

    @classmethod
    def reflect(cls, settings: Settings, stage: str, target: str) -> _Upsert:
        stage_columns = tuple(column.name for column in db.table(settings, stage).columns)
        key = tuple(column.name for column in db.table(settings, target).primary_key.columns)
        return cls(stage, target, stage_columns, key)

    def statement(self) -> str:
        columns = ", ".join(f"`{name}`" for name in self.columns)
        updates = ", ".join(f"`{name}` = VALUES(`{name}`)" for name in self.columns if name not in self.key)
        return (
            f"INSERT INTO `{self.target}` ({columns}) SELECT {columns} FROM `{self.stage}` "
            f"ON DUPLICATE KEY UPDATE {updates}"
        )


def _progress_statement() -> str:
    return (
        f"INSERT INTO `{db.STREAM_PROGRESS}` (query_id, query_name, batch_id, rows_in, rows_written, dead_letters, "
        "max_event_time, duration_ms, recorded_at) VALUES (:query_id, :query_name, :batch_id, :rows_in, "
        ":rows_written, :dead_letters, :max_event_time, :duration_ms, UTC_TIMESTAMP(3)) ON DUPLICATE KEY UPDATE "
        "rows_in = VALUES(rows_in), rows_written = VALUES(rows_written), dead_letters = VALUES(dead_letters), "
        "max_event_time = VALUES(max_event_time), duration_ms = VALUES(duration_ms), recorded_at = VALUES(recorded_at)"
    )


_DEAD_LETTER_INSERT = (
    f"INSERT IGNORE INTO `{db.DEAD_LETTERS}` (kafka_topic, kafka_partition, kafka_offset, kafka_key, payload, reason, "
    "kafka_timestamp) VALUES (:topic, :partition, :offset, :key, :payload, :reason, :timestamp)"
)


@dataclass
class _BatchProgress:
    query_name: str
    batch_id: int
    rows_in: int = 0
    rows_written: int = 0
    dead_letters: int = 0
    max_event_time: datetime | None = None
    started: float = 0.0


class _QueryIds:
    """The running query's id for a sink, looked up by name (stable across restarts: the checkpoint's)."""

    def __init__(self, spark: SparkSession) -> None:
        self._spark = spark
        self._ids: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        if name not in self._ids:
            for query in self._spark.streams.active:
                if query.name == name:
                    self._ids[name] = str(query.id)
        if name not in self._ids:  # a batch only runs inside its (registered) query
            raise RuntimeError(f"no active streaming query named {name!r}")
        return self._ids[name]


class _Sink:
    """Shared plumbing of both foreachBatch sinks: stage write, then one transaction."""

    query_name: str

    def __init__(self, settings: Settings, engine: Engine, lock: StageLock, query_ids: _QueryIds) -> None:
        self.settings = settings
        self.engine = engine
        self.lock = lock
        self.query_ids = query_ids

    def clear_stage(self, stage: str) -> None:
        # A batch that died after its stage write left rows behind: its replay must not see them.
        with self.engine.begin() as connection:
            connection.execute(text(f"DELETE FROM `{stage}`"))

    def commit(self, progress: _BatchProgress, upsert: _Upsert | None,
               extra: Callable[[Connection], None] | None = None) -> None:
        with self.engine.begin() as connection:
            self.lock.verify(connection)
            if upsert is not None:
                connection.execute(text(upsert.statement()))
                connection.execute(text(f"DELETE FROM `{upsert.stage}`"))
            if extra is not None:
                extra(connection)
            connection.execute(text(_progress_statement()), {
                "query_id": self.query_ids(self.query_name),
                "query_name": self.query_name,
                "batch_id": progress.batch_id,
                "rows_in": progress.rows_in,
                "rows_written": progress.rows_written,
                "dead_letters": progress.dead_letters,
                "max_event_time": progress.max_event_time,
                "duration_ms": int((time.monotonic() - progress.started) * 1000),
            })


class ReadingsSink(_Sink):
    """foreachBatch of `readings`: valid rows -> stage -> panelData, rejects -> dead_letters."""

    query_name = READINGS_QUERY

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.upsert = _Upsert.reflect(self.settings, db.STAGE_READINGS, db.READINGS)

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        progress = _BatchProgress(self.query_name, batch_id, started=time.monotonic())
        steps = _StepTimer()
        # Cached for the three passes below; payloads only for rejects (they are the bulk otherwise).
        reject = sf.col(parse.REJECT_REASON).isNotNull()
        batch = batch.select(
            "topic", "partition", "offset", "timestamp", *parse.READING_COLUMNS, parse.REJECT_REASON,
            sf.when(reject, sf.col("key")).alias("key"), sf.when(reject, sf.col("value")).alias("value"),
        ).persist()
        try:
            with steps("parse"):
                stats = batch.agg(
                    sf.count(sf.lit(1)).alias("rows_in"),
                    sf.count(sf.col(parse.REJECT_REASON)).alias("rejects"),
                    sf.max(parse.TIME).alias("max_event_time"),
                ).first()
            assert stats is not None
            progress.rows_in = int(stats["rows_in"])
            progress.dead_letters = int(stats["rejects"])
            progress.max_event_time = stats["max_event_time"]
            valid_rows = progress.rows_in - progress.dead_letters
            with steps("stage"):
                self.clear_stage(self.upsert.stage)
                if valid_rows:
                    deduped = latest_per_key(parse.valid_readings(batch))
                    jdbc_append(deduped.select(*self.upsert.columns), self.settings, self.upsert.stage)
                    with self.engine.connect() as connection:
                        progress.rows_written = int(
                            connection.execute(text(f"SELECT COUNT(*) FROM `{self.upsert.stage}`")).scalar() or 0
                        )
            rejects = _dead_letter_rows(batch) if progress.dead_letters else iter(())
            with steps("commit"):
                self.commit(progress, self.upsert if valid_rows else None,
                            extra=lambda connection: _insert_dead_letters(connection, rejects))
            log.info("readings batch %d: %d in, %d written, %d rejected (%s)", batch_id, progress.rows_in,
                     progress.rows_written, progress.dead_letters, steps)
        finally:
            batch.unpersist()


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
        return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.seconds.items())


class WindowsSink(_Sink):
    """foreachBatch of `windows`: updated windows -> stage -> panelDataAgg."""

    query_name = WINDOWS_QUERY

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.upsert = _Upsert.reflect(self.settings, db.STAGE_WINDOWS, db.WINDOWS)

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        progress = _BatchProgress(self.query_name, batch_id, started=time.monotonic())
        steps = _StepTimer()
        batch = batch.persist()  # the aggregation's output: don't run the stateful step twice
        try:
            with steps("aggregate"):
                stats = batch.agg(sf.count(sf.lit(1)).alias("rows"), sf.max(_LAST_READING).alias("latest")).first()
            assert stats is not None
            progress.rows_in = progress.rows_written = int(stats["rows"])
            progress.max_event_time = stats["latest"]
            with steps("stage"):
                self.clear_stage(self.upsert.stage)
                if progress.rows_in:
                    jdbc_append(batch.select(*self.upsert.columns), self.settings, self.upsert.stage)
            with steps("commit"):
                self.commit(progress, self.upsert if progress.rows_in else None)
            log.info("windows batch %d: %d windows written (%s)", batch_id, progress.rows_written, steps)
        finally:
            batch.unpersist()


def latest_per_key(readings: DataFrame) -> DataFrame:
    """One row per (panel, time) in a micro-batch: the one with the highest Kafka offset.

    A replayed or re-sent reading can repeat within a batch; panelData's upsert would otherwise
    apply them in an arbitrary order. Last offset wins, as the upsert does across batches.
    """
    order = sf.struct(sf.col("partition"), sf.col("offset"))
    latest = sf.max_by(sf.struct(sf.col(parse.POWER), sf.col(parse.STATUS)), order)
    return (
        readings.groupBy(parse.PANEL_ID, parse.TIME)
        .agg(latest.alias("_latest"))
        .select(parse.PANEL_ID, f"_latest.{parse.POWER}", f"_latest.{parse.STATUS}", parse.TIME)
    )


def _dead_letter_rows(batch: DataFrame) -> Iterator[dict[str, object]]:
    rejects = parse.rejected_records(batch).select(
        "topic", "partition", "offset", sf.substring("key", 1, DEAD_LETTER_KEY_BYTES).alias("key"),
        sf.col("value").alias("payload"), sf.col(parse.REJECT_REASON).alias("reason"), "timestamp",
    )
    for row in rejects.toLocalIterator():
        record = row.asDict()
        for field in ("key", "payload"):
            if record[field] is not None:
                record[field] = bytes(record[field])
        yield record


def _insert_dead_letters(connection: Connection, rows: Iterator[dict[str, object]]) -> None:
    chunk: list[dict[str, object]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= _DEAD_LETTER_CHUNK:
            connection.execute(text(_DEAD_LETTER_INSERT), chunk)
            chunk = []
    if chunk:
        connection.execute(text(_DEAD_LETTER_INSERT), chunk)


# ---------------------------------------------------------------------------------- the queries
def kafka_source(spark: SparkSession, settings: Settings) -> DataFrame:
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
        .option("subscribe", settings.topic)
        .option("startingOffsets", settings.stream_starting_offsets)
        # Offsets deleted by retention (or a re-created topic) are skipped, not a crash loop.
        .option("failOnDataLoss", "false")
    )
    if settings.stream_max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(settings.stream_max_offsets_per_trigger))
    return reader.load()


def window_means(valid_readings: DataFrame, settings: Settings) -> DataFrame:
    """Per panel and tumbling window: mean power and reading count, in panelDataAgg's columns."""
    window = sf.window(parse.TIME, f"{settings.stream_window_seconds} seconds")
    return (
        valid_readings.select(parse.PANEL_ID, parse.POWER, parse.TIME)
        .withWatermark(parse.TIME, f"{settings.stream_watermark_seconds} seconds")
        # A reading replayed into the topic must not count twice in its window's mean.
        .dropDuplicates([parse.PANEL_ID, parse.TIME])
        .groupBy(window.alias("window"), parse.PANEL_ID)
        .agg(
            sf.avg(parse.POWER).alias(MEAN_POWER),
            sf.count(sf.lit(1)).cast("int").alias(READING_COUNT),
            sf.max(parse.TIME).alias(_LAST_READING),
        )
        .select(
            parse.PANEL_ID, MEAN_POWER,
            sf.col("window.start").alias(WINDOW_START), sf.col("window.end").alias(WINDOW_END),
            READING_COUNT, _LAST_READING,
        )
    )


def start_queries(spark: SparkSession, settings: Settings, trigger: Trigger, lock: StageLock) -> list[StreamingQuery]:
    """Start `readings` and `windows` on the configured topic; returns them running."""
    parse.configure_session(spark)
    engine = db.engine(settings)
    query_ids = _QueryIds(spark)
    readings_sink = ReadingsSink(settings, engine, lock, query_ids)
    windows_sink = WindowsSink(settings, engine, lock, query_ids)

    trigger_options: dict[str, Any] = (
        {"availableNow": True} if trigger == "available-now"
        else {"processingTime": f"{settings.stream_trigger_seconds} seconds"}
    )
    parsed = parse.parse_records(kafka_source(spark, settings), settings.source_timezone)
    checkpoints = settings.checkpoint_dir
    readings = (
        parsed.writeStream.queryName(READINGS_QUERY)
        .foreachBatch(readings_sink)
        .option("checkpointLocation", str(checkpoints / READINGS_QUERY))
        .trigger(**trigger_options)
        .start()
    )
    windows = (
        window_means(parse.valid_readings(parsed), settings)
        .writeStream.queryName(WINDOWS_QUERY)
        .outputMode("update")
        .foreachBatch(windows_sink)
        .option("checkpointLocation", str(checkpoints / WINDOWS_QUERY))
        .trigger(**trigger_options)
        .start()
    )
    return [readings, windows]


# ------------------------------------------------------------------------------------- running
@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM / SIGINT ask the job to stop between batches (only the main thread can listen)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def request_stop(signum: int, _frame: object) -> None:
        log.warning("received %s: stopping the streaming queries", signal.Signals(signum).name)
        stop.set()

    for sig in previous:
        signal.signal(sig, request_stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_gracefully(queries: list[StreamingQuery], timeout_seconds: float = 60.0) -> None:
    """Stop each query between two micro-batches when possible (a batch in flight is replayed anyway)."""
    deadline = time.monotonic() + timeout_seconds
    for query in queries:
        while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
            time.sleep(0.2)
        query.stop()


_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Failed|Running)\w*: .+)$", re.MULTILINE)


def summarize_error(message: str) -> str:
    """The line that names the cause in Spark's error text (which embeds the sink's Python traceback)."""
    # In a foreachBatch failure the root cause is the first raised Python exception of the traceback.
    python_part = message.split("Traceback (most recent call last):", 1)
    if len(python_part) == 2 and (cause := _ERROR_LINE.search(python_part[1])):
        return cause.group(1).strip()
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    return first_line


def _failure(query: StreamingQuery) -> str | None:
    error = query.exception()
    if error is None:
        return None
    message = getattr(error, "desc", None) or str(error)
    return f"query {query.name!r} failed: {summarize_error(message) or repr(error)}"


def await_queries(queries: list[StreamingQuery], stop: threading.Event, poll_seconds: float = 0.5) -> None:
    """Wait until every query ended (available-now) or `stop` is set; raise if one of them failed."""
    while True:
        failures = [message for query in queries if not query.isActive and (message := _failure(query))]
        if failures:
            stop_gracefully([query for query in queries if query.isActive], timeout_seconds=10)
            raise StreamQueryFailed("; ".join(failures))
        if not any(query.isActive for query in queries):
            return
        if stop.is_set():
            stop_gracefully(queries)
            return
        # Wait on a query still running (a finished one returns at once). A failure raises here; it
        # is reported on the next round, with the other query stopped first.
        running = next((query for query in queries if query.isActive), None)
        with suppress(StreamingQueryException):
            if running is not None:
                running.awaitTermination(poll_seconds)


def run_job(settings: Settings, trigger: Trigger = "continuous", *, spark: SparkSession | None = None,
            stop: threading.Event | None = None) -> None:
    """Run both queries until they end (available-now), `stop` is set, or SIGTERM/SIGINT arrives.

    Raises `StreamAlreadyRunning` when another job holds this database's stages, and
    `StreamQueryFailed` when a query fails (its error message included).
    """
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {TRIGGERS}, not {trigger!r}")
    stop = stop or threading.Event()
    lock = StageLock(settings)
    lock.acquire()  # before Spark's ~7 s start: a second job fails fast
    try:
        if spark is None:
            from solar_platform.streaming.session import build_session

            spark = build_session(settings)
        with _stop_on_signals(stop):
            queries = start_queries(spark, settings, trigger, lock)
            try:
                await_queries(queries, stop)
            finally:
                for query in queries:
                    if query.isActive:
                        query.stop()
    finally:
        lock.release()
