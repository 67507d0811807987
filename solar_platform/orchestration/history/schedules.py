"""The archive's schedule: yesterday's UTC day, once it is closed."""

import dagster as dg

from solar_platform.orchestration.history.jobs import compact_raw_archive

compact_raw_archive_schedule = dg.build_schedule_from_partitioned_job(
    compact_raw_archive,
    name="compact_raw_archive_daily",
    hour_of_day=1,
    minute_of_hour=0,
    description="Compact the UTC day that just closed (01:00 UTC, after the late readings of its last minutes).",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
