"""The issue's late-day scenario through the real stack (Kafka -> Spark -> MariaDB -> Dagster -> API):
the morning of a day four days ago lands and is rolled up; its afternoon arrives late; the sensor
asks for that day's rollup again, and the API's DAY and lifetime figures equal a numpy recompute of
every reading."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from pyspark.sql import SparkSession
from sqlalchemy import text

from solar_platform.orchestration.rollups.sensors import rollups_follow_late_data
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.streaming.job import run_job
from solar_platform_tests.history.late_data import (
    PANELS,
    api_client,
    api_day,
    api_lifetime,
    day_energy,
    day_readings,
    numpy_buckets,
    publish,
)
from solar_platform_tests.orchestration.conftest import defs_for
from solar_platform_tests.storage.derived import assert_derived_equal_recompute

pytestmark = pytest.mark.integration


def _sensor(defs: dg.Definitions) -> dg.SensorResult | dg.SkipReason:
    with dg.instance_for_test() as instance, dg.build_sensor_context(
            resources=defs.resources, definitions=defs, instance=instance) as context:
        return rollups_follow_late_data(context)


def test_a_rolled_day_follows_its_late_afternoon(fresh_settings: Settings, spark: SparkSession,
                                                  offline_processes) -> None:
    settings = fresh_settings.model_copy(update={"interval_seconds": 30.0})  # max gap 90 s
    now = datetime.now(UTC).replace(microsecond=0)
    day = (now - timedelta(days=4)).date()
    morning, afternoon = day_readings(day, 6, 12, 30), day_readings(day, 12, 18, 30)
    today = day_readings(now.date(), 0, 0.5, 30)  # something after the rolled day, never rolled
    publish(settings, [*morning, *today])
    run_job(settings, "available-now", spark=spark)
    defs = defs_for(settings, processes=offline_processes)
    rollups = defs.resolve_job_def("daily_rollups")
    assert rollups.execute_in_process(partition_key=day.isoformat()).success

    client = api_client(settings, now)
    gap = settings.energy_max_gap_seconds
    before = numpy_buckets([*morning, *today], gap)
    assert api_day(client, day) == pytest.approx(sum(day_energy(b, day) for b in before.values()), rel=1e-9)
    assert isinstance(_sensor(defs), dg.SkipReason)  # the rollup saw every change

    publish(settings, afternoon)  # the site logger's link comes back
    run_job(settings, "available-now", spark=spark)
    stale = api_day(client, day)
    assert stale == pytest.approx(sum(day_energy(b, day) for b in before.values()), rel=1e-9)  # not yet re-rolled

    result = _sensor(defs)
    assert isinstance(result, dg.SensorResult)
    assert [r.partition_key for r in result.run_requests] == [day.isoformat()]
    (request,) = result.run_requests
    assert rollups.execute_in_process(partition_key=request.partition_key, tags=request.tags).success
    assert isinstance(_sensor(defs), dg.SkipReason)

    every = numpy_buckets([*morning, *afternoon, *today], gap)
    fleet_day = sum(day_energy(b, day) for b in every.values())
    assert fleet_day > 1.9 * stale  # the afternoon is half the day
    assert api_day(client, day) == pytest.approx(fleet_day, rel=1e-9)
    assert api_lifetime(client) == pytest.approx(sum(sum(b.values()) for b in every.values()), rel=1e-9)
    for panel in PANELS:
        assert api_day(client, day, panel) == pytest.approx(day_energy(every[panel], day), rel=1e-9)
        assert api_lifetime(client, panel) == pytest.approx(sum(every[panel].values()), rel=1e-9)
    with db.engine(settings).connect() as conn:  # the DAY figure came from the rollup, equal to its buckets
        rolled, buckets = conn.execute(text(
            "SELECT (SELECT energy_wh FROM fleet_daily_energy WHERE day = :d), "
            "(SELECT SUM(energy_wh) FROM fleet_energy_15min WHERE bucket_start >= :d AND bucket_start < :e)"),
            {"d": day, "e": day + timedelta(days=1)}).one()
    assert rolled == pytest.approx(buckets, rel=1e-12)
    assert_derived_equal_recompute(settings)


def test_a_folded_day_whose_readings_expired_follows_a_late_reading(fresh_settings: Settings, spark: SparkSession,
                                                                    offline_processes) -> None:
    """For ever: a day rolled up, folded (its buckets gone) and dropped from panelData by retention
    gets a re-sent reading with a new value. The sensor's run rebuilds the day's buckets from the raw
    archive on Spark, then rolls it up: DAY and lifetime figures equal a recompute of every reading."""
    import dataclasses

    from solar_platform.storage import retention
    from solar_platform.storage.history import folding

    settings = fresh_settings.model_copy(update={"interval_seconds": 30.0, "bucket_retention_days": 5})
    now = datetime.now(UTC).replace(microsecond=0)
    day = (now - timedelta(days=10)).date()
    readings = day_readings(day, 6, 18, 30)
    publish(settings, readings)
    run_job(settings, "available-now", spark=spark)
    defs = defs_for(settings, processes=offline_processes)
    rollups = defs.resolve_job_def("daily_rollups")
    assert rollups.execute_in_process(partition_key=day.isoformat()).success
    assert folding.fold_buckets(settings).folded == [day.isoformat()]
    start = datetime.combine(day, datetime.min.time())
    with db.engine(settings, role="migrator").begin() as conn:  # what retention does to the day's raw readings
        conn.execute(text("DELETE FROM panelData WHERE time_data < :b"), {"b": start + timedelta(days=1)})
        retention.record_dropped_before(conn, "panelData", day + timedelta(days=1))

    changed = dataclasses.replace(readings[400], power_w=readings[400].power_w + 50.0)
    publish(settings, [changed])
    run_job(settings, "available-now", spark=spark)
    result = _sensor(defs)
    assert isinstance(result, dg.SensorResult) and [r.partition_key for r in result.run_requests] == [day.isoformat()]
    assert rollups.execute_in_process(partition_key=day.isoformat()).success

    every = numpy_buckets([*readings, changed], settings.energy_max_gap_seconds)
    client = api_client(settings, now)
    assert api_day(client, day) == pytest.approx(sum(day_energy(b, day) for b in every.values()), rel=1e-9)
    assert api_lifetime(client) == pytest.approx(sum(sum(b.values()) for b in every.values()), rel=1e-9)
    assert api_lifetime(client, changed.panel_id) == pytest.approx(sum(every[changed.panel_id].values()), rel=1e-9)
    assert isinstance(_sensor(defs), dg.SkipReason)
