"""The platform's schedules: the panel registry sync and the raw tables' retention."""

import dagster as dg

from solar_platform.orchestration.platform.jobs import raw_retention, sync_panel_registry

# first/last seen move with every reading; the registry follows every ten minutes.
sync_panel_registry_schedule = dg.ScheduleDefinition(
    name="sync_panel_registry_every_10_minutes",
    job=sync_panel_registry,
    cron_schedule="*/10 * * * *",
    execution_timezone="UTC",
    description="Sync the panel registry (Pmax, first and last seen) every ten minutes.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

# Day partitions ahead, expired days dropped, stream_progress pruned: once a day, early (UTC days).
raw_retention_schedule = dg.ScheduleDefinition(
    name="raw_retention_daily",
    job=raw_retention,
    cron_schedule="5 0 * * *",
    execution_timezone="UTC",
    description="Make the raw tables' day partitions ahead, drop expired days, prune stream_progress (00:05 UTC).",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
