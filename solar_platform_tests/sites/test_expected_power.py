"""Fault detection with sites on the real MariaDB: two sites with one panel each (no peers), in
daylight mode. With SOLAR_HEALTH_EXPECTED_FALLBACK=model the lone underperforming panel is found
against the clear sky at its site; with `off` nobody is judged for production faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from solar_platform.fleet.simulation import from_epoch_ms, simulate_readings
from solar_platform.fleet.state import FleetState
from solar_platform.settings import FleetSite, Settings
from solar_platform.storage import db
from solar_platform.storage.health import alerts, registry
from solar_platform.storage.health.features import FeatureCache
from solar_platform_tests.stream_writes import write_as_stream

pytestmark = pytest.mark.integration

MADRID = FleetSite("madrid", 40.4168, -3.7038, "Europe/Madrid")
SEVILLA = FleetSite("sevilla", 37.3891, -5.9845, "Europe/Madrid")
START = datetime(2024, 6, 21, 9, 0, tzinfo=UTC)
FAULT = {"faults": [{"kind": "underperforming", "panels": ["panel-000000"], "start": "09:20", "level": 0.6}]}


@pytest.mark.parametrize("fallback", ["model", "off"])
def test_lone_panel_is_judged_against_the_sky(fresh_settings: Settings, fallback: str) -> None:
    settings = fresh_settings.model_copy(update={
        "power_model": "daylight", "fleet_sites": (MADRID, SEVILLA), "offline_probability_pct": 0.0,
        "health_expected_fallback": fallback})
    end = START + timedelta(minutes=50)
    readings = simulate_readings(settings, start=START, end=end, panels=2, history=True, faults=FAULT)
    rows = [(pid, float(readings.power_w[t, i]), int(readings.status[t, i]), from_epoch_ms(ms).replace(tzinfo=None))
            for t, ms in enumerate(readings.times_ms.tolist()) for i, pid in enumerate(readings.panel_ids)]
    write_as_stream(settings, rows, batch_seconds=settings.interval_seconds, commit_delay_seconds=2.0)
    state = FleetState.create(settings, panels=2)
    registry.sync_panel_registry(db.engine(settings, bulk_load=True),
                                 dict(zip(state.panel_ids, state.pmax_w.tolist(), strict=True)),
                                 configured_site=dict(zip(state.panel_ids, state.panel_sites, strict=True)),
                                 fleet_sites=settings.fleet_site_list)
    cache = FeatureCache()
    moment = START + timedelta(minutes=20)
    while moment <= end:
        alerts.run_health(db.engine(settings), settings, now=moment + timedelta(seconds=15), cache=cache)
        moment += timedelta(minutes=1)
    with db.engine(settings).connect() as conn:
        opened = conn.execute(text("SELECT panel_id, kind, metric FROM panel_alerts WHERE state = 'open'")).all()
    if fallback == "model":
        assert [(pid, kind) for pid, kind, _ in opened] == [("panel-000000", "underperforming")]
        assert opened[0][2] == pytest.approx(0.6, abs=0.02)  # the performance index against the sky
    else:
        assert opened == []
