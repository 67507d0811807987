"""Readings written the way the stream writes them, for tests that need live tables without Kafka.

`write_as_stream` cuts the rows into batches of event time, and commits each like the stream's
sink: `storage.stream.commit.commit_batch` (appends in bulk, corrections exactly, every derived
table in step) and a progress row with the batch's median event time (the pipeline's frontier),
recorded at the batch's own time so that tests can pin the platform's clock anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import text

from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.stream.commit import commit_batch
from solar_platform.storage.stream.latest import LatestReadings
from solar_platform_tests.storage.derived import EPOCH, readings_of

Row = tuple[str, float, int, datetime]  # panel, power W, status, naive UTC time


def write_as_stream(settings: Settings, rows: Iterable[Row], *, batch_seconds: float = 60.0,
                    commit_delay_seconds: float = 5.0) -> int:
    """Commit `rows` (any order) in batches of `batch_seconds` of event time; returns the readings
    new or changed. Each batch's progress row is recorded `commit_delay_seconds` after its newest
    reading."""
    ordered = sorted(rows, key=lambda row: row[3])
    engine = db.engine(settings.as_role("stream"), bulk_load=True)
    latest = LatestReadings()
    written = 0
    start = 0
    while start < len(ordered):
        edge = ordered[start][3] + timedelta(seconds=batch_seconds)
        stop = start
        while stop < len(ordered) and ordered[stop][3] < edge:
            stop += 1
        batch = ordered[start:stop]
        readings = readings_of(batch)
        with engine.begin() as conn:
            committed = commit_batch(conn, readings, latest, settings.energy_max_gap_seconds)
            median = readings.median_time_us()
            conn.execute(text(
                f"INSERT INTO {db.STREAM_PROGRESS} (query_id, query_name, batch_id, rows_in, rows_written, "
                "dead_letters, readings_appended, readings_corrected, max_event_time, event_time_median, "
                "duration_ms, recorded_at) VALUES ('test', 'readings', :b, :n, :w, 0, :a, :c, :newest, :median, 1, "
                ":at)"),
                {"b": median, "n": len(batch), "w": committed.appended + committed.corrected,
                 "a": committed.appended, "c": committed.corrected, "newest": batch[-1][3],
                 "median": EPOCH + timedelta(microseconds=median),
                 "at": batch[-1][3] + timedelta(seconds=commit_delay_seconds)})
        latest = committed.latest
        written += committed.appended + committed.corrected
        start = stop
    return written
