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

**Summaries apart** (`storage.stream.summaries`): a batch of appends of known panels commits its
raw rows only; a thread writes the waiting batches' windows, energy buckets and latest rows every
`SOLAR_STREAM_SUMMARIES_EVERY_SECONDS`, all of them in one transaction of its own, beside the
batches. A batch with anything else (a correction, a new panel), or one that finds too many
readings waiting, writes them all in its own transaction first. The job writes what still waits
when it stops (`close`); a job killed before is summarized at the next start, from panelData.

The same transaction compares each partition's first offset in the batch with the offset it
expected next (`storage.stream.offsets`): offsets that retention deleted before the stream read
them are recorded as a gap in `lost_offsets`, and the stream carries on from the earliest offset.

While a batch runs, a pulse thread refreshes `stream_pulse` every few seconds: the heartbeat
sensor tells a slow batch from a stuck stream by it.

**A full disk pauses, never loses.** When MariaDB refuses the transaction for lack of disk space,
or cannot be reached (`storage.stream.write_errors`; on a full disk MariaDB may even abort and be
restarted by its supervisor), the transaction is rolled back and the batch is kept in memory. The
sink retries it with backoff (`SOLAR_STREAM_WRITE_RETRY_*`) for as long as it takes, taking
the stage lock again if a restarted MariaDB dropped it (and failing if another job took it), while
the pulse, and a file beside the checkpoint (`runtime.stream_wait`: MariaDB may not take even the
pulse), say what it waits for. foreachBatch does not return meanwhile, so Spark does not move past
the batch, and nothing is read twice or skipped. A stop requested during the wait abandons the
batch uncommitted (`BatchAbandoned`): the next start replays it from the checkpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from sqlalchemy import Engine

from solar_platform.runtime import stream_wait
from solar_platform.runtime.stream_wait import StreamWait
from solar_platform.settings import Settings
from solar_platform.storage.history.archive import Archive, write_batch
from solar_platform.storage.stream import offsets, progress, summaries
from solar_platform.storage.stream.appends import AppendConflict
from solar_platform.storage.stream.commit import Committed, all_appends_of_known_panels, commit_batch, defer_batch
from solar_platform.storage.stream.latest import LatestReadings, record_fleet_now
from solar_platform.storage.stream.readings import COLUMNS as READING_COLUMNS
from solar_platform.storage.stream.readings import Readings, from_arrow
from solar_platform.storage.stream.write_errors import data_directory, disk_full_error, server_away_error
from solar_platform.streaming import parse
from solar_platform.streaming.errors import BatchAbandoned
from solar_platform.streaming.stage_lock import StageLock, StageLockLost

log = logging.getLogger(__name__)

_utc_naive = offsets.utc_naive  # what a DATETIME column holds: the UTC wall clock, from epoch microseconds


def dead_letter_rows(rejected: pa.Table, topic: str) -> Iterator[dict[str, object]]:
    """The rejects of a batch (of the one topic the query reads) as `dead_letters` rows, the key cut
    to its column."""
    for row in rejected.to_pylist():
        key = row["key"]
        yield {"topic": topic, "partition": row["partition"], "offset": row["offset"],
               "key": None if key is None else bytes(key[: progress.DEAD_LETTER_KEY_BYTES]),
               "payload": row["value"], "reason": row[parse.REJECT_REASON],
               "timestamp": _utc_naive(row[parse.TIMESTAMP_MICROS])}


def _lock_dropped(error: BaseException) -> str | None:
    """The stage lock held by nobody: MariaDB restarted and released it with its connection."""
    if isinstance(error, StageLockLost) and error.holder is None:
        return "the stage lock was released (MariaDB restarted)"
    return None


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
    the pulse only informs the heartbeat sensor.

    While the batch waits for MariaDB's disk (`wait`), each pulse also says so, in the row and in
    the wait file beside the checkpoint (`runtime.stream_wait`), which needs no MariaDB."""

    def __init__(self, engine: Engine, query_name: str, every_s: float, wait_file: Path) -> None:
        self._engine = engine
        self._query_name = query_name
        self._every_s = every_s
        self._wait_file = wait_file
        self._batch: tuple[int, datetime] | None = None
        self._wait: StreamWait | None = None
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        stream_wait.clear_wait(wait_file)  # left by a job that died while it waited
        self._thread = threading.Thread(target=self._run, name="stream-pulse", daemon=True)
        self._thread.start()

    def _write_wait_file(self) -> None:
        """The wait file as the wait is now (under `_lock`, so a cleared wait is never written back)."""
        try:
            if self._wait is None:
                stream_wait.clear_wait(self._wait_file)
            else:
                stream_wait.write_wait(self._wait_file, replace(self._wait, updated_at=datetime.now(UTC)))
        except OSError:
            log.warning("could not update the stream's wait file %s", self._wait_file, exc_info=True)

    def _write(self, batch_id: int, started_at: datetime, in_flight: bool, wait: StreamWait | None) -> None:
        if wait is not None:
            with self._lock:
                self._write_wait_file()
        try:
            with self._engine.begin() as connection:
                progress.record_pulse(
                    connection, query_name=self._query_name, batch_id=batch_id,
                    started_at=started_at.replace(tzinfo=None), in_flight=in_flight,
                    waiting_for=None if wait is None else wait.headline(),
                    waiting_since=None if wait is None else wait.since.replace(tzinfo=None))
        except Exception:  # noqa: BLE001 - MariaDB away or full: the batch itself will say so
            log.debug("could not write the stream pulse", exc_info=True)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._every_s)
            self._wake.clear()
            with self._writing:  # one write at a time: a late pulse never overwrites the end of its batch
                with self._lock:
                    batch, wait = self._batch, self._wait
                if batch is not None:
                    self._write(*batch, in_flight=True, wait=wait)

    def begin(self, batch_id: int, started_at: datetime) -> None:
        with self._lock:
            self._batch, self._wait = (batch_id, started_at), None
        self._wake.set()

    def waiting(self, wait: StreamWait | None) -> None:
        """The batch in flight waits (`wait`), or no longer does (None); said at once."""
        with self._lock:
            self._wait = wait
            self._write_wait_file()
        self._wake.set()

    def end(self, batch_id: int, started_at: datetime) -> None:
        with self._writing:
            with self._lock:
                self._batch, self._wait = None, None
                self._write_wait_file()
            self._write(batch_id, started_at, in_flight=False, wait=None)


class ReadingsSink:
    """foreachBatch of the query named `query_name`: Kafka records -> panelData, derived tables, dead letters."""

    def __init__(self, settings: Settings, engine: Engine, lock: StageLock, spark: SparkSession,
                 query_name: str, stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.lock = lock
        self.query_name = query_name
        self._spark = spark
        self._stop = stop or threading.Event()
        self._query_id: str | None = None
        self.latest = LatestReadings()  # loaded in the first batch's transaction
        # What the summaries hold, and the appends (query id, batch id, readings) committed without
        # them; `_state` guards both, `_summary_round` is held by whoever writes summaries.
        self._summarized = LatestReadings()
        self._waiting: list[tuple[str, int, Readings]] = []
        self._state = threading.Lock()
        self._summary_round = threading.RLock()  # a round that finds memory stale forgets it
        self._closing = threading.Event()
        self.archive = Archive.of(settings)
        self.pulse = BatchPulse(engine, query_name, every_s=min(5.0, settings.stream_stale_after_seconds / 4),
                                wait_file=stream_wait.wait_file(settings))
        self._rounds: threading.Thread | None = None
        if settings.stream_summaries_every_seconds > 0:
            self._rounds = threading.Thread(target=self._summary_rounds, name="stream-summaries", daemon=True)
            self._rounds.start()

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
        batch = _Batch(batch_id, readings, rejected, rows_in, parse.partition_spans(collected))
        timings: dict[str, float] = {}
        outcome = self._commit_when_mariadb_can(batch, started, steps, timings)
        if outcome is None:
            log.info("batch %d: already committed (a replay after a restart); skipped", batch_id)
            return
        for gap in outcome.gaps:
            log.warning("batch %d: offsets %d..%d of partition %d (%d records, published between %s and %s) were "
                        "deleted by Kafka's retention before the stream read them; recorded in lost_offsets, "
                        "carrying on from offset %d", batch_id, gap.first_offset, gap.last_offset, gap.partition,
                        gap.records, gap.published_after, gap.published_before, gap.last_offset + 1)
        log.info("batch %d: %d in, %d appended, %d corrected, %d rejected (%s; sql %s)", batch_id, rows_in,
                 outcome.appended, outcome.corrected, rejected.num_rows, steps, _durations(timings))

    def _commit_when_mariadb_can(self, batch: _Batch, started: float, steps: _StepTimer,
                                 timings: dict[str, float]) -> _Outcome | None:
        """Commit the batch, waiting for as long as MariaDB's disk is full or MariaDB does not answer
        (see the module docstring)."""
        attempts, since, data_dir, kind = 0, datetime.now(UTC), None, None
        while True:
            try:
                if attempts:
                    self.lock.reacquire()  # a restarted MariaDB dropped it with its connection
                    # A commit whose answer was lost may have gone through: reload the latest readings.
                    self._forget()
                outcome = self._commit_whole(batch, started, steps, timings)
            except Exception as error:
                problem = disk_full_error(error)
                if problem is not None:
                    kind = stream_wait.MARIADB_DISK_FULL
                else:
                    problem = server_away_error(error) or _lock_dropped(error)
                    if problem is None:
                        raise
                    kind = kind or stream_wait.MARIADB_UNREACHABLE
                attempts += 1
                if attempts == 1:
                    since = datetime.now(UTC)
                if data_dir is None and kind == stream_wait.MARIADB_DISK_FULL:
                    data_dir = data_directory(self.engine)
                delay = min(self.settings.stream_write_retry_max_seconds,
                            self.settings.stream_write_retry_base_seconds * 2 ** (attempts - 1))
                wait = StreamWait(kind=kind, batch_id=batch.batch_id, since=since, updated_at=datetime.now(UTC),
                                  attempts=attempts, retry_in_seconds=delay, error=problem,
                                  server=f"{self.settings.mysql_host}:{self.settings.mysql_port}", data_dir=data_dir)
                self.pulse.waiting(wait)
                log.warning("batch %d: %s; rolled back and kept, retry %d in %.0f s (nothing is lost: Spark does "
                            "not move on until it commits)", batch.batch_id, wait.headline(), attempts, delay)
                timings.clear()
                if self._stop.wait(delay):
                    raise BatchAbandoned(f"stop requested while batch {batch.batch_id} waited for MariaDB; it is "
                                         "replayed from the checkpoint at the next start") from None
                continue
            if attempts:
                self.pulse.waiting(None)
                log.warning("batch %d: committed after waiting %.0f s for MariaDB (%s; %d attempts)", batch.batch_id,
                            (datetime.now(UTC) - since).total_seconds(), kind, attempts + 1)
            return outcome

    def _commit_whole(self, batch: _Batch, started: float, steps: _StepTimer,
                      timings: dict[str, float]) -> _Outcome | None:
        try:
            return self._commit(batch, started, steps, timings, all_exact=False)
        except AppendConflict as conflict:
            log.warning("batch %d: %s; panel_latest is behind panelData (a bulk import without a rebuild?): "
                        "committing the whole batch by the exact path", batch.batch_id, conflict)
            self._forget()
            timings.clear()
            return self._commit(batch, started, steps, timings, all_exact=True)

    def _commit(self, batch: _Batch, started: float, steps: _StepTimer, timings: dict[str, float], *,
                all_exact: bool) -> _Outcome | None:
        """The batch's one transaction; None when its progress row says it committed already."""
        whole = all_exact or not self._may_defer(batch)
        try:
            return self._commit_once(batch, started, steps, timings, all_exact=all_exact, whole=whole)
        except _NeedsWhole:  # rolled back: a rebuild holds the summaries, or panel_latest moved
            timings.clear()
            return self._commit_once(batch, started, steps, timings, all_exact=all_exact, whole=True)

    def _commit_once(self, batch: _Batch, started: float, steps: _StepTimer, timings: dict[str, float], *,
                     all_exact: bool, whole: bool) -> _Outcome | None:
        batch_id, readings, rejected, rows_in = batch.batch_id, batch.readings, batch.rejected, batch.rows_in
        topic = self.settings.topic
        with ExitStack() as summary_round:
            if whole:  # taken before the transaction begins, so that it reads what the last round wrote
                summary_round.enter_context(self._summary_round)
            with steps("commit"), self.engine.begin() as connection:
                # Only a job that still holds the lock may write, and only once per batch.
                self.lock.verify(connection)
                if progress.batch_committed(connection, self.query_id(), batch_id):
                    return None
                gaps = offsets.find_gaps(offsets.expected_offsets(connection, topic), batch.spans)
                if whole:  # everything in this transaction, the waiting summaries first
                    with self._state:
                        waiting = summaries.Unsummarized(
                            self._summarized, summaries.concat([chunk for _, _, chunk in self._waiting]))
                    committed = commit_batch(connection, readings, self.latest,
                                             self.settings.energy_max_gap_seconds, all_exact=all_exact,
                                             timings=timings, unsummarized=waiting)
                else:
                    moved = defer_batch(connection, readings, self.latest, query_id=self.query_id(),
                                        batch_id=batch_id, timings=timings)
                    if moved is None:
                        raise _NeedsWhole
                    committed = Committed(len(readings), 0, 0, moved)
                progress.insert_dead_letters(connection, dead_letter_rows(rejected, topic))
                offsets.record_batch_offsets(connection, topic, batch.spans, gaps, batch_id)
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
            with self._state:
                self.latest = committed.latest
                if whole:  # everything summarized
                    self._summarized, self._waiting = committed.latest, []
                elif len(readings):
                    self._waiting.append((self.query_id(), batch_id, readings))
        return _Outcome(committed.appended, committed.corrected, gaps)

    # ------------------------------------------------------------------------ summaries apart
    def _may_defer(self, batch: _Batch) -> bool:
        """Whether the batch may commit without its summaries, as far as memory tells (`defer_batch`
        decides, in the transaction)."""
        if self._rounds is None:
            return False
        with self._state:
            waiting = sum(len(chunk) for _, _, chunk in self._waiting)
            latest = self.latest
        # A round that cannot keep up (or cannot write) makes the batches write their summaries again.
        return (latest.generation is not None and waiting <= self.settings.stream_max_offsets_per_trigger
                and all_appends_of_known_panels(batch.readings, latest))

    def _forget(self) -> None:
        """Drop what memory holds (the next batch reloads it all, waiting summaries included, from
        MariaDB): a commit's outcome is unknown, or `panel_latest` moved behind the stream."""
        with self._summary_round, self._state:  # never in the middle of a round
            self.latest, self._summarized, self._waiting = LatestReadings(), LatestReadings(), []

    def _summary_rounds(self) -> None:
        while not self._closing.wait(self.settings.stream_summaries_every_seconds):
            try:
                self.write_waiting_summaries()
            except Exception:  # noqa: BLE001 - MariaDB away or full: the batches will say so; retried
                log.warning("could not write the waiting summaries; retrying in the next round", exc_info=True)

    def write_waiting_summaries(self) -> int:
        """One round: the waiting batches' summaries in one transaction; returns the readings summarized."""
        with self._summary_round:
            with self._state:
                waiting, summarized = list(self._waiting), self._summarized
            if summarized.generation is None:  # memory not loaded yet (a start, a reload): MariaDB's marks
                return self._write_everything() if self._marks_left() else 0
            if not waiting:
                return 0
            started = time.monotonic()
            timings: dict[str, float] = {}
            try:
                with self.engine.begin() as connection:
                    self.lock.verify(connection)  # a job that lost its stage lock writes nothing
                    now = summaries.write_round(connection, summarized, waiting,
                                                self.settings.energy_max_gap_seconds, timings)
                    if now is None:
                        raise _SummariesMoved
            except _SummariesMoved:  # rolled back; the next batch reloads everything, waiting summaries too
                self._forget()
                log.warning("panel_latest changed behind the stream: its next batch writes the waiting summaries")
                return 0
            with self._state:
                del self._waiting[:len(waiting)]
                self._summarized = now
        summarized_readings = sum(len(chunk) for _, _, chunk in waiting)
        log.info("summaries of %d batches: %d readings in %.2f s (sql %s)", len(waiting), summarized_readings,
                 time.monotonic() - started, _durations(timings))
        return summarized_readings

    def close(self) -> None:
        """Stop the rounds and write what still waits (no batch runs any more). A failure is logged:
        the next start writes them."""
        self._closing.set()
        if self._rounds is not None:
            self._rounds.join()
        try:
            self._write_everything()
        except Exception:  # noqa: BLE001 - summarized from panelData at the next start
            log.warning("could not write the waiting summaries at the stop; the next start writes them",
                        exc_info=True)

    def _write_everything(self) -> int:
        """Every waiting summary, reloaded from MariaDB if memory is stale or not loaded (a job started
        after one was killed: its marks); returns the readings summarized."""
        with self._summary_round:
            with self.engine.begin() as connection:
                self.lock.verify(connection)
                with self._state:
                    waiting = summaries.Unsummarized(
                        self._summarized, summaries.concat([chunk for _, _, chunk in self._waiting]))
                committed = commit_batch(connection, Readings.empty(), self.latest,
                                         self.settings.energy_max_gap_seconds, unsummarized=waiting)
            with self._state:
                self.latest, self._summarized, self._waiting = committed.latest, committed.latest, []
        return len(waiting.readings)

    def _marks_left(self) -> bool:
        with self.engine.connect() as connection:
            return summaries.marks_left(connection)


class _NeedsWhole(Exception):
    """The batch may not wait for its summaries after all (`defer_batch`): rolled back, committed whole."""


class _SummariesMoved(Exception):
    """`panel_latest` or the marks changed behind the stream (a rebuild): what memory holds is stale."""


@dataclass(frozen=True)
class _Batch:
    """What a micro-batch commits, kept whole for as long as it waits for MariaDB."""

    batch_id: int
    readings: Readings
    rejected: pa.Table
    rows_in: int
    spans: list[offsets.PartitionSpan]


@dataclass(frozen=True)
class _Outcome:
    appended: int
    corrected: int
    gaps: list[offsets.Gap]

