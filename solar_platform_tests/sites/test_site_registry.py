"""The site registry on the real MariaDB: the upgrade puts existing panels at the default site, the
fleet sync spreads panels over its sites, operators register and edit sites from the CLI, and the
API lists them and serves a site's energy in its own zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from solar_platform.api.app import create_app
from solar_platform.cli import app as cli_app
from solar_platform.fleet.state import FleetState
from solar_platform.settings import FleetSite, Settings
from solar_platform.storage import db, migrations, sites
from solar_platform.storage.health import registry
from solar_platform_tests.stream_writes import write_as_stream

pytestmark = pytest.mark.integration

MADRID = FleetSite("madrid", 40.4168, -3.7038, "Europe/Madrid")
LIMA = FleetSite("lima", -12.0464, -77.0428, "America/Lima")


def test_upgrade_puts_existing_panels_at_the_default_site(fresh_settings: Settings) -> None:
    """A database from before sites (no `sites`, no `panels.site_id`) with panels in it: the
    migration makes the default site and every existing panel belongs to it."""
    engine = db.engine(fresh_settings.as_role("migrator"))
    with engine.begin() as conn:  # back to the schema before 0021, with two panels registered
        for trigger in ("insert", "delete", "update"):  # 0024's triggers name panels.site_id
            conn.execute(text(f"DROP TRIGGER tr_panels_count_{trigger}"))
        conn.execute(text("DELETE FROM _yoyo_migration WHERE migration_id = '0024_registry_counts'"))
        conn.execute(text("ALTER TABLE panels DROP FOREIGN KEY fk_panels_site"))
        conn.execute(text("ALTER TABLE panels DROP KEY ix_panels_site, DROP COLUMN site_id"))
        conn.execute(text("DROP TABLE sites"))
        conn.execute(text("DELETE FROM _yoyo_migration WHERE migration_id = '0021_sites'"))
        conn.execute(text("INSERT INTO panels (panel_id, pmax_w, registered_by, updated_at) VALUES "
                          "('old-1', 400, 'operator', UTC_TIMESTAMP(3)), ('old-2', NULL, 'seen', UTC_TIMESTAMP(3))"))
    assert "0021_sites" in migrations.migrate(fresh_settings)
    with db.engine(fresh_settings).connect() as conn:
        assert sites.panel_sites(conn) == {"old-1": "default", "old-2": "default"}
        default = sites.site(conn, "default")
    assert default is not None and default.panels == 2 and default.kwp == pytest.approx(0.4)


def test_fleet_sync_spreads_panels_over_the_configured_sites(fresh_settings: Settings) -> None:
    settings = fresh_settings.model_copy(update={"fleet_sites": (MADRID, LIMA), "panels": 5})
    state = FleetState.create(settings)
    assert state.panel_sites == ["madrid", "lima", "madrid", "lima", "madrid"]
    engine = db.engine(settings, bulk_load=True)
    configured = dict(zip(state.panel_ids, state.pmax_w.tolist(), strict=True))
    site_of = dict(zip(state.panel_ids, state.panel_sites, strict=True))
    figures = registry.sync_panel_registry(engine, configured, configured_site=site_of,
                                           fleet_sites=settings.fleet_site_list)
    assert figures["sites"] == 3 and figures["changed_now"] == 5  # default, madrid, lima
    again = registry.sync_panel_registry(engine, configured, configured_site=site_of,
                                         fleet_sites=settings.fleet_site_list)
    assert again["changed_now"] == 0  # only what changed is written
    with engine.connect() as conn:
        by_id = {s.site_id: s for s in sites.list_sites(conn)}
    assert by_id["madrid"].panels == 3 and by_id["lima"].panels == 2 and by_id["default"].panels == 0
    assert by_id["lima"].time_zone == "America/Lima" and by_id["lima"].registered_by == "fleet"
    assert by_id["madrid"].kwp == pytest.approx(sum(state.pmax_w[[0, 2, 4]]) / 1000)

    # An operator's edit stands against the next sync.
    sites.edit_site(engine, "lima", name="Lima roof", commissioned_on=datetime(2024, 3, 1).date())
    moved = LIMA._replace(latitude=-12.5)
    registry.sync_panel_registry(engine, configured, configured_site=site_of, fleet_sites=(MADRID, moved))
    with engine.connect() as conn:
        lima = sites.site(conn, "lima")
    assert lima is not None and lima.latitude == pytest.approx(-12.0464) and lima.name == "Lima roof"
    assert lima.registered_by == "operator"


def test_cli_registers_edits_and_lists_sites(fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOLAR_MYSQL_DATABASE", fresh_settings.mysql_database)
    runner = CliRunner()
    ok = runner.invoke(cli_app, ["sites", "register", "sevilla", "--name", "Sevilla", "--lat", "37.39",
                                 "--lon", "-5.98", "--tz", "Europe/Madrid", "--commissioned", "2023-06-01"])
    assert ok.exit_code == 0, ok.output
    bad_zone = runner.invoke(cli_app, ["sites", "register", "x", "--name", "X", "--lat", "0", "--lon", "0",
                                       "--tz", "Mars/Olympus"])
    assert bad_zone.exit_code == 2 and "unknown time zone" in bad_zone.output
    assert runner.invoke(cli_app, ["sites", "edit", "sevilla", "--name", "Sevilla Este"]).exit_code == 0
    assert runner.invoke(cli_app, ["sites", "edit", "nowhere", "--name", "N"]).exit_code == 2
    panel = runner.invoke(cli_app, ["panels", "register", "roof-1", "--pmax", "410", "--site", "sevilla"])
    assert panel.exit_code == 0, panel.output
    assert runner.invoke(cli_app, ["panels", "register", "roof-2", "--pmax", "410", "--site", "nowhere"]).exit_code == 2
    listed = runner.invoke(cli_app, ["sites", "list"])
    assert listed.exit_code == 0 and "Sevilla Este" in listed.output and "2023-06-01" in listed.output
    with db.engine(fresh_settings).connect() as conn:
        sevilla = sites.site(conn, "sevilla")
    assert sevilla is not None and sevilla.panels == 1 and sevilla.kwp == pytest.approx(0.41)


def test_api_lists_sites_and_serves_site_energy_in_the_site_zone(fresh_settings: Settings) -> None:
    """Two sites, one panel each, constant 360 W from 22:00 to 02:00 UTC: Madrid's local day
    (UTC+2 in June) and Lima's (UTC-5) cut that span differently, and the API follows each zone."""
    engine = db.engine(fresh_settings, bulk_load=True)
    registry.sync_panel_registry(engine, {"m-1": 400.0, "l-1": 400.0}, configured_site={"m-1": "madrid", "l-1": "lima"},
                                 fleet_sites=(MADRID, LIMA))
    start = datetime(2024, 6, 10, 22, 0)
    rows = [(pid, 360.0, 1, start + timedelta(seconds=5 * i)) for pid in ("m-1", "l-1") for i in range(4 * 720 + 1)]
    write_as_stream(fresh_settings, rows)
    now = datetime(2024, 6, 12, 12, 0, tzinfo=UTC)
    client = create_app(fresh_settings, rate_per_second=None, clock=lambda: now).test_client()

    listed = client.get("/api/v1/sites?limit=2").get_json()
    assert [s["site_id"] for s in listed["items"]] == ["default", "lima"] and listed["next_cursor"]
    rest = client.get(f"/api/v1/sites?cursor={listed['next_cursor']}").get_json()
    assert [s["site_id"] for s in rest["items"]] == ["madrid"] and rest["next_cursor"] is None
    detail = client.get("/api/v1/sites/madrid").get_json()
    assert detail["time_zone"] == "Europe/Madrid" and detail["panels"] == 1 and detail["kwp"] == pytest.approx(0.4)
    assert client.get("/api/v1/sites/nowhere").status_code == 404

    query = "unit=DAY&from=2024-06-10T00:00:00Z&to=2024-06-12T00:00:00Z"
    madrid = client.get(f"/api/v1/sites/madrid/energy?{query}").get_json()
    lima = client.get(f"/api/v1/sites/lima/energy?{query}").get_json()
    assert madrid["site_id"] == "madrid" and madrid["time_zone"] == "Europe/Madrid" and madrid["unit"] == "Wh"
    by_day = {v["date"][:10]: v["value"] for v in madrid["values"] if v["value"]}
    # Madrid: 22:00-02:00 UTC = 00:00-04:00 local on the 11th, all 4 h x 360 W on one day
    assert by_day == {"2024-06-11": pytest.approx(1440.0)}
    lima_days = {v["date"][:10]: v["value"] for v in lima["values"] if v["value"]}
    # Lima: 17:00-21:00 local on the 10th
    assert lima_days == {"2024-06-10": pytest.approx(1440.0)}
    fleet = client.get(f"/api/v1/fleet/energy?{query}&tz=Europe/Madrid").get_json()
    assert fleet["total_wh"] == pytest.approx(2880.0)
    csv = client.get(f"/api/v1/sites/lima/energy?{query}&format=csv")
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
