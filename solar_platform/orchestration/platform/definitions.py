"""The platform domain: schema, panel registry, retention and rebuild from raw, failed runs."""

import dagster as dg

from solar_platform.orchestration.platform import assets, checks, jobs, schedules, sensors

defs = dg.Definitions(
    assets=[assets.mysql_schema, assets.panel_registry],
    asset_checks=[checks.sites_placed],
    jobs=[jobs.setup_platform, jobs.sync_panel_registry, jobs.raw_retention, jobs.rebuild_derived_tables],
    schedules=[schedules.raw_retention_schedule, schedules.sync_panel_registry_schedule],
    sensors=[sensors.record_run_failures],
)
