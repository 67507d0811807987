"""The power model against the seed's closed form `Pmax / cosh((t - t_ini)/D - 0.5) ** 30`."""

from __future__ import annotations

import math
import warnings
from datetime import UTC, datetime, time, timedelta, timezone

import numpy as np
import pytest

from solar_platform.power_model import (
    DAY_SECONDS,
    PowerModel,
    curve_shape,
    daily_window_start,
    epoch_seconds,
    power_curve,
    seconds_of_day_utc,
)
from solar_platform_tests.fleet.support import fleet_settings

HOUR = 3600.0
T_INI = epoch_seconds(datetime(2024, 6, 1, 12, 0, tzinfo=UTC))


def seed_formula(t: float, t_ini: float, duration: float, pmax: float, exponent: float = 30.0) -> float:
    return pmax / math.cosh((t - t_ini) / duration - 0.5) ** exponent


def test_peak_is_pmax_at_the_middle_of_the_window() -> None:
    assert power_curve(T_INI + HOUR / 2, T_INI, HOUR, 400.0) == 400.0


def test_curve_is_symmetric_around_the_middle() -> None:
    offsets = np.linspace(0.0, 2 * HOUR, 97)
    before = power_curve(T_INI + HOUR / 2 - offsets, T_INI, HOUR, 400.0)
    after = power_curve(T_INI + HOUR / 2 + offsets, T_INI, HOUR, 400.0)
    np.testing.assert_allclose(before, after, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    ("fraction_of_window", "expected_w"),
    [
        (0.0, 400.0 / math.cosh(0.5) ** 30),  # window opens: ~2.7 % of Pmax
        (1.0, 400.0 / math.cosh(0.5) ** 30),  # window closes
        (0.25, 400.0 / math.cosh(0.25) ** 30),
        (0.75, 400.0 / math.cosh(0.25) ** 30),
        (0.5, 400.0),
        (-1.0, 400.0 / math.cosh(1.5) ** 30),  # the formula is kept outside the window: it decays
    ],
)
def test_known_points(fraction_of_window: float, expected_w: float) -> None:
    t = T_INI + fraction_of_window * HOUR
    assert power_curve(t, T_INI, HOUR, 400.0) == pytest.approx(expected_w, rel=1e-12)


def test_matches_the_seed_formula_over_a_grid() -> None:
    times = T_INI + np.linspace(-2 * HOUR, 3 * HOUR, 1001)
    expected = [seed_formula(t, T_INI, HOUR, 387.5) for t in times]
    np.testing.assert_allclose(power_curve(times, T_INI, HOUR, 387.5), expected, rtol=1e-11, atol=1e-300)


def test_far_from_the_window_is_zero_without_overflow_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        far = curve_shape(np.array([T_INI - 30 * DAY_SECONDS, T_INI + 30 * DAY_SECONDS]), T_INI, HOUR, 30.0)
    assert far.tolist() == [0.0, 0.0]


def test_exponent_changes_the_width() -> None:
    t = T_INI + 0.75 * HOUR
    assert power_curve(t, T_INI, HOUR, 1.0, exponent=10.0) == pytest.approx(1 / math.cosh(0.25) ** 10, rel=1e-12)


def test_vectorised_over_panels_equals_a_scalar_loop() -> None:
    rng = np.random.default_rng(5)
    pmax = 400.0 * rng.uniform(0.8, 1.2, 1000)
    model = PowerModel(window_seconds=HOUR, exponent=30.0, daily_start=None, fleet_start_s=T_INI)
    for t in (T_INI - 600, T_INI + 900.5, T_INI + 1800, T_INI + 3599.999):
        vectorised = model.power(pmax, t)
        loop = [seed_formula(t, T_INI, HOUR, p) for p in pmax]
        np.testing.assert_allclose(vectorised, loop, rtol=1e-11)


def test_power_grid_is_time_major_and_equals_per_time_calls() -> None:
    pmax = np.array([320.0, 400.0, 480.0])
    model = PowerModel(window_seconds=HOUR, exponent=30.0, daily_start=None, fleet_start_s=T_INI)
    times = T_INI + np.array([0.0, 1200.0, 1800.0, 2400.0])
    grid = model.power_grid(pmax, times)
    assert grid.shape == (4, 3)
    for row, t in enumerate(times):
        np.testing.assert_array_equal(grid[row], model.power(pmax, float(t)))


def test_demo_mode_window_opens_at_fleet_start() -> None:
    settings = fleet_settings()
    model = PowerModel.from_settings(settings, datetime(2024, 6, 1, 12, 0, tzinfo=UTC))
    times = T_INI + np.array([-DAY_SECONDS, 0.0, 1800.0, 5 * DAY_SECONDS])
    np.testing.assert_array_equal(model.window_start(times), np.full(4, T_INI))
    assert model.window_seconds == HOUR
    assert float(model.shape(T_INI + 1800.0)) == 1.0


def test_naive_fleet_start_is_utc() -> None:
    settings = fleet_settings()
    assert PowerModel.from_settings(settings, datetime(2024, 6, 1, 12)).fleet_start_s == T_INI


class TestDailyWindow:
    settings = fleet_settings(production_start=time(6, 0), production_hours=12.0)
    model = PowerModel.from_settings(settings, 0.0)
    day = epoch_seconds(datetime(2024, 6, 1, tzinfo=UTC))

    def at(self, hours_after_midnight: float) -> float:
        return self.day + hours_after_midnight * HOUR

    @pytest.mark.parametrize(
        ("hours", "expected_start_hours"),
        [
            (6.0, 6.0),
            (12.0, 6.0),
            (1.0, 6.0),  # before dawn: rising side of today's window
            (23.0, 6.0),  # after dusk: falling side of today's window
            (23.99, 6.0),  # 11.99 h from today's middle
            (24.5, 30.0),  # 00:30 next day: 11.5 h from tomorrow's middle
            (-0.5, -18.0),  # 23:30 the day before
        ],
    )
    def test_each_time_belongs_to_the_window_with_the_nearest_middle(
        self, hours: float, expected_start_hours: float
    ) -> None:
        assert float(self.model.window_start(self.at(hours))) == pytest.approx(self.at(expected_start_hours))

    def test_peak_every_day_at_the_window_middle(self) -> None:
        middles = np.array([self.at(12.0 + 24 * k) for k in range(5)])
        np.testing.assert_array_equal(self.model.shape(middles), np.ones(5))

    def test_repeats_every_day(self) -> None:
        times = self.at(0.0) + np.linspace(0.0, DAY_SECONDS, 289)
        np.testing.assert_allclose(self.model.shape(times), self.model.shape(times + 7 * DAY_SECONDS), rtol=1e-9)

    def test_continuous_where_the_window_switches(self) -> None:
        switch = self.at(24.0)  # 12 h from both neighbouring middles
        just_before, just_after = self.model.shape(np.array([switch - 1e-3, switch + 1e-3]))
        assert just_before == pytest.approx(just_after, rel=1e-6)

    def test_matches_the_seed_formula_within_the_day(self) -> None:
        times = np.array([self.at(h) for h in (6.0, 9.0, 12.0, 15.0, 18.0)])
        expected = [seed_formula(t, self.at(6.0), 12 * HOUR, 1.0) for t in times]
        np.testing.assert_allclose(self.model.shape(times), expected, rtol=1e-11)

    def test_full_day_window_switches_at_its_edges(self) -> None:
        starts = daily_window_start(np.array([self.at(5.99), self.at(6.01)]), 6 * HOUR, DAY_SECONDS)
        assert starts.tolist() == pytest.approx([self.at(-18.0), self.at(6.0)])


def test_time_of_day_with_an_offset_is_converted_to_utc() -> None:
    assert seconds_of_day_utc(time(8, 0, tzinfo=timezone(timedelta(hours=2)))) == 6 * HOUR
    assert seconds_of_day_utc(time(1, 0, tzinfo=timezone(timedelta(hours=2)))) == 23 * HOUR
    assert seconds_of_day_utc(time(6, 30, 15, 500_000)) == 6 * HOUR + 30 * 60 + 15.5
