"""Daily rollups from the energy buckets in Dagster: a single-run backfill of three days checked against
numpy, stage -> check -> swap (a failed check serves nothing), and the whole path from the fleet."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import text

from solar_platform.fleet.simulation import from_epoch_ms, simulate_readings
from solar_platform.orchestration.platform.assets import configured_fleet
from solar_platform.storage import db
from solar_platform.storage.energy import trapezoid_buckets
from solar_platform.storage.rebuild import rebuild
from solar_platform.storage.rollups import expected_readings_per_day
from solar_platform_tests.orchestration.conftest import defs_for, insert_readings, register_panels

pytestmark = pytest.mark.integration

FIRST_DAY = date(2025, 3, 10)
DAYS = 3


def _fleet_settings(settings):
    # raw kept 10 years: the rollup's sampled recompute covers these past days
    return settings.model_copy(update={"panels": 20, "interval_seconds": 60.0, "seed": 11, "raw_retention_days": 3650,
                                       "production_start": time(10, 0), "production_hours": 4.0})


def _simulated(settings):
    start = datetime.combine(FIRST_DAY, time())
    return simulate_readings(settings, start=start, end=start + timedelta(days=DAYS))


def _numpy_energy(readings, max_gap_s: float = 180.0) -> dict[tuple[date, str], float]:
    """Each UTC day's energy per panel: the oracle's 15-min buckets over all readings, summed per day."""
    seconds = readings.times_ms / 1000.0
    out: dict[tuple[date, str], float] = {}
    for col, pid in enumerate(readings.panel_ids):
        for bucket, (wh, _) in trapezoid_buckets(seconds, readings.power_w[:, col], max_gap_s).items():
            key = (from_epoch_ms(int(bucket) * 1000).date(), pid)
            out[key] = out.get(key, 0.0) + wh
    return out


def _backfill(settings, processes):
    defs = defs_for(settings, processes=processes)
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
        assert stored[key][0] == pytest.approx(wh, rel=1e-9), key
        assert stored[key][1] == stored[key][2] == expected_readings_per_day(60.0) == 1440
    assert [row[0] for row in fleet] == [FIRST_DAY + timedelta(days=i) for i in range(DAYS)]
    for day, wh, panels in fleet:
        assert panels == 20
        assert wh == pytest.approx(sum(v for (d, _), v in expected.items() if d == day), rel=1e-9)
    checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"matches_raw_recompute": True, "peak_within_pmax": True, "readings_complete": True,
                      "matches_fleet_buckets": True}


def _load(settings, readings) -> None:
    """Raw rows as a bulk import would leave them, then the derived tables rebuilt (no rollups yet)."""
    insert_readings(settings, [
        (r.panel_id, r.power_w, r.status, r.time_utc.replace(tzinfo=None)) for r in readings.readings()])
    start = datetime.combine(FIRST_DAY, time())
    rebuild(settings, start, start + timedelta(days=DAYS), rollups=False)
    register_panels(settings, configured_fleet(settings))  # Pmax, for the peak check


def test_single_run_backfill_of_three_days_matches_numpy(fresh_settings, offline_processes):
    settings = _fleet_settings(fresh_settings)
    readings = _simulated(settings)
    _load(settings, readings)
    result = _backfill(settings, offline_processes)
    # one run materialized the three partitions of both assets
    partitions = {(e.asset_key.to_user_string(), e.partition) for e in result.get_asset_materialization_events()}
    days = [(FIRST_DAY + timedelta(days=i)).isoformat() for i in range(DAYS)]
    assert partitions == {(a, d) for a in ("panel_daily_energy", "fleet_daily_energy") for d in days}
    _assert_matches_numpy(settings, readings, result)
    # idempotent: running again replaces the days with identical rows
    again = _backfill(settings, offline_processes)
    _assert_matches_numpy(settings, readings, again)


def test_a_failed_check_serves_nothing(fresh_settings, offline_processes):
    """A reading above 1.25 x Pmax and a corrupted bucket fail the blocking checks on the stage: the run
    fails before the swap, nothing is materialized, and the rows served before stay as they were."""
    settings = _fleet_settings(fresh_settings)
    _load(settings, _simulated(settings))
    defs = defs_for(settings, processes=offline_processes)
    job = defs.resolve_job_def("daily_rollups")
    assert job.execute_in_process(partition_key=FIRST_DAY.isoformat()).success
    with db.engine(settings).connect() as conn:
        served = conn.execute(text("SELECT * FROM panel_daily_energy ORDER BY panel_id")).all()
        fleet = conn.execute(text("SELECT * FROM fleet_daily_energy")).all()
    with db.engine(settings, role="migrator").begin() as conn:  # tampering, as the owner
        conn.execute(text("UPDATE panelData SET power_panel = 9999 WHERE Panel_id = 'panel-000003' "
                          "AND time_data = :t"), {"t": datetime.combine(FIRST_DAY, time(12, 0))})
        conn.execute(text("UPDATE panel_energy_15min SET peak_w = 9999, energy_wh = energy_wh + 50 "
                          "WHERE panel_id = 'panel-000003' AND bucket_start = :t"),
                     {"t": datetime.combine(FIRST_DAY, time(12, 0))})
    result = job.execute_in_process(partition_key=FIRST_DAY.isoformat(), raise_on_error=False)
    assert not result.success
    checks = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}
    assert not checks["peak_within_pmax"].passed
    assert checks["peak_within_pmax"].metadata["example_panel"].value == "panel-000003"
    assert not checks["matches_fleet_buckets"].passed  # the fleet buckets disagree with the panel rows
    assert not checks["matches_raw_recompute"].passed  # the bucket disagrees with the raw readings
    assert result.get_asset_materialization_events() == []
    with db.engine(settings).connect() as conn:
        assert conn.execute(text("SELECT * FROM panel_daily_energy ORDER BY panel_id")).all() == served
        assert conn.execute(text("SELECT * FROM fleet_daily_energy")).all() == fleet
        assert conn.execute(text("SELECT COUNT(*) FROM stage_panel_daily_energy")).scalar() == 0


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
    register_panels(settings, configured_fleet(settings))
    _assert_matches_numpy(settings, _simulated(settings), _backfill(settings, offline_processes))
