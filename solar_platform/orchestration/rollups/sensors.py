"""Daily figures follow late data: roll up again every rolled-up day whose buckets changed since."""

from datetime import UTC, date, datetime

import dagster as dg

from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.orchestration.rollups.jobs import daily_rollups
from solar_platform.orchestration.rollups.partitions import DAILY_START
from solar_platform.storage import db
from solar_platform.storage.history import changes
from solar_platform.storage.periods import local_day, zone


@dg.sensor(job=daily_rollups, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every minute: the site days that have a served rollup and a 15-min bucket changed since "
                       "(a late, re-sent or corrected reading; the stream marks the bucket in the same transaction) "
                       "get a run of daily_rollups for their partition. The run consumes the marks it saw, so each "
                       "change re-rolls its day once; reads the marks table, never a bucket or a reading.")
def rollups_follow_late_data(context: dg.SensorEvaluationContext,
                             solar: SolarSettingsResource) -> dg.SensorResult | dg.SkipReason:
    settings = solar.get()
    today = local_day(datetime.now(UTC).replace(tzinfo=None), zone(settings.site_timezone))
    first = date.fromisoformat(DAILY_START)
    with db.engine(settings).connect() as conn:
        stale = {day: at for day, at in changes.rolled_days_with_changes(conn, settings.site_timezone, today).items()
                 if day >= first}
    if not stale:
        return dg.SkipReason("no rolled-up day has a change its rollup has not seen")
    context.log.info(f"rolling up again: {', '.join(d.isoformat() for d in sorted(stale))}")
    return dg.SensorResult(run_requests=[
        # One run per day and newest change: a run in flight or failed for that change is not asked again.
        dg.RunRequest(partition_key=day.isoformat(), run_key=f"late-data-{day.isoformat()}-{at:%Y%m%dT%H%M%S%f}",
                      tags={"solar/reason": f"buckets of {day.isoformat()} changed at {at:%Y-%m-%d %H:%M:%S} UTC"})
        for day, at in sorted(stale.items())])
