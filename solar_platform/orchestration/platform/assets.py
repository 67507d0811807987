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
    from solar_platform.fleet.state import FleetState

    state = FleetState.create(settings)
    return dict(zip(state.panel_ids, state.pmax_w.tolist(), strict=True))


@dg.asset(key=keys.PANEL_REGISTRY, group_name=GROUP, kinds={"mysql"}, deps=[keys.MYSQL_SCHEMA, keys.PANEL_DATA])
def panel_registry(solar: SolarSettingsResource) -> dg.MaterializeResult:
    """The panel fleet registry (`panels` table): one row per panel with its rated Pmax.

    Pmax comes from the fleet configuration through the simulator's own derivation (seeded), so the
    registry holds the very Pmax the fleet simulates; panels the stream has seen without being
    configured are registered too (with no Pmax). Only new or changed panels are written.
    """
    settings = solar.get()
    configured = configured_fleet(settings)
    figures = sync_panel_registry(db.engine(settings, bulk_load=True), configured)
    return dg.MaterializeResult(metadata={
        "configured_panels": len(configured),
        "fleet_seed": settings.seed,
        "registered_panels": figures["panels"],
        "with_pmax": figures["configured"],
        "changed_now": figures["changed_now"],
        "seen_added_now": figures["seen_added_now"],
        "retired_now": figures["retired_now"],
        "pmax_nominal_w": settings.pmax_nominal_w,
    })
