"""Schedules: the nightly rollup, raw retention, the observation of the live tables, the panel registry sync."""

import dagster as dg

from solar_platform.orchestration.jobs import daily_rollups, observe_live_tables, raw_retention, sync_panel_registry

daily_rollups_schedule = dg.build_schedule_from_partitioned_job(
    daily_rollups,
    name="daily_rollups_after_midnight",
    hour_of_day=0,
    minute_of_hour=10,
    description="Roll up the site's day that just ended, at 00:10 site time.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

observe_live_tables_schedule = dg.ScheduleDefinition(
    name="observe_live_tables_every_2_minutes",
    job=observe_live_tables,
    cron_schedule="*/2 * * * *",
    execution_timezone="UTC",
    description="Observe the live tables and run their checks every two minutes.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

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

all_schedules = [daily_rollups_schedule, raw_retention_schedule, observe_live_tables_schedule,
                 sync_panel_registry_schedule]
