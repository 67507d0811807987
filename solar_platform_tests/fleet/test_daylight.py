"""Daylight mode: clear-sky irradiance (pvlib) at each panel's site, scaled to its Pmax, beside the
seed's curve (still the default)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from pvlib.location import Location

from solar_platform.fleet.simulation import simulate_readings
from solar_platform.fleet.state import FleetState
from solar_platform.power_model import LINKE_TURBIDITY, ClearSky, expected_hours
from solar_platform.settings import FleetSite, Settings

MADRID = FleetSite("madrid", 40.4168, -3.7038, "Europe/Madrid")
LIMA = FleetSite("lima", -12.0464, -77.0428, "America/Lima")
DAY = datetime(2024, 6, 21, tzinfo=UTC)


def daylight(**changes: object) -> Settings:
    return Settings(power_model="daylight", fleet_sites=(MADRID, LIMA), offline_probability_pct=0.0, **changes)


def test_clear_sky_follows_pvlib_within_interpolation() -> None:
    times = pd.date_range(DAY, periods=24 * 60 // 7, freq="7min", tz="UTC")  # off the one-minute grid
    pvlib_ghi = Location(MADRID.latitude, MADRID.longitude, tz="UTC").get_clearsky(
        times, model="ineichen", linke_turbidity=LINKE_TURBIDITY)["ghi"].to_numpy()
    ours = ClearSky(MADRID.latitude, MADRID.longitude).shape(times.asi8 / 1e9)
    np.testing.assert_allclose(ours, pvlib_ghi / 1000.0, atol=1e-3)
    assert ours.max() > 0.9 and ours.min() == 0.0  # near 1000 W/m2 at a June noon, nothing at night


def test_each_panel_follows_its_own_site_sky_scaled_to_its_pmax() -> None:
    settings = daylight()
    readings = simulate_readings(settings, start=DAY, end=DAY + timedelta(days=1), panels=4, history=True)
    state = FleetState.create(settings, panels=4)
    assert state.panel_sites == ["madrid", "lima", "madrid", "lima"]
    hours = readings.times_ms / 3.6e6 % 24
    madrid_noon = np.argmin(np.abs(hours - 12.2))  # solar noon in Madrid ~ 12:15 UTC
    lima_noon = np.argmin(np.abs(hours - 17.1))  # in Lima ~ 17:05 UTC
    sky_m, sky_l = ClearSky(MADRID.latitude, MADRID.longitude), ClearSky(LIMA.latitude, LIMA.longitude)
    for t in (madrid_noon, lima_noon):
        moment = readings.times_ms[t] / 1000.0
        expected = state.pmax_w * np.array([sky_m.shape(moment), sky_l.shape(moment)] * 2)
        np.testing.assert_allclose(readings.power_w[t], expected, atol=1e-3)
    # Madrid's June noon is higher than Lima's (winter there); at Madrid's noon Lima has barely risen
    assert readings.power_w[madrid_noon, 0] / state.pmax_w[0] > readings.power_w[lima_noon, 1] / state.pmax_w[1]
    assert readings.power_w[np.argmin(np.abs(hours - 2.0))].max() == 0.0  # night at both


def test_the_seed_curve_stays_the_default() -> None:
    assert Settings().power_model == "sech"
    settings = Settings(offline_probability_pct=0.0, production_start=None)
    readings = simulate_readings(settings, start=DAY, end=DAY + timedelta(hours=1), panels=2, history=False)
    state = FleetState.create(settings, panels=2)
    middle = len(readings.times_ms) // 2  # the demo window's peak: Pmax exactly
    np.testing.assert_allclose(readings.power_w[middle], np.round(state.pmax_w, 3), atol=1e-3)


def test_expected_hours_integrates_the_curve() -> None:
    sky = ClearSky(MADRID.latitude, MADRID.longitude)
    start = DAY.timestamp()
    fine = np.arange(start, start + 86400 + 1, 5.0)
    reference = float(np.trapezoid(sky.shape(fine), fine)) / 3600.0
    assert expected_hours(sky, start, start + 86400) == pytest.approx(reference, rel=1e-3)
    assert 7.0 < reference < 9.5  # a clear June day in Madrid: ~8 kWh/kWp on the horizontal
