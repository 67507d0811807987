"""Yield figures against a hand computation, on the real MariaDB: specific yield (kWh/kWp) and
performance ratio (measured ÷ expected energy) for panels, a site and the fleet, by day and month,
from the API and from the site daily rollup.

The hand computation: one site in Madrid's zone, the seed's curve with a daily window opening at
10:00 UTC for 2 h, so the power model expects Pmax × ∫ sech(x)^30 dx × 2 h a day, and
∫ sech(x)^n dx = √π · Γ(n/2) / Γ((n+1)/2) (the window's tails beyond ±6 are below e^-170). Panel A
(Pmax 400 W) reads a constant 200 W and panel B (300 W) 150 W from 10:00 to 12:00 UTC on 2024-06-10:
400 Wh and 300 Wh.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import text

from solar_platform.api.app import create_app
from solar_platform.settings import FleetSite, Settings
from solar_platform.storage import db
from solar_platform.storage.health import registry
from solar_platform.storage.site_rollups import roll_up_site_days
from solar_platform_tests.stream_writes import write_as_stream

pytestmark = pytest.mark.integration

MADRID = FleetSite("madrid", 40.4168, -3.7038, "Europe/Madrid")
DAY = date(2024, 6, 10)
HOURS_PER_DAY = 2.0 * math.sqrt(math.pi) * math.gamma(15.0) / math.gamma(15.5)  # expected Wh per W of Pmax
A_WH, B_WH = 200.0 * 2, 150.0 * 2  # constant power x 2 h
KWP = 0.7


def _settings(fresh: Settings) -> Settings:
    return fresh.model_copy(update={"production_start": time(10, 0), "production_hours": 2.0,
                                    "power_model": "sech", "site_timezone": "Europe/Madrid"})


@pytest.fixture
def yield_db(fresh_settings: Settings) -> Settings:
    settings = _settings(fresh_settings)
    registry.sync_panel_registry(db.engine(settings, bulk_load=True), {"a": 400.0, "b": 300.0},
                                 configured_site={"a": "madrid", "b": "madrid"}, fleet_sites=(MADRID,))
    start = datetime(2024, 6, 10, 10, 0)
    rows = [(pid, watts, 1, start + timedelta(seconds=5 * i))
            for pid, watts in (("a", 200.0), ("b", 150.0)) for i in range(2 * 720 + 1)]
    write_as_stream(settings, rows)
    return settings


def test_yield_figures_equal_the_hand_computation(yield_db: Settings) -> None:
    assert pytest.approx(0.92295, abs=1e-5) == HOURS_PER_DAY
    now = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
    client = create_app(yield_db, rate_per_second=None, clock=lambda: now).test_client()
    day = "unit=DAY&from=2024-06-10T00:00:00%2B02:00&to=2024-06-11T00:00:00%2B02:00"

    a = client.get(f"/api/v1/panels/a/yield?{day}").get_json()
    assert a["time_zone"] == "Europe/Madrid" and a["site_id"] == "madrid" and a["kwp"] == pytest.approx(0.4)
    (value,) = a["values"]
    assert value["date"] == "2024-06-10T00:00:00.000+02:00"
    assert value["energy_wh"] == pytest.approx(A_WH, rel=1e-9)
    assert value["specific_yield"] == pytest.approx(A_WH / 1000 / 0.4)  # 1.0 kWh/kWp
    assert value["expected_wh"] == pytest.approx(400 * HOURS_PER_DAY, rel=1e-4)
    assert value["performance_ratio"] == pytest.approx(A_WH / (400 * HOURS_PER_DAY), rel=1e-4)

    site = client.get(f"/api/v1/sites/madrid/yield?{day}").get_json()
    (value,) = site["values"]
    assert site["kwp"] == pytest.approx(KWP) and value["energy_wh"] == pytest.approx(A_WH + B_WH)
    assert value["specific_yield"] == pytest.approx((A_WH + B_WH) / 1000 / KWP)
    assert value["performance_ratio"] == pytest.approx((A_WH + B_WH) / (700 * HOURS_PER_DAY), rel=1e-4)

    fleet = client.get(f"/api/v1/fleet/yield?{day}").get_json()  # the default site has no panels: same figures
    assert fleet["site_id"] is None and fleet["values"][0]["performance_ratio"] == pytest.approx(
        value["performance_ratio"], rel=1e-9)

    # June, by month: the same energy over 30 expected days
    month = client.get("/api/v1/sites/madrid/yield?unit=MONTH&from=2024-06-01T00:00:00%2B02:00"
                       "&to=2024-07-01T00:00:00%2B02:00").get_json()
    (june,) = month["values"]
    assert june["expected_wh"] == pytest.approx(700 * HOURS_PER_DAY * 30, rel=1e-4)
    assert june["performance_ratio"] == pytest.approx((A_WH + B_WH) / (700 * HOURS_PER_DAY * 30), rel=1e-4)
    assert june["specific_yield"] == pytest.approx(1.0) and month["total"]["specific_yield"] == pytest.approx(1.0)

    assert client.get("/api/v1/sites/nowhere/yield").status_code == 404
    assert client.get("/api/v1/fleet/yield?unit=DAY&from=2020-01-01T00:00:00Z&to=2024-01-01T00:00:00Z"
                      ).status_code == 422


def test_site_daily_rollup_holds_the_same_figures(yield_db: Settings) -> None:
    """The site day in Madrid's zone (22:00-22:00 UTC), its kWp and expected energy; a re-roll gives the
    same row (what a late reading's re-roll relies on)."""
    engine = db.engine(yield_db)
    assert roll_up_site_days(engine, yield_db, [DAY, DAY + timedelta(days=1)]) == 4  # 2 sites x 2 days
    assert roll_up_site_days(engine, yield_db, [DAY], site_ids=["madrid"]) == 1
    with engine.connect() as conn:
        rows = {r.day: r for r in conn.execute(text(
            "SELECT day, time_zone, energy_wh, day_seconds, panels, panels_reporting, kwp, expected_wh "
            "FROM site_daily_energy WHERE site_id = 'madrid' ORDER BY day"))}
    row = rows[DAY]
    assert row.time_zone == "Europe/Madrid" and row.day_seconds == 86400
    assert row.energy_wh == pytest.approx(A_WH + B_WH) and row.panels == 2 and row.panels_reporting == 2
    assert row.kwp == pytest.approx(KWP) and row.expected_wh == pytest.approx(700 * HOURS_PER_DAY, rel=1e-4)
    assert rows[DAY + timedelta(days=1)].energy_wh == 0.0


def test_site_energy_reads_rolled_site_days(yield_db: Settings) -> None:
    """Whole past site days come from `site_daily_energy` (one row a day, not the panels' buckets),
    and a re-roll brings the row back to what the buckets say."""
    engine = db.engine(yield_db)
    roll_up_site_days(engine, yield_db, [DAY], site_ids=["madrid"])
    now = datetime(2024, 6, 20, 12, 0, tzinfo=UTC)
    client = create_app(yield_db, rate_per_second=None, clock=lambda: now).test_client()
    query = "unit=DAY&from=2024-06-10T00:00:00%2B02:00&to=2024-06-11T00:00:00%2B02:00"

    def served() -> float:
        return client.get(f"/api/v1/sites/madrid/energy?{query}").get_json()["values"][0]["value"]

    assert served() == pytest.approx(A_WH + B_WH)
    with engine.begin() as conn:  # a marker only the rollup row carries
        conn.execute(text("UPDATE site_daily_energy SET energy_wh = energy_wh + 1 WHERE site_id = 'madrid'"))
    assert served() == pytest.approx(A_WH + B_WH + 1)
    roll_up_site_days(engine, yield_db, [DAY], site_ids=["madrid"])
    assert served() == pytest.approx(A_WH + B_WH)


def test_dagster_syncs_sites_and_rolls_up_site_days(yield_db: Settings) -> None:
    """The registry asset with the fleet spread over two sites (and its sites_placed check), then the
    site-day asset over a given range."""
    import dagster as dg

    from solar_platform.orchestration.platform import assets as platform
    from solar_platform.orchestration.platform.checks import sites_placed
    from solar_platform.orchestration.rollups.site_assets import site_daily_energy
    from solar_platform_tests.orchestration.conftest import defs_for

    lima = FleetSite("lima", -12.0464, -77.0428, "America/Lima")
    settings = yield_db.model_copy(update={"fleet_sites": (MADRID, lima), "panels": 4})
    defs = defs_for(settings)
    result = dg.materialize([platform.panel_registry, sites_placed, site_daily_energy], resources=defs.resources,
                            run_config={"ops": {"site_daily_energy": {"config": {
                                "first_day": DAY.isoformat(), "last_day": DAY.isoformat()}}}})
    assert result.success
    meta = {e.materialization.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert meta["panels"]["sites"].value == 3 and meta["site_daily_energy"]["site_days_written"].value == 3
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    with db.engine(settings).connect() as conn:
        sites_now = dict(conn.execute(text("SELECT panel_id, site_id FROM panels WHERE panel_id LIKE 'panel-%'")).all())
        lima_day = conn.execute(text("SELECT time_zone, panels, day_seconds FROM site_daily_energy "
                                     "WHERE site_id = 'lima'")).one()
    assert sites_now == {"panel-000000": "madrid", "panel-000001": "lima", "panel-000002": "madrid",
                         "panel-000003": "lima"}
    assert tuple(lima_day) == ("America/Lima", 2, 86400)


def test_the_fleet_rollup_of_a_day_rolls_its_site_days_again(yield_db: Settings) -> None:
    """What the late-data sensor runs (`daily_rollups` for a day) brings the site days over the same
    buckets along, so a site day follows late data as the fleet's day does."""
    from solar_platform_tests.orchestration.conftest import defs_for

    with db.engine(yield_db).begin() as conn:  # a stale site day, as before a late reading was rolled up
        conn.execute(text("INSERT INTO site_daily_energy (site_id, day, time_zone, energy_wh, covered_seconds, "
                          "day_seconds, panels, panels_reporting, kwp, expected_wh, computed_at) VALUES "
                          "('madrid', :d, 'Europe/Madrid', 1, 0, 86400, 2, 1, 0.7, 1, UTC_TIMESTAMP())"), {"d": DAY})
    result = defs_for(yield_db).resolve_job_def("daily_rollups").execute_in_process(partition_key=DAY.isoformat())
    assert result.success
    with db.engine(yield_db).connect() as conn:
        energy = conn.execute(text("SELECT energy_wh FROM site_daily_energy WHERE site_id = 'madrid' AND day = :d"),
                              {"d": DAY}).scalar_one()
    assert energy == pytest.approx(A_WH + B_WH)
