"""The streaming job: Kafka -> contract -> MySQL, exactly once, one Structured Streaming query.

`run_job` takes the database's stage lock (`stage_lock`: one job per database), starts the
`readings` query, whose foreachBatch sink (`sink.ReadingsSink`) parses and commits each
micro-batch, and waits until the query ends (available-now), a stop is requested, or it fails.

There is no watermark and no window state in Spark: a window is always the summary of the readings
`panelData` holds for it, however late or re-sent they arrived.

Exactly once = Spark's checkpoint (the offsets of each micro-batch, logged before it runs) + one
MariaDB transaction per batch that records the batch's progress row: a batch re-run from the
same offsets after a crash finds its row and is skipped if it committed, and runs whole if it did
not. Across batches, a reading sent again is a correction that changes nothing unless its value
differs; dead letters are `INSERT IGNORE` on (topic, partition, offset).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from contextlib import suppress
from typing import Any, Literal

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from solar_platform import kafka_clients
from solar_platform.runtime.signals import stop_on_signals
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.stream.progress import READINGS_QUERY
from solar_platform.streaming.errors import BatchAbandoned, StreamQueryFailed
from solar_platform.streaming.sink import ReadingsSink
from solar_platform.streaming.stage_lock import StageLock

log = logging.getLogger(__name__)

Trigger = Literal["continuous", "available-now"]
KAFKA_MAX_POLL_RECORDS = 20_000
TRIGGERS: tuple[Trigger, ...] = ("continuous", "available-now")


# ---------------------------------------------------------------------------------- the query
def kafka_source(spark: SparkSession, settings: Settings) -> DataFrame:
    return (
        spark.readStream.format("kafka")
        .options(**kafka_clients.spark_options(settings, "stream"))
        # The stream user may read consumer groups under this prefix only (kafka_clients.topic_acls).
        .option("groupIdPrefix", kafka_clients.STREAM_GROUP_PREFIX)
        .option("subscribe", settings.topic)
        .option("startingOffsets", settings.stream_starting_offsets)
        # Offsets deleted by retention (or a re-created topic) are skipped, not a crash loop; the sink
        # records what was skipped (lost_offsets).
        .option("failOnDataLoss", "false")
        # A bounded batch: a restart after a backlog replays bounded work, never one huge batch.
        .option("maxOffsetsPerTrigger", str(settings.stream_max_offsets_per_trigger))
        # The consumer's default (500 records a poll) made reading a 500k batch a third slower.
        .option("kafka.max.poll.records", str(KAFKA_MAX_POLL_RECORDS))
        .load()
    )


def start_queries(spark: SparkSession, settings: Settings, trigger: Trigger, sink: ReadingsSink
                  ) -> list[StreamingQuery]:
    """Start the one query (`readings`) on the configured topic, into `sink`; returns it running, in a list."""
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
def _log_stop_request(signal_name: str) -> None:
    log.warning("received %s: stopping the streaming queries", signal_name)


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


def _abandoned(query: StreamingQuery) -> bool:
    error = query.exception()
    return error is not None and BatchAbandoned.__name__ in (getattr(error, "desc", None) or str(error))


def await_queries(queries: list[StreamingQuery], stop: threading.Event, poll_seconds: float = 0.5) -> None:
    """Wait until every query ended (available-now) or `stop` is set; raise if one of them failed."""
    while True:
        failures = [message for query in queries if not query.isActive and (message := _failure(query))
                    # a batch abandoned at a stop (it waited for MariaDB's disk) is no failure
                    and not (stop.is_set() and _abandoned(query))]
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
    """Run the `readings` query until it ends (available-now), `stop` is set, or SIGTERM/SIGINT arrives.

    Raises `KafkaLoginRefused` when the brokers refuse the stream user's login, `StreamAlreadyRunning`
    when another job holds this database's stages, and `StreamQueryFailed` when a query fails (its
    error message included).
    """
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {TRIGGERS}, not {trigger!r}")
    settings = settings.as_role("stream")  # its own MariaDB user, with rights on its tables only
    # A wrong Kafka password would fail the query only after Spark's ~7 s start, in Java's words:
    # check the stream user's login first (an unreachable broker is left to Spark, which waits for it).
    kafka_clients.check_login(settings, "stream")
    stop = stop or threading.Event()
    lock = StageLock(settings)
    lock.acquire()  # before Spark's ~7 s start: a second job fails fast
    try:
        if spark is None:
            from solar_platform.streaming.session import build_session

            spark = build_session(settings)
        with stop_on_signals(stop, on_signal=_log_stop_request):
            # `stop` also ends a batch's wait for MariaDB's disk (the batch is left to be replayed).
            sink = ReadingsSink(settings, db.engine(settings, bulk_load=True), lock, spark, READINGS_QUERY, stop)
            try:
                queries = start_queries(spark, settings, trigger, sink)
                try:
                    await_queries(queries, stop)
                finally:
                    for query in queries:
                        if query.isActive:
                            query.stop()
            finally:
                sink.close()  # the summaries still waiting, while the stage lock is held
    finally:
        lock.release()
