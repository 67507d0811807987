"""Cycles and the fast-forward helper, recomputed independently with numpy."""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta, timezone

import numpy as np
import pytest

from solar_platform.contracts import Reading
from solar_platform.fleet.simulation import (
    FleetSimulator,
    cycle_times_ms,
    from_epoch_ms,
    round_to_milliwatts,
    simulate_readings,
    to_epoch_ms,
)
from solar_platform.fleet.state import FleetState
from solar_platform.power_model import epoch_seconds
from solar_platform_tests.fleet.support import fleet_settings

START = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def test_epoch_ms_is_exact_and_naive_means_utc() -> None:
    moment = datetime(2024, 6, 1, 12, 0, 0, 123_999, tzinfo=UTC)
    assert to_epoch_ms(moment) == 1_717_243_200_123  # sub-ms truncated
    assert to_epoch_ms(moment.replace(tzinfo=None)) == 1_717_243_200_123
    assert to_epoch_ms(moment.astimezone(timezone(timedelta(hours=2)))) == 1_717_243_200_123
    assert from_epoch_ms(1_717_243_200_123) == datetime(2024, 6, 1, 12, 0, 0, 123_000, tzinfo=UTC)


def test_cycle_times_are_half_open_and_evenly_spaced() -> None:
    times = cycle_times_ms(START, START + timedelta(hours=1), 5.0)
    assert times.size == 720
    assert times[0] == to_epoch_ms(START)
    assert times[-1] == to_epoch_ms(START + timedelta(hours=1)) - 5000
    assert set(np.diff(times).tolist()) == {5000}
    assert cycle_times_ms(START, START + timedelta(seconds=11), 5.0).size == 3  # 0, 5, 10


def test_consecutive_ranges_neither_overlap_nor_leave_gaps() -> None:
    day_one, day_two, day_three = (START + timedelta(days=k) for k in range(3))
    joined = np.concatenate([cycle_times_ms(day_one, day_two, 5.0), cycle_times_ms(day_two, day_three, 5.0)])
    np.testing.assert_array_equal(joined, cycle_times_ms(day_one, day_three, 5.0))


def test_empty_or_reversed_range_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty time range"):
        cycle_times_ms(START, START, 5.0)
    with pytest.raises(ValueError, match="at least 1 ms"):
        cycle_times_ms(START, START + timedelta(seconds=1), 0.0001)


def test_milliwatt_rounding_parses_back_exactly() -> None:
    values = round_to_milliwatts(np.array([0.0, 0.0004, 0.0005001, 123.4567, 399.9995, 479.99]))
    assert values.tolist() == [0.0, 0.0, 0.001, 123.457, 400.0, 479.99]
    assert all(float(repr(v)) == v for v in values.tolist())


def expected_power(pmax: np.ndarray, online: np.ndarray, t_s: float, t_ini: float, duration: float) -> np.ndarray:
    """The seed's formula, computed here independently of the fleet package."""
    x = (t_s - t_ini) / duration - 0.5
    power = np.rint(pmax / np.cosh(x) ** 30 * 1000.0) / 1000.0
    return np.where(online, power, 0.0)


def test_helper_returns_time_major_arrays_of_the_right_shape() -> None:
    readings = simulate_readings(fleet_settings(), start=START, end=START + timedelta(minutes=2), panels=6, seed=2)
    assert readings.times_ms.shape == (24,)
    assert readings.power_w.shape == readings.status.shape == (24, 6)
    assert readings.status.dtype == np.int8 and readings.power_w.dtype == np.float64
    assert readings.count == 144
    assert readings.panel_ids == [f"panel-{i:06d}" for i in range(6)]
    assert readings.times[0] == np.datetime64("2024-06-01T12:00:00.000")
    assert readings.seed == 2


def test_helper_values_match_the_closed_form_and_the_offline_rule() -> None:
    settings = fleet_settings(offline_probability_pct=30.0)
    # the live model: the seed's demo window opens at the start
    readings = simulate_readings(settings, start=START, end=START + timedelta(hours=1), panels=50, seed=12,
                                 history=False)

    # Replay the same fleet by hand: same seed -> same Pmax and the same online history.
    fleet = FleetState.create(settings, panels=50, seed=12)
    t_ini = epoch_seconds(START)
    for row, time_ms in enumerate(readings.times_ms.tolist()):
        fleet.step()
        np.testing.assert_array_equal(readings.status[row], fleet.online.astype(np.int8))
        expected = expected_power(fleet.pmax_w, fleet.online, time_ms / 1000, t_ini, 3600.0)
        np.testing.assert_allclose(readings.power_w[row], expected, rtol=0, atol=0.0011)

    offline = readings.status == 0
    assert offline.any() and (readings.power_w[offline] == 0.0).all()
    assert (readings.power_w[~offline] > 0).all()
    # the demo window's middle is 30 min after the start: online panels peak at their Pmax
    middle = int(np.flatnonzero(readings.times_ms == to_epoch_ms(START + timedelta(minutes=30)))[0])
    online_now = readings.status[middle] == 1
    np.testing.assert_array_equal(readings.power_w[middle][online_now], round_to_milliwatts(fleet.pmax_w)[online_now])


def test_daily_mode_history_over_several_days() -> None:
    settings = fleet_settings(production_start=time(6, 0), production_hours=12.0, interval_seconds=3600.0)
    start = datetime(2024, 6, 1, tzinfo=UTC)
    readings = simulate_readings(settings, start=start, end=start + timedelta(days=3), panels=30, seed=4)
    assert readings.times_ms.size == 72
    pmax = FleetState.create(settings, panels=30, seed=4).pmax_w
    for day in range(3):
        noon = day * 24 + 12
        online = readings.status[noon] == 1
        np.testing.assert_array_equal(readings.power_w[noon][online], round_to_milliwatts(pmax)[online])
        six = day * 24 + 6  # window opens: Pmax / cosh(0.5)**30
        online = readings.status[six] == 1
        np.testing.assert_allclose(readings.power_w[six][online], pmax[online] / math.cosh(0.5) ** 30, atol=0.0006)


def test_same_seed_same_readings_other_seed_other_readings() -> None:
    def run(seed: int) -> np.ndarray:
        r = simulate_readings(fleet_settings(), start=START, end=START + timedelta(minutes=5), panels=40, seed=seed)
        return np.concatenate([r.power_w.ravel(), r.status.ravel()])

    np.testing.assert_array_equal(run(31), run(31))
    assert not np.array_equal(run(31), run(32))


def test_simulator_cycle_is_what_the_helper_returns() -> None:
    settings = fleet_settings()
    end = START + timedelta(seconds=30)
    readings = simulate_readings(settings, start=START, end=end, panels=8, seed=6)
    simulator = FleetSimulator(settings, fleet_start=START, panels=8, seed=6, history=True)
    for row, time_ms in enumerate(cycle_times_ms(START, end, settings.interval_seconds).tolist()):
        cycle = simulator.cycle(time_ms)
        assert cycle.time_utc == from_epoch_ms(time_ms)
        np.testing.assert_array_equal(cycle.power_w, readings.power_w[row])
        np.testing.assert_array_equal(cycle.status, readings.status[row])


def test_readings_iterate_as_contract_objects_in_publishing_order() -> None:
    readings = simulate_readings(fleet_settings(), start=START, end=START + timedelta(seconds=10), panels=3, seed=1)
    objects = list(readings.readings())
    assert len(objects) == 6
    assert all(isinstance(r, Reading) for r in objects)
    assert [r.panel_id for r in objects] == readings.panel_ids * 2
    assert objects[3].time_utc == START + timedelta(seconds=5)
    assert objects[4].power_w == readings.power_w[1, 1]
    assert objects[4].status == readings.status[1, 1]
