"""The ingestion domain: topic, fleet and stream, the fleet-history job and the stream's heartbeat."""

import dagster as dg

from solar_platform.orchestration.ingestion import assets, checks, jobs, sensors

defs = dg.Definitions(
    assets=[assets.kafka_topic, assets.panel_fleet, assets.spark_stream],
    asset_checks=[checks.mariadb_disk],
    jobs=[jobs.publish_fleet_history_job, jobs.launch_stream, jobs.restart_stream, jobs.launch_fleet],
    sensors=[sensors.stream_heartbeat],
)
