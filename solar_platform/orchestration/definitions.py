"""The one Dagster entry point of the platform (`workspace.yaml` loads `defs` from here)."""


import dagster as dg

from solar_platform.orchestration.assets import ingestion, live, rollups, storage
from solar_platform.orchestration.checks import live_checks
from solar_platform.orchestration.jobs import all_jobs
from solar_platform.orchestration.resources import (
    KafkaResource,
    MonitoringResource,
    SolarSettingsResource,
    SolarSparkResource,
    process_control,
)
from solar_platform.orchestration.schedules import all_schedules
from solar_platform.orchestration.sensors import all_sensors


def build_resources(solar: SolarSettingsResource | None = None, **overrides: object) -> dict[str, object]:
    """The resources every definition uses; tests pass another `solar` (fresh database and topic)."""
    solar = solar or SolarSettingsResource()
    resources: dict[str, object] = {
        "solar": solar,
        "processes": process_control(solar),  # supervisord locally, compose's in containers
        "kafka": KafkaResource(solar=solar),
        "spark": SolarSparkResource(spark_config={}),
        "monitoring": MonitoringResource(),
    }
    resources.update(overrides)
    return resources


ASSETS = [
    storage.mysql_schema, storage.panel_registry,
    ingestion.kafka_topic, ingestion.panel_fleet, ingestion.spark_stream,
    live.live_tables, live.panel_alerts,
    rollups.daily_energy_rollups,
]

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=live_checks,
    jobs=all_jobs,
    schedules=all_schedules,
    sensors=all_sensors,
    resources=build_resources(),
)
