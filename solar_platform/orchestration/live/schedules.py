"""The live tables' schedule: observed, and checked, every two minutes."""

import dagster as dg

from solar_platform.orchestration.live.jobs import observe_live_tables

observe_live_tables_schedule = dg.ScheduleDefinition(
    name="observe_live_tables_every_2_minutes",
    job=observe_live_tables,
    cron_schedule="*/2 * * * *",
    execution_timezone="UTC",
    description="Observe the live tables and run their checks every two minutes.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
