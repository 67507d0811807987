"""Fleet state: ids, Pmax draws and the offline/recovery process (statistics with fixed seeds)."""

from __future__ import annotations

import numpy as np
import pytest

from solar_platform.contracts import is_valid_panel_id
from solar_platform.fleet.state import FleetState, panel_ids
from solar_platform.settings import SettingsError
from solar_platform_tests.fleet.support import fleet_settings

LARGE = 200_000


def test_panel_ids_are_prefixed_zero_padded_and_zero_based() -> None:
    assert panel_ids(3) == ["panel-000000", "panel-000001", "panel-000002"]
    assert panel_ids(2, "roof-")[1] == "roof-000001"


@pytest.mark.parametrize("prefix", ["", "site-7:row_2.", "P"])
def test_prefixes_that_make_valid_ids(prefix: str) -> None:
    assert all(is_valid_panel_id(panel_id) for panel_id in panel_ids(3, prefix))


@pytest.mark.parametrize("prefix", ["panel 1-", "-panel", "pañel-", "x'; DROP TABLE panelData; -- ", "p" * 59])
def test_a_prefix_that_makes_invalid_ids_is_a_settings_error(prefix: str) -> None:
    with pytest.raises(SettingsError, match="SOLAR_PANEL_ID_PREFIX"):
        panel_ids(2, prefix)


def test_fleet_ids_follow_the_settings_prefix() -> None:
    fleet = FleetState.create(fleet_settings(panel_id_prefix="plant7-"), panels=5, seed=1)
    assert fleet.panel_ids == [f"plant7-{i:06d}" for i in range(5)]
    assert fleet.size == 5


def test_pmax_is_nominal_times_uniform_0_8_to_1_2() -> None:
    pmax = FleetState.create(fleet_settings(), panels=LARGE, seed=3).pmax_w
    assert pmax.min() >= 320.0
    assert pmax.max() < 480.0
    assert pmax.mean() == pytest.approx(400.0, abs=0.5)  # sd of the mean ~0.05 W
    # uniform: each tenth of the range holds ~10 % of the panels
    counts, _ = np.histogram(pmax, bins=10, range=(320.0, 480.0))
    np.testing.assert_allclose(counts / LARGE, 0.1, atol=0.005)


def test_pmax_follows_the_nominal_setting() -> None:
    pmax = FleetState.create(fleet_settings(pmax_nominal_w=1000.0), panels=1000, seed=3).pmax_w
    assert pmax.min() >= 800.0 and pmax.max() < 1200.0


def test_a_panels_pmax_does_not_depend_on_fleet_size() -> None:
    small = FleetState.create(fleet_settings(), panels=10, seed=9).pmax_w
    large = FleetState.create(fleet_settings(), panels=10_000, seed=9).pmax_w
    np.testing.assert_array_equal(small, large[:10])


def test_fleet_starts_all_online() -> None:
    fleet = FleetState.create(fleet_settings(), panels=100, seed=1)
    assert fleet.online.all()
    assert fleet.status.dtype == np.int8 and (fleet.status == 1).all()


def test_online_panels_go_offline_at_the_offline_rate() -> None:
    fleet = FleetState.create(fleet_settings(offline_probability_pct=10.0), panels=LARGE, seed=4)
    fleet.step()
    # binomial sd of the fraction: sqrt(0.1 * 0.9 / 200k) ~ 0.0007
    assert 1.0 - fleet.online.mean() == pytest.approx(0.10, abs=0.004)


def test_offline_panels_recover_at_the_recovery_rate() -> None:
    fleet = FleetState.create(fleet_settings(recovery_probability_pct=50.0), panels=LARGE, seed=4)
    fleet.online[:] = False
    fleet.step()
    assert fleet.online.mean() == pytest.approx(0.50, abs=0.005)


def test_long_run_offline_share_is_the_chains_stationary_value() -> None:
    fleet = FleetState.create(fleet_settings(), panels=20_000, seed=8)
    shares = []
    for _ in range(200):
        fleet.step()
        shares.append(1.0 - fleet.online.mean())
    # p_off / (p_off + p_rec) = 0.1 / 0.6
    assert np.mean(shares[20:]) == pytest.approx(1 / 6, abs=0.005)


def test_a_panel_stays_offline_for_two_cycles_on_average() -> None:
    fleet = FleetState.create(fleet_settings(), panels=20_000, seed=8)
    history = []
    for _ in range(300):
        fleet.step()
        history.append(fleet.online.copy())
    online = np.array(history)
    went_offline = (online[:-1] & ~online[1:]).sum()
    came_back = (~online[:-1] & online[1:]).sum()
    offline_cycles = (~online[:-1]).sum()
    assert came_back / offline_cycles == pytest.approx(0.5, abs=0.01)
    assert went_offline / online[:-1].sum() == pytest.approx(0.1, abs=0.005)


def test_zero_offline_probability_keeps_everyone_online() -> None:
    fleet = FleetState.create(fleet_settings(offline_probability_pct=0.0), panels=1000, seed=1)
    for _ in range(20):
        fleet.step()
    assert fleet.online.all()


def test_no_recovery_means_offline_for_good() -> None:
    fleet = FleetState.create(
        fleet_settings(offline_probability_pct=100.0, recovery_probability_pct=0.0), panels=50, seed=1
    )
    for _ in range(3):
        fleet.step()
        assert not fleet.online.any()


def test_same_seed_same_history_other_seed_other_history() -> None:
    def history(seed: int) -> np.ndarray:
        fleet = FleetState.create(fleet_settings(), panels=500, seed=seed)
        steps = []
        for _ in range(10):
            fleet.step()
            steps.append(fleet.online.copy())
        return np.concatenate([fleet.pmax_w, np.concatenate(steps)])

    np.testing.assert_array_equal(history(21), history(21))
    assert not np.array_equal(history(21), history(22))


def test_seed_comes_from_settings_and_the_argument_wins() -> None:
    settings = fleet_settings(seed=77)
    assert FleetState.create(settings, panels=3).seed == 77
    assert FleetState.create(settings, panels=3, seed=5).seed == 5
    np.testing.assert_array_equal(
        FleetState.create(settings, panels=3).pmax_w, FleetState.create(fleet_settings(), panels=3, seed=77).pmax_w
    )


def test_without_a_seed_one_is_drawn_and_reproduces_the_fleet() -> None:
    first = FleetState.create(fleet_settings(), panels=20)
    again = FleetState.create(fleet_settings(), panels=20, seed=first.seed)
    np.testing.assert_array_equal(first.pmax_w, again.pmax_w)


def test_panel_count_comes_from_settings() -> None:
    assert FleetState.create(fleet_settings(panels=7), seed=1).size == 7
    with pytest.raises(ValueError, match="at least one panel"):
        FleetState.create(fleet_settings(), panels=0, seed=1)
