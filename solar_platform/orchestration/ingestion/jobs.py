"""Ingestion's jobs: launch, restart or stop the fleet and the stream; publish past fleet readings."""

import dagster as dg

from solar_platform.orchestration import keys
from solar_platform.orchestration.ingestion.ops import publish_fleet_history

launch_stream = dg.define_asset_job(
    "launch_stream",
    selection=dg.AssetSelection.assets(keys.SPARK_STREAM),
    description="Start the supervised Spark stream unless it runs (the run ends at once; the stream keeps going).",
)

restart_stream = dg.define_asset_job(
    "restart_stream",
    selection=dg.AssetSelection.assets(keys.SPARK_STREAM),
    config={"ops": {"spark_stream": {"config": {"action": "RESTART"}}}},
    description="Restart the Spark stream from its checkpoint (requested by the stream_heartbeat sensor).",
)

launch_fleet = dg.define_asset_job(
    "launch_fleet",
    selection=dg.AssetSelection.assets(keys.PANEL_FLEET),
    description="Start the simulated fleet (supervised 'fleet' process); configure action=STOP to stop it.",
)


@dg.job(
    description="Publish past days of fleet readings (fleet fast-forward) for the running stream to ingest; "
    "then backfill panel_daily_energy over those days."
)
def publish_fleet_history_job() -> None:
    publish_fleet_history()
