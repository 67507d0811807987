"""Site days: energy, kWp and expected energy per site and local day of the site's own zone.

Beside the fleet's partitioned rollups (`assets.py`), not one of them: sites have different zones,
so a site day is no single partition. Every hour the asset recomputes each site's last days (today
and the two before, in the site's zone), so a day that just ended, and late data of the last
days, reach `site_daily_energy` within the hour. `days` in the run config recomputes any range.
"""

from datetime import date

import dagster as dg

from solar_platform.orchestration import keys
from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.storage import db
from solar_platform.storage.rollups import days_between
from solar_platform.storage.site_rollups import roll_up_site_days

SITE_DAILY_ENERGY = dg.AssetKey("site_daily_energy")


class SiteDaysConfig(dg.Config):
    first_day: str | None = None  # YYYY-MM-DD: recompute this range for every site instead of the last days
    last_day: str | None = None
    days_back: int = 2


@dg.asset(key=SITE_DAILY_ENERGY, group_name="rollups", kinds={"mysql"}, deps=[keys.PANEL_REGISTRY, keys.PANEL_DATA])
def site_daily_energy(config: SiteDaysConfig, solar: SolarSettingsResource) -> dg.MaterializeResult:
    """Daily energy per site, per local day of the site's zone, with its panels, kWp and the energy the
    power model expected (`site_daily_energy`): specific yield and performance ratio per site day."""
    settings = solar.get()
    days = None
    if config.first_day:
        first = date.fromisoformat(config.first_day)
        days = days_between(first, date.fromisoformat(config.last_day or config.first_day))
    rows = roll_up_site_days(db.engine(settings), settings, days, days_back=config.days_back)
    return dg.MaterializeResult(metadata={"site_days_written": rows, "power_model": settings.power_model})


site_days_job = dg.define_asset_job("site_daily_rollups", selection=dg.AssetSelection.assets(SITE_DAILY_ENERGY),
                                    description="Recompute each site's last local days (or a given range).")
site_days_schedule = dg.ScheduleDefinition(
    name="site_daily_rollups_hourly", job=site_days_job, cron_schedule="5 * * * *",
    description="Each site's last days in its own zone, every hour.",
    default_status=dg.DefaultScheduleStatus.RUNNING)
