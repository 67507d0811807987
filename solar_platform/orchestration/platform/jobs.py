"""The platform's jobs: set it up, keep the registry in step, retention, rebuild from raw."""

import dagster as dg

from solar_platform.orchestration import keys
from solar_platform.orchestration.platform.ops import apply_retention, rebuild_from_raw

setup_platform = dg.define_asset_job(
    "setup_platform",
    selection=dg.AssetSelection.assets(keys.MYSQL_SCHEMA, keys.KAFKA_TOPIC, keys.PANEL_REGISTRY),
    description="Apply the MySQL schema, ensure the Kafka topic and sync the panel registry.",
)

sync_panel_registry = dg.define_asset_job(
    "sync_panel_registry",
    selection=dg.AssetSelection.assets(keys.PANEL_REGISTRY),
    description="Bring the panel registry in step with the fleet config and with what panelData has seen.",
)


@dg.job(description="Retention of every growing table: raw day partitions ahead and expired days dropped, "
                    "stream_progress and dead_letters pruned, old energy buckets folded into their daily rollups "
                    "(kept forever), the archive's expired days dropped (never by default).")
def raw_retention() -> None:
    apply_retention()


@dg.job(description="Rebuild every derived table from panelData over a time range (after LOAD DATA, a restore "
                    "or a repair); the same as `solar-platform rebuild --from T --to T`.")
def rebuild_derived_tables() -> None:
    rebuild_from_raw()
