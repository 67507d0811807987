"""The streaming job against the real stack: Kafka (2 brokers), MariaDB and Spark, no mocks.

The SparkSession is shared (`conftest.spark`); every test gets its own database, topic and
checkpoint from `fresh_settings`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pyspark.sql import SparkSession
from sqlalchemy import text

from solar_platform import kafka_clients
from solar_platform.contracts import Reading
from solar_platform.fleet.publisher import fast_forward
from solar_platform.fleet.simulation import FleetReadings, simulate_readings
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.windows import WINDOW_SECONDS
from solar_platform.streaming.errors import StreamAlreadyRunning, StreamQueryFailed
from solar_platform.streaming.job import run_job
from solar_platform.streaming.stage_lock import StageLock
from solar_platform_tests.storage.derived import assert_derived_equal_recompute
from solar_platform_tests.streaming.cases import MALFORMED_CASES, Case

pytestmark = pytest.mark.integration

PANELS = 200
FLEET_SEED = 20240501  # the simulated fleet's random seed
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FIRST_RANGE = (START, START + timedelta(seconds=150))  # 30 readings per panel at 5 s
SECOND_RANGE = (START + timedelta(seconds=150), START + timedelta(seconds=180))  # 6 more


# ------------------------------------------------------------------------------ helpers for e2e
def _publish_raw(settings: Settings, records: list[tuple[bytes | None, bytes | None]]) -> list[tuple[int, int]]:
    """Send raw (key, value) records; returns each one's (partition, offset)."""
    producer = kafka_clients.producer(settings, "fleet", acks="all")
    try:
        futures = [producer.send(settings.topic, key=key, value=value) for key, value in records]
        producer.flush()
        metadata = [future.get(timeout=30) for future in futures]
    finally:
        producer.close()
    return [(meta.partition, meta.offset) for meta in metadata]


def _publish_malformed(settings: Settings, cases: tuple[Case, ...]) -> dict[tuple[int, int], Case]:
    keys = [None if index == 0 else f"malformed-{case.name}".encode() for index, case in enumerate(cases)]
    placed = _publish_raw(settings, [(key, case.payload) for key, case in zip(keys, cases, strict=True)])
    return dict(zip(placed, cases, strict=True))


def _readings_by_key(fleets: list[FleetReadings]) -> dict[tuple[str, datetime], tuple[float, int]]:
    expected: dict[tuple[str, datetime], tuple[float, int]] = {}
    for fleet in fleets:
        for reading in fleet.readings():
            expected[(reading.panel_id, reading.time_utc.replace(tzinfo=None))] = (reading.power_w, reading.status)
    return expected


def _window_means(fleets: list[FleetReadings], window_seconds: int) -> dict[tuple[str, datetime], tuple[float, int]]:
    """numpy recompute of panelDataAgg from what was published: mean power and count per window."""
    times_ms = np.concatenate([fleet.times_ms for fleet in fleets])
    power = np.concatenate([fleet.power_w for fleet in fleets])
    panel_ids = fleets[0].panel_ids
    window_ms = window_seconds * 1000
    starts = times_ms // window_ms * window_ms
    expected = {}
    for start in np.unique(starts):
        rows = starts == start
        means = power[rows].mean(axis=0)
        moment = datetime.fromtimestamp(int(start) / 1000, UTC).replace(tzinfo=None)
        for column, panel_id in enumerate(panel_ids):
            expected[(panel_id, moment)] = (float(means[column]), int(rows.sum()))
    return expected


def _snapshot(settings: Settings) -> dict[str, list[tuple[object, ...]]]:
    tables = {
        db.READINGS: "Panel_id, time_data",
        db.WINDOWS: "Panel_id, window_start",
        db.DEAD_LETTERS: "id",
        db.STREAM_PROGRESS: "query_name, batch_id",
    }
    with db.engine(settings).connect() as connection:
        return {name: [tuple(row) for row in connection.execute(text(f"SELECT * FROM `{name}` ORDER BY {order}"))]
                for name, order in tables.items()}


def _check_tables(settings: Settings, fleets: list[FleetReadings], malformed: dict[tuple[int, int], Case],
                  tombstones: set[tuple[int, int]], records_published: int) -> None:
    snapshot = _snapshot(settings)

    # panelData: exactly the published valid readings, once each.
    stored = {(row[0], row[3]): (row[1], row[2]) for row in snapshot[db.READINGS]}
    assert len(stored) == len(snapshot[db.READINGS])
    assert stored == _readings_by_key(fleets)

    # panelDataAgg: every window equals the numpy recompute.
    expected_windows = _window_means(fleets, WINDOW_SECONDS)
    windows = {(row[0], row[2]): row for row in snapshot[db.WINDOWS]}
    assert windows.keys() == expected_windows.keys()
    for key, (mean_w, count) in expected_windows.items():
        _panel, total_power, start, end, reading_count = windows[key][:5]  # the seed's columns
        assert abs(total_power - mean_w) <= 1e-6, key
        assert reading_count == count, key
        assert end - start == timedelta(seconds=WINDOW_SECONDS)

    # dead_letters: every malformed message, with its reason, source position, key and payload.
    letters = {(row[2], row[3]): row for row in snapshot[db.DEAD_LETTERS]}
    assert letters.keys() == malformed.keys() | tombstones
    for position, case in malformed.items():
        _id, topic, _partition, _offset, key, payload, reason, kafka_time, _recorded = letters[position]
        assert (topic, reason, payload) == (settings.topic, case.expected.value, case.payload), case.name  # type: ignore[union-attr]
        assert key in (None, f"malformed-{case.name}".encode())
        assert kafka_time is not None
    for position in tombstones:
        assert letters[position][6] == "invalid_json" and letters[position][5] is None

    # stream_progress: one row per batch of each query, adding up to what went through.
    progress = snapshot[db.STREAM_PROGRESS]
    readings_rows = [row for row in progress if row[1] == "readings"]
    assert {row[1] for row in progress} == {"readings"}
    assert sum(row[3] for row in readings_rows) == records_published
    assert sum(row[5] for row in readings_rows) == len(malformed) + len(tombstones)
    assert max(row[6] for row in readings_rows if row[6] is not None) == max(key[1] for key in stored)


def _republish(settings: Settings, readings: list[Reading]) -> int:
    """Send readings again, as a producer retry or an upstream replay would; returns how many."""
    records: list[tuple[bytes | None, bytes | None]] = [
        (reading.panel_id.encode(), json.dumps(reading.to_message()).encode()) for reading in readings
    ]
    return len(_publish_raw(settings, records))


# ------------------------------------------------------------------------------------- the tests
def test_end_to_end_exactly_once(fresh_settings: Settings, spark: SparkSession) -> None:
    settings = fresh_settings
    # 1. A deterministic fleet and every malformed case (plus a tombstone) on a fresh topic.
    summary = fast_forward(settings, start=FIRST_RANGE[0], end=FIRST_RANGE[1], panels=PANELS, seed=FLEET_SEED)
    assert summary.all_delivered and summary.messages_delivered == PANELS * 30
    utc_malformed = tuple(case for case in MALFORMED_CASES if case.source_zone == settings.source_timezone)
    malformed = _publish_malformed(settings, utc_malformed)
    tombstones = set(_publish_raw(settings, [(b"tombstone", None)]))
    fleets = [simulate_readings(settings, start=FIRST_RANGE[0], end=FIRST_RANGE[1], panels=PANELS, seed=FLEET_SEED)]

    published = PANELS * 30 + len(malformed) + len(tombstones)
    run_job(settings, "available-now", spark=spark)
    _check_tables(settings, fleets, malformed, tombstones, published)

    # 2. Run again from the checkpoint: nothing to do, nothing changes.
    before = _snapshot(settings)
    run_job(settings, "available-now", spark=spark)
    assert _snapshot(settings) == before

    # 3. New readings (some sent twice), replays of old ones and two more malformed messages:
    #    only the new rows appear; old rows and windows stay exactly as they were.
    summary = fast_forward(settings, start=SECOND_RANGE[0], end=SECOND_RANGE[1], panels=PANELS, seed=FLEET_SEED)
    assert summary.all_delivered
    second = simulate_readings(settings, start=SECOND_RANGE[0], end=SECOND_RANGE[1], panels=PANELS, seed=FLEET_SEED)
    published += PANELS * 6
    published += _republish(settings, list(second.readings())[:50])  # duplicates within the next batch
    published += _republish(settings, list(fleets[0].readings())[:20])  # replays of stored readings
    malformed |= _publish_malformed(settings, utc_malformed[:2])
    published += 2
    fleets.append(second)

    run_job(settings, "available-now", spark=spark)
    after = _snapshot(settings)
    assert len(after[db.READINGS]) == len(before[db.READINGS]) + PANELS * 6
    assert set(before[db.READINGS]) <= set(after[db.READINGS])
    assert set(before[db.WINDOWS]) <= set(after[db.WINDOWS])
    assert set(before[db.DEAD_LETTERS]) <= set(after[db.DEAD_LETTERS])
    _check_tables(settings, fleets, malformed, tombstones, published)
    assert_derived_equal_recompute(settings)


def test_second_job_on_the_same_database_exits_2(fresh_settings: Settings) -> None:
    from typer.testing import CliRunner

    from solar_platform.streaming.commands import app

    holder = StageLock(fresh_settings)
    holder.acquire()
    try:
        with pytest.raises(StreamAlreadyRunning, match="already writing"):
            run_job(fresh_settings, "available-now")
        env = {"SOLAR_MYSQL_DATABASE": fresh_settings.mysql_database, "SOLAR_TOPIC": fresh_settings.topic}
        result = CliRunner().invoke(app, ["run", "--trigger", "available-now"], env=env)
        assert result.exit_code == 2
        assert "already writing" in result.output
    finally:
        holder.release()


def test_query_failure_is_raised_with_its_message(fresh_settings: Settings, spark: SparkSession) -> None:
    fast_forward(fresh_settings, start=FIRST_RANGE[0], end=FIRST_RANGE[0] + timedelta(seconds=10), panels=5,
                 seed=FLEET_SEED)
    db.table(fresh_settings, db.READINGS)  # the job's upsert is built from this (cached) definition
    with db.engine(fresh_settings).begin() as connection:
        connection.execute(text(f"DROP TABLE `{db.READINGS}`"))
    with pytest.raises(StreamQueryFailed, match=r"query .readings. failed: .*ProgrammingError.*doesn.t exist"):
        run_job(fresh_settings, "available-now", spark=spark)


def test_cli_continuous_run_stops_cleanly_on_sigterm(fresh_settings: Settings) -> None:
    settings = fresh_settings
    fast_forward(settings, start=FIRST_RANGE[0], end=FIRST_RANGE[0] + timedelta(seconds=30), panels=20, seed=FLEET_SEED)
    env = {
        **os.environ,
        "SOLAR_HOME": str(settings.home_dir),
        "SOLAR_MYSQL_DATABASE": settings.mysql_database,
        "SOLAR_STREAM_TRIGGER_SECONDS": "1",
    }
    job = subprocess.Popen(
        [sys.executable, "-m", "solar_platform", "stream", "run", "--trigger", "continuous", "--topic", settings.topic],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        stored = 0
        while time.monotonic() < deadline and job.poll() is None:
            with db.engine(settings).connect() as connection:
                stored = connection.execute(text(f"SELECT COUNT(*) FROM `{db.READINGS}`")).scalar() or 0
            if stored == 20 * 6:
                break
            time.sleep(1)
        assert stored == 20 * 6, job.stdout.read().decode() if job.poll() is not None and job.stdout else stored
        job.send_signal(signal.SIGTERM)
        output, _ = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 0, output.decode()[-3000:]
