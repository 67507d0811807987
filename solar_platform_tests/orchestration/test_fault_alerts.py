"""Fault detection against the real MariaDB: summaries in panelDataAgg, alerts in panel_alerts, the API and
the sensor.

Readings are simulated with injected faults and written into a scratch database the way the stream
writes them (`write_as_stream`: windows, buckets, latest readings and a progress row per batch; the
rules read tables, not Kafka); each evaluation passes its `now` (the platform's clock, pinned),
minute by minute, as the sensor runs, and keeps its features between minutes as the sensor does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from sqlalchemy import text

from solar_platform.api.app import create_app
from solar_platform.fleet.simulation import from_epoch_ms
from solar_platform.orchestration.health.sensors import panel_health
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.health import alerts, registry
from solar_platform.storage.health.features import FeatureCache
from solar_platform_tests.orchestration.conftest import defs_for, register_panels
from solar_platform_tests.orchestration.fault_replay import at, fleet_settings, one_fault_each, simulate
from solar_platform_tests.stream_writes import write_as_stream

pytestmark = pytest.mark.integration


def _rows(settings: Settings, *, panels: int, start: datetime, end: datetime, faults: dict | None = None
          ) -> tuple[list[tuple[str, float, int, datetime]], list[str], list[float]]:
    readings, pmax = simulate(settings, panels=panels, start=start, end=end, faults=faults)
    rows = []
    for t, time_ms in enumerate(readings.times_ms.tolist()):
        moment = from_epoch_ms(time_ms).replace(tzinfo=None)
        for i, pid in enumerate(readings.panel_ids):
            if readings.present is None or readings.present[t, i]:
                rows.append((pid, float(readings.power_w[t, i]), int(readings.status[t, i]), moment))
    return rows, readings.panel_ids, pmax.tolist()


def _load(settings: Settings, *, panels: int, start: datetime, end: datetime, faults: dict | None = None,
          register: bool = True, commit_delay_seconds: float = 2.0) -> list[str]:
    """Simulated readings as the stream would have committed them: one batch per 5-s cycle, each
    `commit_delay_seconds` after its readings."""
    rows, ids, pmax = _rows(settings, panels=panels, start=start, end=end, faults=faults)
    write_as_stream(settings, rows, batch_seconds=settings.interval_seconds, commit_delay_seconds=commit_delay_seconds)
    if register:
        register_panels(settings, dict(zip(ids, pmax, strict=True)))
    return ids


def _evaluate(settings: Settings, first: datetime, last: datetime, cache: FeatureCache | None = None) -> None:
    """One evaluation per minute from `first` to `last`, 15 s past each minute (the settle delay),
    keeping the features read between minutes as the sensor's process does."""
    cache = cache or FeatureCache()
    moment = first
    while moment <= last:
        alerts.run_health(db.engine(settings), settings, now=moment + timedelta(seconds=15), cache=cache)
        moment += timedelta(minutes=1)


def _alerts(settings: Settings, state: str | None = None) -> list[dict]:
    with db.engine(settings).connect() as conn:
        rows = conn.execute(text(
            "SELECT panel_id, kind, state, severity, metric, evidence, fault_since, opened_at, resolved_at, detail "
            "FROM panel_alerts WHERE :state IS NULL OR state = :state ORDER BY id"), {"state": state}).mappings().all()
    return [dict(r) for r in rows]


def _settings(fresh: Settings) -> Settings:
    return fleet_settings(fresh)


def test_every_kind_is_detected_and_shown_in_the_api(fresh_settings):
    settings = _settings(fresh_settings)
    _load(settings, panels=12, start=at(9.75), end=at(10.5), faults=one_fault_each("10:00"))
    _evaluate(settings, at(10.0), at(10.3))
    kinds = ("offline", "silent", "zero_production", "stuck", "underperforming", "over_range")
    rows = _alerts(settings)
    assert {(r["panel_id"], r["kind"]) for r in rows} == {(f"panel-{i:06d}", k) for i, k in enumerate(kinds)}
    assert all(r["state"] == "open" and r["severity"] and r["evidence"] for r in rows)
    by_kind = {r["kind"]: r for r in rows}
    assert json.loads(by_kind["underperforming"]["evidence"])["pi"] == pytest.approx(0.6, abs=0.03)
    assert by_kind["stuck"]["severity"] == "major" and by_kind["silent"]["severity"] == "critical"
    assert by_kind["offline"]["fault_since"] <= at(10.0).replace(tzinfo=None) + timedelta(seconds=5)

    app = create_app(settings, rate_per_second=None, clock=lambda: at(10.3))
    client = app.test_client()
    page = client.get("/api/v1/alerts").get_json()
    assert page["open_by_kind"] == {k: 1 for k in kinds}
    assert {(a["panel_id"], a["kind"]) for a in page["items"]} == {(r["panel_id"], r["kind"]) for r in rows}
    assert client.get("/api/v1/alerts?kind=stuck").get_json()["items"][0]["evidence"]["spread_w"] == 0.0
    panels = {p["panel_id"]: p["health"] for p in client.get("/api/v1/panels").get_json()["items"]}
    assert {pid: h for pid, h in panels.items() if h != "reporting"} == {
        f"panel-{i:06d}": k for i, k in enumerate(kinds)}


def test_an_open_underperforming_alert_stays_open_through_the_night(fresh_settings):
    settings = _settings(fresh_settings)
    spec = {"faults": [{"kind": "underperforming", "panels": ["panel-000001"], "start": "10:00"}]}
    _load(settings, panels=6, start=at(9.75), end=at(10.35), faults=spec)
    _evaluate(settings, at(10.2), at(10.3))
    assert [(r["panel_id"], r["kind"], r["state"]) for r in _alerts(settings)] == [
        ("panel-000001", "underperforming", "open")]
    # the evening and the night: production ends, nothing can be judged, nothing resolves
    _load(settings, panels=6, start=at(19.0), end=at(22.5), faults=spec, register=False)
    _evaluate(settings, at(21.75), at(22.25))
    rows = _alerts(settings)
    assert [(r["panel_id"], r["kind"], r["state"], r["resolved_at"]) for r in rows] == [
        ("panel-000001", "underperforming", "open", None)]


def test_the_seeds_blips_do_not_alert(fresh_settings):
    settings = _settings(fresh_settings)
    _load(settings, panels=30, start=at(9.75), end=at(10.5))
    _evaluate(settings, at(10.0), at(10.45))
    with db.engine(settings).connect() as conn:
        offline_readings = conn.execute(text("SELECT COUNT(*) FROM panelData WHERE current_status = 0")).scalar()
    assert offline_readings > 100  # ~1/6 of all readings
    assert _alerts(settings) == []


def test_a_retired_panel_stops_alerting(fresh_settings):
    settings = _settings(fresh_settings)
    spec = {"faults": [{"kind": "silent", "panels": ["panel-000002"], "start": "10:00"},
                       {"kind": "silent", "panels": ["panel-000003"], "start": "10:00"}]}
    ids = _load(settings, panels=5, start=at(9.75), end=at(10.5), faults=spec)
    _evaluate(settings, at(10.0), at(10.1))
    assert {(r["panel_id"], r["state"]) for r in _alerts(settings)} == {("panel-000002", "open"),
                                                                       ("panel-000003", "open")}
    engine = db.engine(settings, bulk_load=True)  # the registry sync loads the fleet config in bulk
    # an operator retires one; the fleet config drops the other
    assert registry.retire_panel(engine, "panel-000002", now=at(10.15))
    figures = registry.sync_panel_registry(engine, {pid: 400.0 for pid in ids if pid != "panel-000003"},
                                           now=at(10.15))
    assert figures["retired_now"] == 1 and figures["retired"] == 2
    _evaluate(settings, at(10.2), at(10.4))
    rows = _alerts(settings)
    assert {(r["panel_id"], r["state"]) for r in rows} == {("panel-000002", "resolved"), ("panel-000003", "resolved")}
    assert all("retired" in r["detail"] or "left the fleet" in r["detail"] for r in rows)
    client = create_app(settings, rate_per_second=None, clock=lambda: at(10.4)).test_client()
    health = {p["panel_id"]: p["health"] for p in client.get("/api/v1/panels").get_json()["items"]}
    assert health["panel-000002"] == health["panel-000003"] == "retired"
    # re-registered by an operator: judged again, and the sync leaves an operator's panel alone
    registry.register_panel(engine, "panel-000003", 410.0, now=at(10.45))
    registry.sync_panel_registry(engine, {pid: 400.0 for pid in ids if pid != "panel-000003"}, now=at(10.45))
    _evaluate(settings, at(10.45), at(10.45))
    assert ("panel-000003", "open") in {(r["panel_id"], r["state"]) for r in _alerts(settings)}


def test_fleets_of_one_and_two_panels(fresh_settings):
    settings = _settings(fresh_settings)
    # one panel: no peers, so underperformance cannot be judged; over-range still is
    one = {"faults": [{"kind": "over_range", "panels": ["panel-000000"], "start": "10:00"}]}
    _load(settings, panels=1, start=at(9.75), end=at(10.3), faults=one)
    _evaluate(settings, at(10.05), at(10.25))
    assert [(r["panel_id"], r["kind"]) for r in _alerts(settings)] == [("panel-000000", "over_range")]
    # the next day a second panel joins, underperforming: judged against the first (its only peer)
    two = {"faults": [{"kind": "underperforming", "panels": ["panel-000001"], "start": "10:00", "level": 0.7}]}
    _load(settings, panels=2, start=at(24 + 9.75), end=at(24 + 10.3), faults=two)
    _evaluate(settings, at(24 + 10.1), at(24 + 10.25))
    assert [(r["panel_id"], r["kind"]) for r in _alerts(settings, "open")] == [("panel-000001", "underperforming")]


def test_silence_is_judged_against_the_pipeline_not_the_clock(fresh_settings):
    settings = _settings(fresh_settings)
    # panel-000003's clock runs four minutes ahead (within the ingest skew the stream accepts): its
    # readings must not make the others silent.
    rows, ids, pmax = _rows(settings, panels=4, start=at(9.9), end=at(10.0))
    arrivals = [t for _p, _w, _s, t in rows]
    rows = [(p, w, s, t + timedelta(minutes=4) if p == "panel-000003" else t) for p, w, s, t in rows]
    write_as_stream(settings, rows, batch_seconds=settings.interval_seconds, commit_delay_seconds=2.0,
                    arrivals=arrivals)
    register_panels(settings, dict(zip(ids, pmax, strict=True)))
    cache = FeatureCache()
    _evaluate(settings, at(10.0), at(10.0), cache)
    assert _alerts(settings) == []
    # Ten minutes on, nothing committed since 10:00: silence is not judged, the pipeline alarm is open.
    _evaluate(settings, at(10.1), at(10.1), cache)
    assert _alerts(settings) == []
    assert _platform_alerts(settings) == [("pipeline_lag", "open")]
    # The stream comes back with everyone but panel-000001: it alone is silent, and the alarm resolves.
    later, _, _ = _rows(settings, panels=4, start=at(10.1), end=at(10.2))
    write_as_stream(settings, [row for row in later if row[0] != "panel-000001"],
                    batch_seconds=settings.interval_seconds, commit_delay_seconds=2.0)
    _evaluate(settings, at(10.2), at(10.2), cache)
    assert [(r["panel_id"], r["kind"]) for r in _alerts(settings)] == [("panel-000001", "silent")]
    assert _platform_alerts(settings) == [("pipeline_lag", "resolved")]


def test_a_stream_three_minutes_behind_raises_one_alarm_and_one_silent_alert(fresh_settings):
    settings = _settings(fresh_settings)
    # Every batch commits three minutes after its readings; panel-000002 truly stops at 10:00.
    spec = {"faults": [{"kind": "silent", "panels": ["panel-000002"], "start": "10:00"}]}
    _load(settings, panels=6, start=at(9.75), end=at(10.25), faults=spec, commit_delay_seconds=180.0)
    _evaluate(settings, at(10.0), at(10.25))
    assert [(r["panel_id"], r["kind"], r["state"]) for r in _alerts(settings)] == [
        ("panel-000002", "silent", "open")]
    assert _platform_alerts(settings) == [("pipeline_lag", "open")]


def _platform_alerts(settings: Settings) -> list[tuple[str, str]]:
    with db.engine(settings).connect() as conn:
        return [tuple(row) for row in conn.execute(text("SELECT kind, state FROM platform_alerts ORDER BY id"))]


def test_panel_health_sensor_records_open_alerts_by_kind(fresh_settings):
    settings = _settings(fresh_settings)
    now = datetime.now(UTC).replace(microsecond=0)
    register_panels(settings, {"p-live": 400.0, "p-quiet": 400.0})
    live = [("p-live", 200.0, 1, (now - timedelta(seconds=5 * k)).replace(tzinfo=None)) for k in range(1, 180)]
    quiet = [("p-quiet", 200.0, 1, (now - timedelta(minutes=10, seconds=5 * k)).replace(tzinfo=None))
             for k in range(12)]
    write_as_stream(settings, live + quiet, batch_seconds=settings.interval_seconds, commit_delay_seconds=1.0)
    defs = defs_for(settings)
    with dg.build_sensor_context(resources=defs.resources, definitions=defs) as context:
        result = panel_health(context)
    assert isinstance(result, dg.SensorResult)
    metadata = result.asset_events[0].metadata
    assert metadata["open_silent"].value == 1 and metadata["alerts_open"].value == 1
    assert [(r["panel_id"], r["kind"]) for r in _alerts(settings, "open")] == [("p-quiet", "silent")]
