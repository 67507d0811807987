"""A day rebuilt on Spark while the live stream ingests, with late readings landing on that very day
during the rebuild: the stream keeps committing (its freshness is measured before and during the
rebuild), and afterwards every derived table equals a recompute from panelData and the day's rollup
equals its buckets."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pyspark.sql import SparkSession
from sqlalchemy import text

from solar_platform import kafka_clients
from solar_platform.contracts import Reading
from solar_platform.history.rebuild import rebuild
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.streaming.job import run_job
from solar_platform_tests.history.late_data import day_readings, publish
from solar_platform_tests.storage.derived import assert_derived_equal_recompute

pytestmark = pytest.mark.integration

LIVE_PANELS = [f"live-{i}" for i in range(8)]


def _freshness(settings: Settings) -> float:
    """Seconds between now and the newest live reading in panelData (stamped when it was sent; the
    summaries follow a round later)."""
    with db.engine(settings).connect() as conn:
        newest = conn.execute(text("SELECT MAX(time_data) FROM panelData WHERE Panel_id = 'live-0'")).scalar()
    return (datetime.now(UTC).replace(tzinfo=None) - newest).total_seconds() if newest else float("inf")


def test_rebuild_a_day_while_the_stream_ingests(fresh_settings: Settings, spark: SparkSession) -> None:
    settings = fresh_settings.model_copy(update={"stream_trigger_seconds": 1.0, "interval_seconds": 5.0})
    day = (datetime.now(UTC) - timedelta(days=1)).date()
    publish(settings, day_readings(day, 10, 12, 5, panels=[f"p-{i}" for i in range(6)]))
    run_job(settings, "available-now", spark=spark)

    stop, failures = threading.Event(), []
    late = iter(day_readings(day, 10.5, 11.5, 5, panels=["p-0", "p-5"]))

    def stream() -> None:
        try:
            run_job(settings, "continuous", spark=spark, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    def fleet() -> None:  # live readings every second, and now and then a corrected one on the rebuilt day
        producer = kafka_clients.producer(settings, "fleet", acks="all")
        try:
            tick = 0
            while not stop.is_set():
                now = datetime.now(UTC).replace(microsecond=0)
                sent = [Reading(panel, 100.0 + tick % 50, 1, now) for panel in LIVE_PANELS]
                reading = next(late, None) if tick % 3 == 0 else None
                if reading is not None:
                    sent.append(Reading(reading.panel_id, reading.power_w + 7.0, reading.status, reading.time_utc))
                for message in sent:
                    producer.send(settings.topic, key=message.panel_id.encode(),
                                  value=json.dumps(message.to_message()).encode())
                producer.flush()
                tick += 1
                stop.wait(1.0)
        finally:
            producer.close()

    threads = [threading.Thread(target=stream, daemon=True), threading.Thread(target=fleet, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 120
        while _freshness(settings) > 10 and time.monotonic() < deadline and not failures:
            time.sleep(0.5)
        baseline = []
        for _ in range(40):
            baseline.append(_freshness(settings))
            time.sleep(0.5)
        during, done = [], threading.Event()
        report_box = []

        def rebuilder() -> None:
            try:
                start = datetime.combine(day, datetime.min.time())
                report_box.append(rebuild(settings, start, start + timedelta(days=1), chunk=timedelta(hours=2),
                                          panels_per_chunk=2, spark=spark))
            except BaseException as exc:  # noqa: BLE001
                failures.append(exc)
            finally:
                done.set()

        worker = threading.Thread(target=rebuilder, daemon=True)
        rebuild_began = datetime.now(UTC).replace(tzinfo=None)
        worker.start()
        while not done.is_set():
            during.append(_freshness(settings))
            time.sleep(0.5)
        worker.join()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert not failures, failures
    (report,) = report_box
    p95_before, p95_during = float(np.percentile(baseline, 95)), float(np.percentile(during, 95))
    print(f"rebuild {report.seconds:.1f} s, {report.readings} readings, {report.chunks_recomputed_in_sql} chunk(s) "
          f"redone in SQL; stream freshness p95 {p95_before:.1f} s before, {p95_during:.1f} s during")
    assert report.readings >= 6 * 1440
    # Never held off long: batches kept committing throughout the rebuild, never as far apart as the
    # heartbeat's staleness limit. (Freshness p95 during / before: 1.6x on a quiet machine, 2.3x with
    # other work at load 7.5 on the same 2 cores, CPU shared with Spark's rebuild rather than locks;
    # too load-dependent a ratio to assert here. docs/benchmarks.md has the measured figures.)
    with db.engine(settings).connect() as conn:
        commits = [t for (t,) in conn.execute(text(
            "SELECT recorded_at FROM stream_progress WHERE recorded_at >= :a ORDER BY recorded_at"),
            {"a": rebuild_began})]
    gaps = np.diff([(t - rebuild_began).total_seconds() for t in [rebuild_began, *commits]])
    assert len(commits) > report.seconds / 10 and gaps.max() < settings.stream_stale_after_seconds, gaps.max()
    assert_derived_equal_recompute(settings)
    with db.engine(settings).connect() as conn:
        rolled, buckets = conn.execute(text(
            "SELECT (SELECT energy_wh FROM fleet_daily_energy WHERE day = :d), (SELECT SUM(energy_wh) FROM "
            "fleet_energy_15min WHERE bucket_start >= :d AND bucket_start < :d + INTERVAL 1 DAY)"), {"d": day}).one()
        marks = conn.execute(text("SELECT COUNT(*) FROM energy_changes WHERE bucket_start >= :d "
                                  "AND bucket_start < :d + INTERVAL 1 DAY"), {"d": day}).scalar()
    # The rollup is its buckets, or a late reading landed after it and marked the day for the sensor.
    assert rolled == pytest.approx(buckets, rel=1e-9) or marks
