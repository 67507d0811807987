"""The platform's storage: the MySQL schema and the panel registry (UI group "storage")."""

import dagster as dg
from sqlalchemy import inspect

from solar_platform.orchestration import keys
from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.settings import Settings
from solar_platform.storage import db, migrations
from solar_platform.storage.health.registry import sync_panel_registry

GROUP = "storage"


@dg.asset(key=keys.MYSQL_SCHEMA, group_name=GROUP, kinds={"mysql"})
def mysql_schema(context: dg.AssetExecutionContext, solar: SolarSettingsResource) -> dg.MaterializeResult:
    """The MySQL (MariaDB) schema: every table of the platform, from the migrations in `sql/`.

    Applies pending migrations idempotently (yoyo records what ran), so materializing it again is a
    no-op. Metadata lists what was applied and the tables that exist.
    """
    settings = solar.get()
    applied = migrations.migrate(settings)
    tables = sorted(inspect(db.engine(settings)).get_table_names())
    context.log.info(f"applied {applied or 'nothing (schema current)'} on {settings.mysql_database}")
    return dg.MaterializeResult(metadata={
        "database": settings.mysql_database,
        "applied": dg.MetadataValue.json(applied),
        "tables": dg.MetadataValue.json(tables),
        "table_count": len(tables),
    })


def configured_fleet(settings: Settings) -> dict[str, float]:
    """`{panel_id: Pmax}` exactly as the simulator draws them from the fleet config and its seed.

    Uses the fleet package's own derivation (`FleetState.create`), so the registry equals what the
    fleet simulates; the seed is fixed by default (SOLAR_SEED), so Pmax survives fleet restarts.
    """
    return configured_fleet_sites(settings)[0]


def configured_fleet_sites(settings: Settings) -> tuple[dict[str, float], dict[str, str]]:
    """`({panel_id: Pmax}, {panel_id: site_id})` as the simulator spreads the fleet over its sites."""
    from solar_platform.fleet.state import FleetState

    state = FleetState.create(settings)
    return (dict(zip(state.panel_ids, state.pmax_w.tolist(), strict=True)),
            dict(zip(state.panel_ids, state.panel_sites, strict=True)))


@dg.asset(key=keys.PANEL_REGISTRY, group_name=GROUP, kinds={"mysql"}, deps=[keys.MYSQL_SCHEMA, keys.PANEL_DATA])
def panel_registry(solar: SolarSettingsResource) -> dg.MaterializeResult:
    """The panel fleet registry (`panels` and `sites`): one row per panel with its rated Pmax and site.

    Pmax comes from the fleet configuration through the simulator's own derivation (seeded), so the
    registry holds the very Pmax the fleet simulates; panels the stream has seen without being
    configured are registered too (with no Pmax, at the default site). The fleet's sites
    (SOLAR_FLEET_SITES, or the default site) are kept in step too; an operator's site or panel
    (`solar-platform sites/panels`) is never overwritten. Only new or changed rows are written.
    """
    settings = solar.get()
    configured, site_of = configured_fleet_sites(settings)
    figures = sync_panel_registry(db.engine(settings, bulk_load=True), configured, configured_site=site_of,
                                  fleet_sites=settings.fleet_site_list)
    return dg.MaterializeResult(metadata={
        "configured_panels": len(configured),
        "fleet_seed": settings.seed,
        "registered_panels": figures["panels"],
        "with_pmax": figures["configured"],
        "changed_now": figures["changed_now"],
        "config_compared": bool(figures["config_compared"]),  # False: config and registry as the last sync left them
        "seen_added_now": figures["seen_added_now"],
        "retired_now": figures["retired_now"],
        "pmax_nominal_w": settings.pmax_nominal_w,
        "sites": figures["sites"],
        "fleet_sites": dg.MetadataValue.json([site._asdict() for site in settings.fleet_site_list]),
    })
