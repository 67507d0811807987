"""Jobs: what an operator (or a sensor or schedule) launches."""

import dagster as dg

from solar_platform.orchestration.assets.live import PANEL_DATA, PANEL_DATA_AGG
from solar_platform.orchestration.maintenance import raw_retention, rebuild_derived_tables
from solar_platform.orchestration.ops import publish_fleet_history_job

setup_platform = dg.define_asset_job(
    "setup_platform",
    selection=dg.AssetSelection.assets("mysql_schema", "kafka_topic", "panels"),
    description="Apply the MySQL schema, ensure the Kafka topic and sync the panel registry.",
)

sync_panel_registry = dg.define_asset_job(
    "sync_panel_registry",
    selection=dg.AssetSelection.assets("panels"),
    description="Bring the panel registry in step with the fleet config and with what panelData has seen.",
)

launch_stream = dg.define_asset_job(
    "launch_stream",
    selection=dg.AssetSelection.assets("spark_stream"),
    description="Start the supervised Spark stream unless it runs (the run ends at once; the stream keeps going).",
)

restart_stream = dg.define_asset_job(
    "restart_stream",
    selection=dg.AssetSelection.assets("spark_stream"),
    config={"ops": {"spark_stream": {"config": {"action": "RESTART"}}}},
    description="Restart the Spark stream from its checkpoint (requested by the stream_heartbeat sensor).",
)

launch_fleet = dg.define_asset_job(
    "launch_fleet",
    selection=dg.AssetSelection.assets("panel_fleet"),
    description="Start the simulated fleet (supervised 'fleet' process); configure action=STOP to stop it.",
)

observe_live_tables = dg.define_asset_job(
    "observe_live_tables",
    selection=dg.AssetSelection.assets(PANEL_DATA, PANEL_DATA_AGG),
    description="Observe panelData and panelDataAgg and run their checks.",
)

daily_rollups = dg.define_asset_job(
    "daily_rollups",
    selection=dg.AssetSelection.assets("panel_daily_energy", "fleet_daily_energy"),
    description="Per-panel and fleet daily energy for one site day (or a single-run backfill of many): staged, "
                "checked, then swapped in.",
)

all_jobs = [
    setup_platform,
    sync_panel_registry,
    publish_fleet_history_job,
    launch_stream,
    restart_stream,
    launch_fleet,
    observe_live_tables,
    daily_rollups,
    raw_retention,
    rebuild_derived_tables,
]
