"""Fast-forward over past days (a full production day each) and fault injection in the simulator."""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta

import numpy as np
import pytest
from typer.testing import CliRunner

from solar_platform.fleet.commands import app
from solar_platform.fleet.faults import FaultPlan, FaultSpecError
from solar_platform.fleet.simulation import simulate_readings
from solar_platform.fleet.state import FleetState, panel_ids
from solar_platform_tests.fleet.support import fleet_settings

DAY = datetime(2026, 11, 20, tzinfo=UTC)


def _daily_energy_wh(readings, days: int) -> np.ndarray:
    """(days, panels) trapezoid energy of each UTC day's readings, Wh."""
    t = readings.times_ms / 1000.0
    per_day = t.size // days
    out = []
    for d in range(days):
        part = slice(d * per_day, (d + 1) * per_day)
        out.append(np.trapezoid(readings.power_w[part], t[part], axis=0) / 3600.0)
    return np.array(out)


def test_each_fast_forwarded_day_is_a_full_and_equal_production_day():
    # the README's example: --from 2026-11-20 --to 2026-11-23 gives three comparable days
    settings = fleet_settings(offline_probability_pct=0.0, site_timezone="UTC")
    readings = simulate_readings(settings, start=DAY, end=DAY + timedelta(days=3), panels=4, seed=9)
    energy = _daily_energy_wh(readings, 3)
    np.testing.assert_allclose(energy, energy[[0, 0, 0]], rtol=1e-9)
    # the window is the backfill default: opens 06:00, peak at noon
    noon = np.flatnonzero(readings.times_ms == int((DAY + timedelta(hours=12)).timestamp() * 1000))[0]
    pmax = FleetState.create(settings, panels=4, seed=9).pmax_w
    np.testing.assert_allclose(readings.power_w[noon], pmax, atol=0.001)


def test_a_full_production_day_at_5_s_matches_the_closed_form_integral():
    settings = fleet_settings(offline_probability_pct=0.0, site_timezone="UTC")
    readings = simulate_readings(settings, start=DAY, end=DAY + timedelta(days=1), panels=3, seed=2)
    measured = _daily_energy_wh(readings, 1)[0]
    pmax = FleetState.create(settings, panels=3, seed=2).pmax_w
    c, hours = settings.curve_exponent, settings.backfill_production_hours
    # integral of sech(x)^C over the real line = B(1/2, C/2); the day's tails beyond |x| = 1 are < 1e-5 of it
    sech_integral = math.exp(math.lgamma(0.5) + math.lgamma(c / 2) - math.lgamma((c + 1) / 2))
    expected = pmax * hours * sech_integral
    np.testing.assert_allclose(measured, expected, rtol=1e-3)


def test_the_backfill_window_is_a_time_of_day_in_the_site_zone():
    settings = fleet_settings(offline_probability_pct=0.0, site_timezone="Europe/Madrid",
                              backfill_production_start=time(8, 0), backfill_production_hours=10.0)
    readings = simulate_readings(settings, start=DAY, end=DAY + timedelta(days=1), panels=2, seed=1)
    peak = readings.times_ms[int(np.argmax(readings.power_w[:, 0]))] / 1000.0
    # 08:00 + 5 h local = 13:00 CET = 12:00 UTC in November
    assert peak == (DAY + timedelta(hours=12)).timestamp()


def test_live_mode_keeps_the_seeds_demo_window():
    settings = fleet_settings(offline_probability_pct=0.0)
    start = DAY + timedelta(hours=3)  # night for a backfill day, but the demo window opens at the start
    demo = simulate_readings(settings, start=start, end=start + timedelta(hours=1), panels=2, seed=1, history=False)
    assert demo.power_w[len(demo.times_ms) // 2].min() > 300.0


def test_a_fault_spec_puts_each_kind_on_its_panels():
    settings = fleet_settings(offline_probability_pct=0.0)
    spec = {"seed": 3, "faults": [
        {"kind": "offline", "panels": ["panel-000000"], "start": "10:00", "minutes": 30},
        {"kind": "silent", "panels": ["panel-000001"], "start": "10:00"},
        {"kind": "zero_production", "count": 1, "start": "10:00"},
        {"kind": "stuck", "panels": ["panel-000003"], "start": "10:00", "level": 0.5},
        {"kind": "underperforming", "panels": ["panel-000004"], "start": "10:00", "level": 0.6},
        {"kind": "over_range", "panels": ["panel-000005"], "start": "2026-11-20T10:00:00Z"},
    ]}
    clean = simulate_readings(settings, start=DAY + timedelta(hours=9), end=DAY + timedelta(hours=11), panels=8,
                              seed=4)
    faulty = simulate_readings(settings, start=DAY + timedelta(hours=9), end=DAY + timedelta(hours=11), panels=8,
                               seed=4, faults=spec)
    pmax = FleetState.create(settings, panels=8, seed=4).pmax_w
    before, during = slice(0, 720), slice(720, 1080)  # 09:00-10:00, 10:00-10:30
    np.testing.assert_array_equal(faulty.power_w[before], clean.power_w[before])
    assert (faulty.status[during, 0] == 0).all() and (faulty.status[1080:, 0] == 1).all()  # ends after 30 min
    assert not faulty.present[720:, 1].any() and faulty.present[:720, 1].all()
    zero = FaultPlan.from_spec(spec, panel_ids(8), first_day=DAY).truth()["zero_production"]
    z = int(next(iter(zero))[-6:])
    assert z not in (0, 1, 3, 4, 5) and (faulty.power_w[720:, z] == 0).all() and (faulty.status[720:, z] == 1).all()
    np.testing.assert_allclose(faulty.power_w[720:, 3], round(0.5 * pmax[3], 3))
    np.testing.assert_allclose(faulty.power_w[720:, 4], clean.power_w[720:, 4] * 0.6, atol=0.002)
    assert (faulty.power_w[720:, 5] > 1.25 * pmax[5]).all()
    healthy = [i for i in (2, 6, 7) if i != z]
    np.testing.assert_array_equal(faulty.power_w[:, healthy], clean.power_w[:, healthy])
    assert faulty.count == clean.count - int((~faulty.present).sum())


def test_bad_fault_specs_are_rejected_with_a_reason():
    ids = panel_ids(3)
    with pytest.raises(FaultSpecError, match="unknown fault kind"):
        FaultPlan.from_spec({"faults": [{"kind": "melted", "count": 1, "start": "10:00"}]}, ids, first_day=DAY)
    with pytest.raises(FaultSpecError, match="left without a fault"):
        FaultPlan.from_spec({"faults": [{"kind": "stuck", "count": 4, "start": "10:00"}]}, ids, first_day=DAY)
    with pytest.raises(FaultSpecError, match="not valid JSON"):
        FaultPlan.from_spec("{nope", ids, first_day=DAY)
    with pytest.raises(FaultSpecError, match="unknown panel"):
        FaultPlan.from_spec({"faults": [{"kind": "stuck", "panels": ["x"], "start": "10:00"}]}, ids, first_day=DAY)


def test_the_cli_reports_a_bad_spec_in_one_line():
    result = CliRunner().invoke(app, ["run", "--from", "2026-11-20", "--to", "2026-11-21", "--faults", "{nope"])
    assert result.exit_code == 2
    assert "not valid JSON" in result.output
