"""What the control plane reads about the pipeline, and the one record it writes.

Reads: the stream's heartbeat (its newest `stream_progress` row) and the one rule for when it is
stale, how current each live table is (newest event time, the engine's row estimate) and what the
stream last wrote to it (its per-batch counters). Every figure is an index seek or a bounded range,
never a count of a table. Writes: Dagster's failed runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, text

from solar_platform.storage.db import RUN_FAILURES, STREAM_PROGRESS, STREAM_PULSE, WINDOWS
from solar_platform.storage.retention import PARTITIONED, estimated_rows
from solar_platform.storage.stream.progress import READINGS_QUERY
from solar_platform.storage.windows import WINDOW_SECONDS

# live table -> its indexed time column: the stream's two raw tables, day-partitioned on that column
LIVE_TABLES = PARTITIONED


def last_heartbeat(conn: Connection) -> datetime | None:
    """When the stream last finished a micro-batch (UTC, naive as stored): one seek at the end of
    `stream_progress`'s `recorded_at` index."""
    return conn.execute(text(f"SELECT MAX(recorded_at) FROM {STREAM_PROGRESS}")).scalar()


def frontier(conn: Connection, now: datetime, horizon: timedelta) -> datetime | None:
    """The pipeline's frontier: the newest batch frontier among the batches the stream committed in
    the `horizon` before `now` (naive UTC), never after `now`; None when it committed none.

    A batch's frontier is the median, over its panels, of each one's newest reading: it moves with
    the fleet, not with one device's clock. Silence and the health window are judged against it
    (`storage.health`). A bounded range of the `recorded_at` index.
    """
    moment = _as_utc(now).replace(tzinfo=None)
    newest = conn.execute(text(
        f"SELECT MAX(frontier_time) FROM {STREAM_PROGRESS} WHERE recorded_at >= :since AND recorded_at <= :now"),
        {"since": moment - horizon, "now": moment}).scalar()
    return None if newest is None else min(newest, moment)


def _as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def heartbeat_age_seconds(last: datetime | None, now: datetime) -> float | None:
    """Seconds from the heartbeat to `now` (either naive UTC or aware); None when there is none."""
    if last is None:
        return None
    return max(0.0, (_as_utc(now) - _as_utc(last)).total_seconds())


def heartbeat_is_stale(age_seconds: float | None, limit_seconds: float) -> bool:
    """No heartbeat, or one older than the limit (`settings.stream_stale_after_seconds` everywhere:
    the API's health, Dagster's heartbeat sensor and the panel-alert suppression)."""
    return age_seconds is None or age_seconds > limit_seconds


@dataclass(frozen=True)
class Pulse:
    """The stream's batch in flight (or its last one), from `stream_pulse`; times UTC, aware."""

    batch_id: int
    batch_started_at: datetime
    pulse_at: datetime
    in_flight: bool
    waiting_for: str | None = None  # what the batch in flight waits for (MariaDB's disk full)
    waiting_since: datetime | None = None

    def running_seconds(self, now: datetime) -> float:
        return max(0.0, (_as_utc(now) - self.batch_started_at).total_seconds())

    def age_seconds(self, now: datetime) -> float:
        return max(0.0, (_as_utc(now) - self.pulse_at).total_seconds())


def batch_in_flight(pulse: Pulse | None, now: datetime, limit_seconds: float, max_batch_seconds: float) -> bool:
    """A batch is running: its pulse is fresher than the staleness limit and it has not run past the
    longest a batch may take, or it says it waits (for MariaDB's disk: a restart would only replay it
    into the same full disk). Such a stream is slow, not stuck: it is never restarted, and its
    stale heartbeat raises no alarm."""
    return (pulse is not None and pulse.in_flight and pulse.age_seconds(now) <= limit_seconds
            and (pulse.waiting_for is not None or pulse.running_seconds(now) <= max_batch_seconds))


@dataclass(frozen=True)
class Heartbeat:
    last: datetime | None  # newest stream_progress row (UTC, aware)
    batches_last_hour: int
    rows_written_last_hour: int
    pulse: Pulse | None = None


def heartbeat(conn: Connection, now: datetime | None = None) -> Heartbeat:
    """The stream's newest micro-batch, the batches of the last hour and the batch in flight: an
    index seek, a bounded range and one row."""
    now = _as_utc(now or datetime.now(UTC)).replace(tzinfo=None)
    newest = last_heartbeat(conn)
    batches, written = conn.execute(text(
        f"SELECT COUNT(*), COALESCE(SUM(rows_written), 0) FROM {STREAM_PROGRESS} WHERE recorded_at >= :since"),
        {"since": now - timedelta(hours=1)}).one()
    return Heartbeat(None if newest is None else newest.replace(tzinfo=UTC), int(batches), int(written), pulse(conn))


def pulse(conn: Connection) -> Pulse | None:
    """The stream's batch in flight, or its last one (one row)."""
    row = conn.execute(text(f"SELECT batch_id, batch_started_at, pulse_at, in_flight, waiting_for, waiting_since "
                            f"FROM {STREAM_PULSE} WHERE query_name = :q"), {"q": READINGS_QUERY}).first()
    return None if row is None else Pulse(int(row[0]), row[1].replace(tzinfo=UTC), row[2].replace(tzinfo=UTC),
                                          bool(row[3]), row[4],
                                          None if row[5] is None else row[5].replace(tzinfo=UTC))


@dataclass(frozen=True)
class LiveTableStatus:
    table: str
    rows_estimate: int
    # UTC, naive as stored: the newest reading, or the end of the newest window
    newest_event_time: datetime | None

    def lag_seconds(self, now: datetime) -> float | None:
        """Wall clock (`now`, aware) minus the newest event time."""
        if self.newest_event_time is None:
            return None
        return now.timestamp() - self.newest_event_time.replace(tzinfo=UTC).timestamp()


def live_table_status(conn: Connection, table: str) -> LiveTableStatus:
    """The newest event time (one index seek) and the engine's row estimate of a live table."""
    time_column = LIVE_TABLES[table]  # a KeyError for anything else: the names go into SQL
    newest = conn.execute(text(f"SELECT MAX({time_column}) FROM {table}")).scalar()
    if newest is not None and table == WINDOWS:
        newest = newest + timedelta(seconds=WINDOW_SECONDS)  # window_start is indexed, window_end is not
    return LiveTableStatus(table, estimated_rows(conn, table), newest)


@dataclass(frozen=True)
class StreamWrites:
    last_write: datetime | None  # UTC, naive: the newest batch that merged any reading
    readings_since: int  # readings new or changed since the `since` asked for


def stream_writes(conn: Connection, *, since: datetime) -> StreamWrites:
    """When the stream last merged readings, and how many since `since` (naive UTC).

    One query writes panelData and, at most a summary round later (storage.stream.summaries), the
    windows and every other derived table: its progress rows say when the live tables last changed.
    """
    last_write, recent = conn.execute(text(
        f"SELECT MAX(recorded_at), COALESCE(SUM(rows_written), 0) FROM {STREAM_PROGRESS} "
        "WHERE query_name = :q AND rows_written > 0 AND recorded_at >= :since"),
        {"q": READINGS_QUERY, "since": since}).one()
    if last_write is None:  # nothing recent: look further back, still by the index
        last_write = conn.execute(text(
            f"SELECT MAX(recorded_at) FROM {STREAM_PROGRESS} WHERE query_name = :q AND rows_written > 0"),
            {"q": READINGS_QUERY}).scalar()
    return StreamWrites(last_write, int(recent))


def record_run_failure(engine: Engine, run_id: str, job_name: str, message: str) -> None:
    """Keep one row per failed Dagster run in `orchestration_run_failures` (Grafana shows them)."""
    with engine.begin() as conn:
        conn.execute(text(
            f"INSERT INTO {RUN_FAILURES} (run_id, job_name, failed_at, message) "
            "VALUES (:id, :job, UTC_TIMESTAMP(3), :msg) ON DUPLICATE KEY UPDATE message = VALUES(message)"),
            {"id": run_id, "job": job_name, "msg": message})
