"""Storage domain: the MySQL schema and the panel registry."""


import dagster as dg
from sqlalchemy import inspect

from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.storage import db
from solar_platform.storage.health import sync_panel_registry

GROUP = "storage"


@dg.asset(group_name=GROUP, kinds={"mysql"})
def mysql_schema(context: dg.AssetExecutionContext, solar: SolarSettingsResource) -> dg.MaterializeResult:
    """The MySQL (MariaDB) schema: every table of the platform, from the migrations in `sql/`.

    Applies pending migrations idempotently (yoyo records what ran), so materializing it again is a
    no-op. Metadata lists what was applied and the tables that exist.
    """
    settings = solar.get()
    applied = db.migrate(settings)
    tables = sorted(inspect(db.engine(settings)).get_table_names())
    context.log.info(f"applied {applied or 'nothing (schema current)'} on {settings.mysql_database}")
    return dg.MaterializeResult(metadata={
        "database": settings.mysql_database,
        "applied": dg.MetadataValue.json(applied),
        "tables": dg.MetadataValue.json(tables),
        "table_count": len(tables),
    })


def configured_fleet(settings) -> tuple[dict[str, float], int | None]:  # noqa: ANN001 - Settings
    """`{panel_id: Pmax}` exactly as the simulator draws them, and the seed used (None: unknown).

    Uses the fleet package's own derivation (`FleetState.create`), so the registry equals what the
    fleet simulates. Without a configured seed (SOLAR_SEED) the simulator draws Pmax from a fresh
    random seed per start, which no registry can know: the panels are registered without Pmax.
    """
    from solar_platform.fleet.state import FleetState, panel_ids

    if settings.seed is None:
        return {pid: float("nan") for pid in panel_ids(settings.panels, settings.panel_id_prefix)}, None
    state = FleetState.create(settings)
    return dict(zip(state.panel_ids, state.pmax_w.tolist(), strict=True)), state.seed


@dg.asset(key="panels", group_name=GROUP, kinds={"mysql"}, deps=[mysql_schema, dg.AssetKey("panelData")])
def panel_registry(context: dg.AssetExecutionContext, solar: SolarSettingsResource) -> dg.MaterializeResult:
    """The panel fleet registry (`panels` table): one row per panel with its rated Pmax, first and
    last seen.

    Pmax comes from the fleet configuration through the simulator's own derivation (seeded), so the
    registry holds the very Pmax the fleet simulates; first/last seen come from panelData, so
    panels that report without being configured are registered too (with no Pmax).
    """
    settings = solar.get()
    configured, seed = configured_fleet(settings)
    pmax = {pid: value for pid, value in configured.items() if value == value}  # drop NaN
    figures = sync_panel_registry(db.engine(settings), pmax)
    if seed is None:
        from sqlalchemy import text

        with db.engine(settings).begin() as conn:  # register ids without a Pmax we cannot know
            conn.execute(text("INSERT IGNORE INTO panels (panel_id) VALUES (:pid)"),
                         [{"pid": pid} for pid in configured])
        context.log.warning("SOLAR_SEED is not set: the fleet draws Pmax at random per start; "
                            "panels registered without Pmax (bounds and underperformance not judged)")
    return dg.MaterializeResult(metadata={
        "configured_panels": len(configured),
        "fleet_seed": seed if seed is not None else "unset",
        "registered_panels": figures["panels"],
        "with_pmax": figures["configured"],
        "seen_in_panelData": figures["seen"],
        "pmax_nominal_w": settings.pmax_nominal_w,
    })
