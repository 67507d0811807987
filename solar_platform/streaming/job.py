"""The streaming job: Kafka -> contract -> MySQL, exactly once, one Structured Streaming query.

Each micro-batch reads its Kafka records once and:

1. parses them (`parse.parse_records`) and applies the clock rules: a reading stamped more than
   `max_clock_skew_seconds` after the batch's ingest time is rejected (`time_in_future`), one
   before `min_reading_time` too (`time_out_of_range`), so one wrong clock moves nobody else's data;
2. stages the valid readings (one per panel and time, the highest offset wins) over JDBC, tagged
   with this job's id, once it has checked that it still holds the database's job lock;
3. in one transaction: checks the lock again, moves the staged readings that are new or changed
   into `panelData` and keeps every derived table in step (`storage.energy.apply_batch`: the 30-s
   windows it touched, recomputed from `panelData`; the 15-min energy buckets and the fleet's; each
   panel's latest reading), inserts the rejects into `dead_letters` and records the progress row
   (the heartbeat, with a per-step profile).

There is no watermark and no window state in Spark: a window is always the mean of the readings
`panelData` holds for it, however late or re-sent they arrived.

Exactly once = Spark's checkpoint (the offsets of each micro-batch, logged before it runs) + a
transaction that can be replayed: the raw upsert and the derived deltas only count readings that
differ from `panelData`, dead letters are `INSERT IGNORE` on (topic, partition, offset), progress
rows are keyed by (query_id, batch_id). A batch that crashed half way is re-run from the same
offsets and leaves the same rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql.streaming import StreamingQuery
from sqlalchemy import Connection, Engine, text

from solar_platform import kafka_clients
from solar_platform.contracts import RejectReason
from solar_platform.runtime.host import SetupError
from solar_platform.settings import Settings
from solar_platform.storage import db, energy
from solar_platform.streaming import parse

log = logging.getLogger(__name__)

Trigger = Literal["continuous", "available-now"]
TRIGGERS: tuple[Trigger, ...] = ("continuous", "available-now")

READINGS_QUERY = "readings"
QUERY_NAMES = (READINGS_QUERY,)

# dead_letters.kafka_key is VARBINARY(1024): a longer key is cut rather than failing the batch.
DEAD_LETTER_KEY_BYTES = 1024
_DEAD_LETTER_CHUNK = 500

# mariadb-java-client options for the staging writes (bench/stream_throughput.py, 500k rows, 4
# partitions, 2 cores): the MariaDB protocol's bulk insert (`useBulkStmts`, the 3.5 default) 230k
# rows/s; bulk off 60k; bulk off + `rewriteBatchedStatements` (multi-row INSERT) 170k; LOAD DATA
# LOCAL INFILE of the same rows 225k. Set explicitly so a driver upgrade cannot change it silently.
JDBC_BATCH_OPTIONS = "useBulkStmts=true"
JDBC_BATCH_SIZE = 10_000

STAGE_COLUMNS = ("job_id", parse.PANEL_ID, parse.POWER, parse.STATUS, parse.TIME)


class StreamAlreadyRunning(SetupError):
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
        .option("user", settings.mysql_credentials()[0])
        .option("password", settings.mysql_credentials()[1])
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

    @property
    def job_id(self) -> int:
        """This job's tag on the stage rows: the lock connection's id, unique among live jobs."""
        if self._connection_id is None:
            raise RuntimeError("the stage lock is not held")
        return int(self._connection_id)

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


# ------------------------------------------------------------------------------------ the sink
_PROGRESS_INSERT = (
    f"INSERT INTO `{db.STREAM_PROGRESS}` (query_id, query_name, batch_id, rows_in, rows_written, dead_letters, "
    "max_event_time, duration_ms, profile, recorded_at) VALUES (:query_id, :query_name, :batch_id, :rows_in, "
    ":rows_written, :dead_letters, :max_event_time, :duration_ms, :profile, UTC_TIMESTAMP(3)) "
    "ON DUPLICATE KEY UPDATE rows_in = VALUES(rows_in), rows_written = VALUES(rows_written), "
    "dead_letters = VALUES(dead_letters), max_event_time = VALUES(max_event_time), "
    "duration_ms = VALUES(duration_ms), profile = VALUES(profile), recorded_at = VALUES(recorded_at)"
)

_DEAD_LETTER_INSERT = (
    f"INSERT IGNORE INTO `{db.DEAD_LETTERS}` (kafka_topic, kafka_partition, kafka_offset, kafka_key, payload, reason, "
    "kafka_timestamp) VALUES (:topic, :partition, :offset, :key, :payload, :reason, :timestamp)"
)


def with_clock_rules(parsed: DataFrame, ingested_at: datetime, settings: Settings) -> DataFrame:
    """Reject readings stamped too far ahead of `ingested_at`, or before the configured floor.

    `ingested_at` is one instant per batch (the platform's clock when the batch started), so a
    replayed batch judges every reading the same way within itself.
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


def _utc_naive(epoch_micros: int | None) -> datetime | None:
    """What a DATETIME column holds: the UTC wall clock, from epoch microseconds."""
    if epoch_micros is None:
        return None
    return datetime(1970, 1, 1) + timedelta(microseconds=int(epoch_micros))


class ReadingsSink:
    """foreachBatch of the one query: Kafka records -> panelData, derived tables, dead letters."""

    query_name = READINGS_QUERY

    def __init__(self, settings: Settings, engine: Engine, lock: StageLock, spark: SparkSession) -> None:
        self.settings = settings
        self.engine = engine
        self.lock = lock
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
                    connection.execute(text(f"DELETE FROM `{db.STAGE_READINGS}` WHERE job_id = :job"), {"job": job_id})
                if rows_in > rejects:
                    staged = latest_per_key(parse.valid_readings(parsed)).withColumn("job_id", sf.lit(job_id))
                    jdbc_append(staged.select(*STAGE_COLUMNS), self.settings, db.STAGE_READINGS)
            dead = _dead_letter_rows(parsed) if rejects else iter(())
            timings: dict[str, float] = {}
            with steps("commit"), self.engine.begin() as connection:
                self.lock.verify(connection)
                written = energy.apply_batch(connection, db.STAGE_READINGS, job_id,
                                             self.settings.energy_max_gap_seconds, timings)
                connection.execute(text(f"DELETE FROM `{db.STAGE_READINGS}` WHERE job_id = :job"), {"job": job_id})
                _insert_dead_letters(connection, dead)
                profile = {f"{name}_ms": round(seconds * 1000) for name, seconds in steps.seconds.items()}
                profile.update({f"sql_{name}_ms": round(seconds * 1000) for name, seconds in timings.items()})
                connection.execute(text(_PROGRESS_INSERT), {
                    "query_id": self.query_id(), "query_name": self.query_name, "batch_id": batch_id,
                    "rows_in": rows_in, "rows_written": written, "dead_letters": rejects,
                    "max_event_time": _utc_naive(stats["max_event_micros"]),
                    "duration_ms": int((time.monotonic() - started) * 1000),
                    "profile": json.dumps(profile, separators=(",", ":"))[:1024],
                })
            log.info("batch %d: %d in, %d new or changed, %d rejected (%s; sql %s)", batch_id, rows_in, written,
                     rejects, steps, ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
        finally:
            records.unpersist()
            if parsed is not None:
                parsed.unpersist()


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


def _insert_dead_letters(connection: Connection, rows: Iterator[dict[str, object]]) -> None:
    chunk: list[dict[str, object]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= _DEAD_LETTER_CHUNK:
            connection.execute(text(_DEAD_LETTER_INSERT), chunk)
            chunk = []
    if chunk:
        connection.execute(text(_DEAD_LETTER_INSERT), chunk)


# ---------------------------------------------------------------------------------- the query
def kafka_source(spark: SparkSession, settings: Settings) -> DataFrame:
    return (
        spark.readStream.format("kafka")
        .options(**kafka_clients.spark_options(settings, "stream"))
        # The stream user may read consumer groups under this prefix only (kafka_clients.topic_acls).
        .option("groupIdPrefix", kafka_clients.STREAM_GROUP_PREFIX)
        .option("subscribe", settings.topic)
        .option("startingOffsets", settings.stream_starting_offsets)
        # Offsets deleted by retention (or a re-created topic) are skipped, not a crash loop.
        .option("failOnDataLoss", "false")
        # A bounded batch: a restart after a backlog replays bounded work, never one huge batch.
        .option("maxOffsetsPerTrigger", str(settings.stream_max_offsets_per_trigger))
        .load()
    )


def start_queries(spark: SparkSession, settings: Settings, trigger: Trigger, lock: StageLock) -> list[StreamingQuery]:
    """Start the one query (`readings`) on the configured topic; returns it running, in a list."""
    parse.configure_session(spark)
    sink = ReadingsSink(settings, db.engine(settings), lock, spark)
    trigger_options: dict[str, Any] = (
        {"availableNow": True} if trigger == "available-now"
        else {"processingTime": f"{settings.stream_trigger_seconds} seconds"}
    )
    query = (
        kafka_source(spark, settings).writeStream.queryName(READINGS_QUERY)
        .foreachBatch(sink)
        .option("checkpointLocation", str(settings.checkpoint_dir / READINGS_QUERY))
        .trigger(**trigger_options)
        .start()
    )
    return [query]


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
    settings = settings.as_role("stream")  # its own MariaDB user, with rights on its tables only
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
