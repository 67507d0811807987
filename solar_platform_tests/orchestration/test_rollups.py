"""Daily rollups in Spark: a single-run backfill of three days, checked against numpy."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, time, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from solar_platform.fleet.simulation import from_epoch_ms, simulate_readings
from solar_platform.storage import db
from solar_platform.storage.rollups import expected_readings_per_day
from solar_platform_tests.orchestration.conftest import insert_readings, test_defs

pytestmark = pytest.mark.integration

FIRST_DAY = date(2025, 3, 10)
DAYS = 3


def _fleet_settings(settings):
    return settings.model_copy(update={"panels": 20, "interval_seconds": 60.0, "seed": 11,
                                       "production_start": time(10, 0), "production_hours": 4.0})


def _simulated(settings):
    start = datetime.combine(FIRST_DAY, time())
    return simulate_readings(settings, start=start, end=start + timedelta(days=DAYS))


def _numpy_energy(readings) -> dict[tuple[date, str], float]:
    days = readings.times_ms // 86_400_000
    out = {}
    for day_index in np.unique(days):
        rows = days == day_index
        seconds = readings.times_ms[rows] / 1000.0
        for col, pid in enumerate(readings.panel_ids):
            out[(from_epoch_ms(int(day_index) * 86_400_000).date(), pid)] = float(
                np.trapezoid(readings.power_w[rows, col], seconds) / 3600.0)
    return out


def _backfill(settings, processes):
    defs = test_defs(settings, processes=processes)
    last = FIRST_DAY + timedelta(days=DAYS - 1)
    result = defs.resolve_job_def("daily_rollups").execute_in_process(tags={
        "dagster/asset_partition_range_start": FIRST_DAY.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat()})
    assert result.success
    return result


def _assert_matches_numpy(settings, readings, result) -> None:
    expected = _numpy_energy(readings)
    with db.engine(settings).connect() as conn:
        stored = {(d, p): (e, n, x) for d, p, e, n, x in conn.execute(text(
            "SELECT day, panel_id, energy_wh, readings_received, readings_expected FROM panel_daily_energy"))}
        fleet = conn.execute(text("SELECT day, energy_wh, panels_reporting FROM fleet_daily_energy ORDER BY day")).all()
    assert set(stored) == set(expected)
    for key, wh in expected.items():
        assert stored[key][0] == pytest.approx(wh, rel=1e-3), key
        assert stored[key][1] == stored[key][2] == expected_readings_per_day(60.0) == 1440
    assert [row[0] for row in fleet] == [FIRST_DAY + timedelta(days=i) for i in range(DAYS)]
    for day, wh, panels in fleet:
        assert panels == 20
        assert wh == pytest.approx(sum(v for (d, _), v in expected.items() if d == day), rel=1e-3)
    checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"matches_numpy_recompute": True, "peak_within_pmax": True, "readings_complete": True,
                      "matches_panelData": True}


def test_single_run_backfill_of_three_days_matches_numpy(fresh_settings, offline_processes):
    settings = _fleet_settings(fresh_settings)
    readings = _simulated(settings)
    insert_readings(settings, [
        (r.panel_id, r.power_w, r.status, r.time_utc.replace(tzinfo=None)) for r in readings.readings()])
    defs = test_defs(settings, processes=offline_processes)
    assert defs.resolve_job_def("setup_platform").execute_in_process().success  # registry with Pmax
    result = _backfill(settings, offline_processes)
    # one run materialized the three partitions of both assets
    partitions = {(e.asset_key.to_user_string(), e.partition) for e in result.get_asset_materialization_events()}
    days = [(FIRST_DAY + timedelta(days=i)).isoformat() for i in range(DAYS)]
    assert partitions == {(a, d) for a in ("panel_daily_energy", "fleet_daily_energy") for d in days}
    _assert_matches_numpy(settings, readings, result)
    # idempotent: running again replaces the days with identical rows
    again = _backfill(settings, offline_processes)
    _assert_matches_numpy(settings, readings, again)


def test_rollup_check_fails_and_blocks_on_corrupted_readings(fresh_settings, offline_processes):
    """A reading above 1.25 x Pmax fails the blocking peak check: the fleet rollup does not run."""
    settings = _fleet_settings(fresh_settings)
    readings = _simulated(settings)
    rows = [(r.panel_id, r.power_w, r.status, r.time_utc.replace(tzinfo=None)) for r in readings.readings()
            if r.time_utc.date() == FIRST_DAY]
    insert_readings(settings, rows)
    defs = test_defs(settings, processes=offline_processes)
    assert defs.resolve_job_def("setup_platform").execute_in_process().success
    with db.engine(settings).begin() as conn:
        conn.execute(text("UPDATE panelData SET power_panel = 9999 WHERE Panel_id = 'panel-000003' "
                          "ORDER BY time_data LIMIT 1"))
    result = defs.resolve_job_def("daily_rollups").execute_in_process(partition_key=FIRST_DAY.isoformat(),
                                                                      raise_on_error=False)
    assert not result.success
    checks = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}
    assert not checks["peak_within_pmax"].passed
    assert checks["peak_within_pmax"].metadata["example_panel"].value == "panel-000003"
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"panel_daily_energy"}  # fleet_daily_energy was blocked


def test_backfill_end_to_end_fast_forward_stream_rollup(fresh_settings, offline_processes):
    """fleet fast-forward -> Kafka -> stream (available-now) -> panelData -> single-run backfill."""
    from solar_platform.fleet.publisher import fast_forward

    settings = _fleet_settings(fresh_settings)
    start = datetime.combine(FIRST_DAY, time())
    summary = fast_forward(settings, start=start, end=start + timedelta(days=DAYS))
    assert summary.all_delivered
    env = {"SOLAR_MYSQL_DATABASE": settings.mysql_database, "SOLAR_TOPIC": settings.topic,
           "SOLAR_HOME": str(settings.home_dir), "SOLAR_INTERVAL_SECONDS": "60", "SOLAR_PANELS": "20"}
    import os

    done = subprocess.run([sys.executable, "-m", "solar_platform", "stream", "run", "--trigger", "available-now"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    with db.engine(settings).connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM panelData")).scalar() == 20 * 1440 * DAYS
    defs = test_defs(settings, processes=offline_processes)
    assert defs.resolve_job_def("setup_platform").execute_in_process().success
    _assert_matches_numpy(settings, _simulated(settings), _backfill(settings, offline_processes))
