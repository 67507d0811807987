"""Data the way the world sends it, through the real stack (Kafka, Spark, MariaDB), no mocks.

Late by minutes and by a day, a backfill while the live stream runs, a clock years ahead, a
re-sent reading with a changed value, a host in another time zone. After each, every derived
table equals a recompute from panelData (`assert_derived_equal_recompute`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import SparkSession
from sqlalchemy import text

from solar_platform.contracts import Reading
from solar_platform.fleet.publisher import fast_forward
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.streaming.job import run_job
from solar_platform_tests.history.late_data import publish
from solar_platform_tests.storage.derived import assert_derived_equal_recompute

pytestmark = pytest.mark.integration

PANELS = ("panel-a", "panel-b", "panel-c")


def _series(start: datetime, count: int, power: float = 100.0, step_s: float = 5.0) -> list[Reading]:
    return [Reading(panel, power + i + 1000 * k, 1, start + timedelta(seconds=step_s * i))
            for i in range(count) for k, panel in enumerate(PANELS)]


def _window(settings: Settings, panel: str, start: datetime) -> tuple[float, int] | None:
    with db.engine(settings).connect() as conn:
        row = conn.execute(text("SELECT total_power, reading_count FROM panelDataAgg WHERE Panel_id = :p "
                                "AND window_start = :w"), {"p": panel, "w": start.replace(tzinfo=None)}).first()
    return None if row is None else (float(row[0]), int(row[1]))


def _count(settings: Settings, sql: str, **params: object) -> int:
    with db.engine(settings).connect() as conn:
        return int(conn.execute(text(sql), params).scalar() or 0)


def test_late_readings_by_minutes_and_a_day_complete_their_windows(fresh_settings: Settings,
                                                                    spark: SparkSession) -> None:
    settings = fresh_settings
    now = datetime.now(UTC).replace(microsecond=0)
    live_start = now - timedelta(minutes=10) - timedelta(seconds=now.second % 30)
    # Every other reading now; the missing ones arrive 2 minutes later, then yesterday's whole hour.
    on_time = [r for i, r in enumerate(_series(live_start, 120)) if (i // 3) % 2 == 0]
    late = [r for i, r in enumerate(_series(live_start, 120)) if (i // 3) % 2 == 1]
    publish(settings, on_time)
    run_job(settings, "available-now", spark=spark)
    assert _window(settings, "panel-a", live_start) == (100.0 + 2 / 3 * 3, 3)  # readings 0, 2, 4 of 6
    assert_derived_equal_recompute(settings)

    publish(settings, late)
    run_job(settings, "available-now", spark=spark)
    assert _window(settings, "panel-a", live_start) == (102.5, 6)  # the mean of all six, 100..105
    assert_derived_equal_recompute(settings)

    a_day_ago = live_start - timedelta(days=1)
    publish(settings, _series(a_day_ago, 720))
    run_job(settings, "available-now", spark=spark)
    assert _window(settings, "panel-c", a_day_ago) == (2102.5, 6)
    assert _count(settings, "SELECT COUNT(*) FROM panelData") == 3 * (120 + 720)
    assert_derived_equal_recompute(settings)


def test_backfill_of_yesterday_while_the_live_stream_runs(fresh_settings: Settings, spark: SparkSession) -> None:
    settings = fresh_settings.model_copy(update={"stream_trigger_seconds": 1.0})
    stop = threading.Event()
    failure: list[BaseException] = []

    def stream() -> None:
        try:
            run_job(settings, "continuous", spark=spark, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failure.append(exc)

    runner = threading.Thread(target=stream, daemon=True)
    runner.start()
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        live = _series(now - timedelta(minutes=2), 24)
        yesterday = (now - timedelta(days=1)).replace(hour=10, minute=0, second=0)
        publish(settings, live[:36])
        summary = fast_forward(settings, start=yesterday, end=yesterday + timedelta(minutes=20), panels=8, seed=5)
        publish(settings, live[36:])
        expected = len(live) + summary.messages_delivered
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not failure:
            if _count(settings, "SELECT COUNT(*) FROM panelData") >= expected:
                break
            time.sleep(1)
    finally:
        stop.set()
        runner.join(timeout=120)
    assert not failure, failure
    assert _count(settings, "SELECT COUNT(*) FROM panelData") == expected
    day = yesterday.replace(tzinfo=None)
    assert _count(settings, "SELECT COUNT(*) FROM panelDataAgg WHERE window_start >= :a AND window_start < :b",
                  a=day, b=day + timedelta(minutes=20)) == 8 * 40
    assert_derived_equal_recompute(settings)


def test_a_clock_years_ahead_is_dead_lettered_and_stops_nobody(fresh_settings: Settings,
                                                               spark: SparkSession) -> None:
    settings = fresh_settings
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(minutes=5) - timedelta(seconds=now.second % 30)
    first, second = _series(start, 12), _series(start + timedelta(seconds=60), 12)
    wrong_clock = Reading("panel-b", 42.0, 1, now + timedelta(days=5 * 365))
    before_floor = Reading("panel-b", 42.0, 1, datetime(1999, 12, 31, 23, 59, tzinfo=UTC))
    publish(settings, [*first, wrong_clock, before_floor])
    run_job(settings, "available-now", spark=spark)
    publish(settings, second)  # later batches still write their windows
    run_job(settings, "available-now", spark=spark)

    assert _count(settings, "SELECT COUNT(*) FROM panelData") == len(first) + len(second)
    assert _count(settings, "SELECT COUNT(*) FROM panelData WHERE time_data > UTC_TIMESTAMP()") == 0
    with db.engine(settings).connect() as conn:
        reasons = sorted(r for (r,) in conn.execute(text("SELECT reason FROM dead_letters")))
    assert reasons == ["time_in_future", "time_out_of_range"]
    assert _window(settings, "panel-a", start + timedelta(seconds=60)) == (102.5, 6)
    assert _window(settings, "panel-c", start + timedelta(seconds=90)) == (2108.5, 6)
    assert_derived_equal_recompute(settings)


def test_a_re_sent_reading_with_a_changed_value_changes_its_window(fresh_settings: Settings,
                                                                   spark: SparkSession) -> None:
    settings = fresh_settings
    start = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    publish(settings, _series(start, 12))
    run_job(settings, "available-now", spark=spark)
    assert _window(settings, "panel-a", start) == (102.5, 6)
    publish(settings, [Reading("panel-a", 160.0, 0, start + timedelta(seconds=10))])  # was 102 W, status 1
    run_job(settings, "available-now", spark=spark)
    changed = _window(settings, "panel-a", start)
    assert changed is not None and changed[1] == 6
    assert changed[0] == pytest.approx((100 + 101 + 160 + 103 + 104 + 105) / 6, rel=1e-12)
    with db.engine(settings).connect() as conn:
        assert conn.execute(text("SELECT readings_on FROM panel_energy_15min WHERE panel_id = 'panel-a'")).scalar() \
            == 11
    assert_derived_equal_recompute(settings)


def test_a_host_in_tokyo_stores_and_reports_utc(fresh_settings: Settings) -> None:
    settings = fresh_settings
    start = datetime(2024, 6, 1, 23, 59, 30, tzinfo=UTC)  # a UTC day edge, 08:59 in Tokyo
    publish(settings, [*_series(start, 12), Reading("panel-a", 1.0, 1, datetime.now(UTC) + timedelta(days=1))])
    env = {**os.environ, "TZ": "Asia/Tokyo", "SOLAR_HOME": str(settings.home_dir),
           "SOLAR_MYSQL_DATABASE": settings.mysql_database, "SOLAR_TOPIC": settings.topic}
    done = subprocess.run([sys.executable, "-m", "solar_platform", "stream", "run", "--trigger", "available-now"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    naive = start.replace(tzinfo=None)
    with db.engine(settings).connect() as conn:
        first, last = conn.execute(text("SELECT MIN(time_data), MAX(time_data) FROM panelData")).one()
        assert (first, last) == (naive, naive + timedelta(seconds=55))
        windows = [w for (w,) in conn.execute(text(
            "SELECT DISTINCT window_start FROM panelDataAgg ORDER BY window_start"))]
        assert windows == [naive + timedelta(seconds=30 * i) for i in range(2)]
        buckets = [b for (b,) in conn.execute(text("SELECT bucket_start FROM fleet_energy_15min ORDER BY 1"))]
        assert buckets == [datetime(2024, 6, 1, 23, 45), datetime(2024, 6, 2, 0, 0)]
        event, recorded = conn.execute(text(
            "SELECT max_event_time, recorded_at FROM stream_progress ORDER BY recorded_at DESC LIMIT 1")).one()
        assert event == naive + timedelta(seconds=55)
        assert abs((recorded - datetime.now(UTC).replace(tzinfo=None)).total_seconds()) < 600
        letter_time = conn.execute(text("SELECT kafka_timestamp FROM dead_letters")).scalar()
        assert abs((letter_time - datetime.now(UTC).replace(tzinfo=None)).total_seconds()) < 600
    assert_derived_equal_recompute(settings)
