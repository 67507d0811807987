"""The rollups' schedule: yesterday's site day, just after midnight site time."""

import dagster as dg

from solar_platform.orchestration.rollups.jobs import daily_rollups

daily_rollups_schedule = dg.build_schedule_from_partitioned_job(
    daily_rollups,
    name="daily_rollups_after_midnight",
    hour_of_day=0,
    minute_of_hour=10,
    description="Roll up the site's day that just ended, at 00:10 site time.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
