"""Readings written the way the stream writes them, for tests that need live tables without Kafka.

`write_as_stream` cuts the rows into batches of event time, and commits each like the stream's
sink: `storage.stream.commit.commit_batch` (appends in bulk, corrections exactly, every derived
table in step), the fleet's counters (`fleet_now`) and a progress row with the batch's median
event time (the pipeline's frontier), both recorded at the batch's own time so that tests can pin
the platform's clock anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.stream.commit import commit_batch
from solar_platform.storage.stream.latest import LatestReadings, record_fleet_now
from solar_platform_tests.storage.derived import EPOCH, readings_of

Row = tuple[str, float, int, datetime]  # panel, power W, status, naive UTC time


def write_as_stream(settings: Settings, rows: Iterable[Row], *, batch_seconds: float = 60.0,
                    commit_delay_seconds: float = 5.0, arrivals: Sequence[datetime] | None = None) -> int:
    """Commit `rows` (any order) in batches of `batch_seconds` of arrival time; returns the readings
    new or changed. A reading arrives at its own time unless `arrivals` (one per row) says otherwise
    (a wrong clock, a late logger). Each batch's progress row is recorded `commit_delay_seconds`
    after its newest arrival."""
    rows = list(rows)
    arrived = list(arrivals) if arrivals is not None else [row[3] for row in rows]
    order = sorted(range(len(rows)), key=lambda i: arrived[i])
    ordered = [rows[i] for i in order]
    arrival = [arrived[i] for i in order]
    engine = db.engine(settings.as_role("stream"), bulk_load=True)
    latest = LatestReadings()
    written = 0
    start = 0
    while start < len(ordered):
        edge = arrival[start] + timedelta(seconds=batch_seconds)
        stop = start
        while stop < len(ordered) and arrival[stop] < edge:
            stop += 1
        batch = ordered[start:stop]
        readings = readings_of(batch)
        recorded = arrival[stop - 1] + timedelta(seconds=commit_delay_seconds)
        with engine.begin() as conn:
            committed = commit_batch(conn, readings, latest, settings.energy_max_gap_seconds)
            median = readings.frontier_us()
            record_fleet_now(conn, committed.latest, as_of=recorded.replace(tzinfo=UTC), reference_us=median,
                             horizon_seconds=settings.current_power_horizon_seconds)
            conn.execute(text(
                f"INSERT INTO {db.STREAM_PROGRESS} (query_id, query_name, batch_id, rows_in, rows_written, "
                "dead_letters, readings_appended, readings_corrected, max_event_time, frontier_time, "
                "duration_ms, recorded_at) VALUES ('test', 'readings', :b, :n, :w, 0, :a, :c, :newest, :median, 1, "
                ":at)"),
                {"b": median, "n": len(batch), "w": committed.appended + committed.corrected,
                 "a": committed.appended, "c": committed.corrected, "newest": max(row[3] for row in batch),
                 "median": EPOCH + timedelta(microseconds=median),
                 "at": recorded})
        latest = committed.latest
        written += committed.appended + committed.corrected
        start = stop
    return written
