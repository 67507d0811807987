"""Rebuilds on Spark and in MariaDB: the same figures whichever engine runs the energy model and the
window means, equal to what the stream keeps; a day rebuilt from the archive equals the same day
rebuilt from panelData; a range with no source stops with one line and changes nothing."""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
from pyspark.sql import SparkSession
from sqlalchemy import text

from solar_platform.history.rebuild import rebuild
from solar_platform.settings import Settings
from solar_platform.storage import db, retention
from solar_platform.storage.rebuild import RebuildError
from solar_platform.streaming.job import run_job
from solar_platform_tests.history.late_data import day_readings, publish
from solar_platform_tests.storage.test_history_changes import Stream

pytestmark = pytest.mark.integration

DAY = date(2025, 6, 10)
_DERIVED = {
    "panelDataAgg": "SELECT Panel_id, window_start, window_end, reading_count, ROUND(total_power, 9), "
                    "ROUND(power_sum, 9), power_min, power_max, readings_on, ROUND(power_on_sum, 9), power_on_min, "
                    "power_on_max, first_time, first_power, last_time, last_power, last_on_time, last_off_time "
                    "FROM panelDataAgg",
    "panel_energy_15min": "SELECT panel_id, bucket_start, ROUND(energy_wh, 6), ROUND(covered_seconds, 6), readings, "
                          "readings_on, peak_w, min_w FROM panel_energy_15min",
    "fleet_energy_15min": "SELECT bucket_start, ROUND(energy_wh, 6), ROUND(covered_seconds, 6), readings, "
                          "readings_on FROM fleet_energy_15min",
    "panel_latest": "SELECT * FROM panel_latest",
    "panel_daily_energy": "SELECT day, panel_id, ROUND(energy_wh, 6), readings_received FROM panel_daily_energy",
}


def snapshot(settings: Settings, tables: tuple[str, ...] = tuple(_DERIVED)) -> dict[str, list]:
    with db.engine(settings).connect() as conn:
        return {name: sorted(tuple(row) for row in conn.execute(text(_DERIVED[name])).all()) for name in tables}


def _utc(hours: float) -> datetime:
    return datetime.combine(DAY, datetime.min.time()) + timedelta(hours=hours)


def test_both_engines_equal_what_the_stream_keeps(fresh_settings: Settings, spark: SparkSession) -> None:
    """The stream's upkeep (both of its paths, fed late, shuffled, re-sent and changed batches), the
    rebuild on Spark (numpy) and the rebuild in MariaDB (SQL) give the same derived tables."""
    settings = fresh_settings.model_copy(update={"interval_seconds": 5.0, "raw_retention_days": 3650})
    rng = random.Random(11)
    readings = {}
    for i in range(6):
        for k in range(2 * 720):  # 2 hours across bucket edges, with holes and a status mix
            if rng.random() < 0.05:
                continue
            readings[(f"p-{i}", _utc(11) + timedelta(seconds=5 * k, milliseconds=rng.randrange(0, 900)))] = (
                rng.uniform(0, 400), rng.choice([0, 1, 1, 1]))
    items = list(readings.items())
    rng.shuffle(items)
    batches = [items[j:j + 900] for j in range(0, len(items), 900)]
    batches += [items[:300], [(key, (value[0] + 3.0, 1 - value[1])) for key, value in items[300:700]]]
    stream = Stream(settings)
    for batch in batches:
        stream.commit([(p, w, s, t) for (p, t), (w, s) in batch])
    kept = snapshot(settings, ("panelDataAgg", "panel_energy_15min", "fleet_energy_15min", "panel_latest"))
    assert len(kept["panel_energy_15min"]) == 6 * 8

    on_spark = rebuild(settings, _utc(10), _utc(14), chunk=timedelta(minutes=45), panels_per_chunk=4, spark=spark)
    assert on_spark.engine == "spark" and on_spark.readings == len(readings) and on_spark.chunks == 6
    rebuilt = snapshot(settings)
    assert {k: v for k, v in rebuilt.items() if k in kept} == kept
    in_sql = rebuild(settings, _utc(10), _utc(14), engine="sql", chunk=timedelta(minutes=30), panels_per_chunk=2)
    assert in_sql.engine == "sql" and in_sql.readings == len(readings)
    assert snapshot(settings) == rebuilt


def test_a_day_rebuilt_from_the_archive_equals_it_rebuilt_from_panel_data(fresh_settings: Settings,
                                                                          spark: SparkSession) -> None:
    settings = fresh_settings.model_copy(update={"interval_seconds": 30.0})
    day = (datetime.now(UTC) - timedelta(days=3)).date()
    morning, late = day_readings(day, 5, 13, 30), day_readings(day, 12.5, 19, 30)
    publish(settings, morning)
    run_job(settings, "available-now", spark=spark)
    changed = [dataclasses.replace(r, power_w=r.power_w + 1) for r in morning[::50]]
    publish(settings, [*late[:40], *changed])  # late, and re-sent with changed values
    run_job(settings, "available-now", spark=spark)
    publish(settings, late[40:])
    run_job(settings, "available-now", spark=spark)
    start = datetime.combine(day, datetime.min.time())
    rebuild(settings, start, start + timedelta(days=1), spark=spark)
    from_raw = snapshot(settings, ("panel_energy_15min", "fleet_energy_15min", "panel_daily_energy"))
    windows = snapshot(settings, ("panelDataAgg",))

    # Retention drops the day from panelData: the next rebuild of it can only read the archive.
    with db.engine(settings, role="migrator").begin() as conn:
        conn.execute(text("DELETE FROM panelData WHERE time_data < :b"), {"b": start + timedelta(days=1)})
        conn.execute(text("UPDATE panel_energy_15min SET energy_wh = 0"))  # figures to be put right
        retention.record_dropped_before(conn, "panelData", day + timedelta(days=1))
    report = rebuild(settings, start, start + timedelta(days=1), spark=spark)
    assert report.chunks_from_archive == report.chunks == 24
    assert snapshot(settings, ("panel_energy_15min", "fleet_energy_15min", "panel_daily_energy")) == from_raw
    assert snapshot(settings, ("panelDataAgg",)) == windows  # windows follow raw retention: left alone


def test_a_range_without_a_source_stops_with_one_line(fresh_settings: Settings, spark: SparkSession) -> None:
    settings = fresh_settings
    stream = Stream(settings)
    stream.commit([("p-0", 100.0, 1, _utc(12) + timedelta(seconds=5 * k)) for k in range(720)])
    with db.engine(settings, role="migrator").begin() as conn:
        retention.record_dropped_before(conn, "panelData", DAY + timedelta(days=1))
    before = snapshot(settings)
    with pytest.raises(RebuildError, match=r"no source for 2025-06-10 00:00 \.\. 2025-06-11 00:00 UTC: .* the "
                                           r"archive is empty; nothing was changed"):
        rebuild(settings, _utc(0), _utc(24), spark=spark)
    assert snapshot(settings) == before
    env = {**os.environ, "SOLAR_MYSQL_DATABASE": settings.mysql_database, "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "solar_platform", "rebuild", "--from", "2025-06-10", "--to",
                           "2025-06-11"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "no source for 2025-06-10 00:00" in done.stderr and "Traceback" not in done.stderr
    assert snapshot(settings) == before


def test_a_chunk_the_stream_changes_while_spark_computes_it_is_redone_exactly(fresh_settings: Settings,
                                                                             spark: SparkSession) -> None:
    """The race a rebuild beside the stream must not lose: Spark read a chunk, then a batch changed it,
    then the rebuild writes. The write sees the chunk's change marks moved and recomputes it in
    MariaDB, in the transaction that holds the stream off."""
    from solar_platform.history import rebuild as spark_rebuild
    from solar_platform.storage import rebuild as shared
    from solar_platform.storage.history import changes
    from solar_platform.storage.history.archive import Archive
    from solar_platform.storage.rebuild import PANDATA, Chunk, RebuildReport
    from solar_platform_tests.storage.derived import assert_derived_equal_recompute

    settings = fresh_settings
    stream = Stream(settings)
    stream.commit([(f"p-{i}", 100.0 + i, 1, _utc(12) + timedelta(seconds=5 * k)) for i in range(3) for k in range(720)])
    chunk = Chunk(_utc(12), _utc(13), PANDATA)
    with db.engine(settings).connect() as conn:
        seen = changes.marks(conn, chunk.start, chunk.end)
        ranges = shared.panel_ranges(conn, 2)
    rows = spark_rebuild._compute(spark, settings, Archive.of(settings), chunk, 2)
    stream.commit([("p-1", 999.0, 0, _utc(12.5)), ("p-2", 5.0, 1, _utc(12.5) + timedelta(seconds=2))])
    report = RebuildReport(chunk.start, chunk.end)
    assert spark_rebuild._write(settings, chunk, ranges, rows, seen, report)
    assert report.chunks_recomputed_in_sql == 1 and report.readings == 3 * 720 + 1
    assert_derived_equal_recompute(settings)
