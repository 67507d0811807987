"""The rules with sites: peers are judged per site, and where a site has too few healthy peers the
power model's expected power can stand in (SOLAR_HEALTH_EXPECTED_FALLBACK=model)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from solar_platform.fleet.simulation import simulate_readings
from solar_platform.fleet.state import FleetState
from solar_platform.settings import FleetSite, Settings
from solar_platform.storage.health import faults as fault_rules
from solar_platform.storage.health.expected import SiteExpectation

DAY = datetime(2024, 6, 21, tzinfo=UTC)
MADRID = FleetSite("madrid", 40.4168, -3.7038, "Europe/Madrid")
LIMA = FleetSite("lima", -12.0464, -77.0428, "America/Lima")


def test_peer_median_is_taken_within_each_site() -> None:
    values = np.array([[0.9, 0.8, 0.2, 0.3]])
    ref, peers = fault_rules.site_peer_median(values, np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(ref, [[0.8, 0.9, 0.3, 0.2]])
    np.testing.assert_array_equal(peers, [[1, 1, 1, 1]])


def _underperforming(fallback: str, *, power_model: str, sites: tuple[FleetSite, ...], panels: int,
                     min_peers: int) -> set[str]:
    """Panel 0 (Madrid) produces 60 % from 10:00 UTC; the panels whose underperforming alert opens."""
    settings = Settings(power_model=power_model, fleet_sites=sites, offline_probability_pct=0.0,
                        health_expected_fallback=fallback, health_min_peers=min_peers)
    spec = {"faults": [{"kind": "underperforming", "panels": ["panel-000000"], "start": "10:00", "level": 0.6}]}
    start, end = DAY + timedelta(hours=8), DAY + timedelta(hours=12)
    readings = simulate_readings(settings, start=start, end=end, panels=panels, history=True, faults=spec)
    state = FleetState.create(settings, panels=panels)
    th = fault_rules.FaultThresholds.from_settings(settings)
    starts = start.timestamp() + th.step_seconds * np.arange(int((end - start).total_seconds() / th.step_seconds))
    feats = fault_rules.features_from_readings(readings.panel_ids, state.pmax_w, readings.times_ms / 1000.0,
                                               readings.power_w, readings.status, readings.present,
                                               bucket_start=starts, step_seconds=th.step_seconds)
    feats.site_index = state.site_index
    places = {site.site_id: site for site in state.sites}
    feats.model_shape = SiteExpectation(settings, places)([s.site_id for s in state.sites],
                                                          starts + th.step_seconds / 2.0)
    events = fault_rules.replay(feats, th, settle_seconds=15.0)
    return {e.decision.panel_id for e in events if e.decision.action == "open" and e.decision.kind == "underperforming"}


def test_a_panel_alone_at_its_site_is_judged_by_the_model_when_asked() -> None:
    """Two sites, one panel each: no peers anywhere. Off: nobody is judged; model: the faulty one alerts."""
    for power_model in ("sech", "daylight"):
        kwargs = {"power_model": power_model, "sites": (MADRID, LIMA), "panels": 2, "min_peers": 1}
        assert _underperforming("off", **kwargs) == set()
        assert _underperforming("model", **kwargs) == {"panel-000000"}


def test_with_enough_peers_the_model_is_not_used() -> None:
    """One site, six panels, min 1 peer: the peers judge (same alert either way, nobody else flagged)."""
    kwargs = {"power_model": "daylight", "sites": (MADRID,), "panels": 6, "min_peers": 1}
    assert _underperforming("off", **kwargs) == {"panel-000000"}
    assert _underperforming("model", **kwargs) == {"panel-000000"}
