"""The rollups domain: daily energy per panel and fleet over the site's days, its job, schedule and the
sensor that rolls a day up again when late data changes it."""

import dagster as dg

from solar_platform.orchestration.rollups import jobs, schedules, sensors, site_assets
from solar_platform.orchestration.rollups.assets import build_daily_energy_rollups
from solar_platform.orchestration.rollups.partitions import daily_partitions


def build_defs(site_timezone: str) -> dg.Definitions:
    """The rollups with their partitions in the site's time zone (SOLAR_SITE_TIMEZONE)."""
    return dg.Definitions(
        assets=[build_daily_energy_rollups(daily_partitions(site_timezone)), site_assets.site_daily_energy],
        jobs=[jobs.daily_rollups, site_assets.site_days_job],
        schedules=[schedules.daily_rollups_schedule, site_assets.site_days_schedule],
        sensors=[sensors.rollups_follow_late_data],
    )
