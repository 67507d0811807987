"""Rollups: per-panel and fleet energy per site-time-zone day, from the 15-minute buckets.

One multi-asset materializes both tables per day partition: the rows are staged, checked on the
stage, and only then swapped into the served tables in one MariaDB transaction. A blocking check
that fails stops the run before the swap: the served rows stay as they were, and the failed
checks are recorded with their figures. Backfills run as one run (`BackfillPolicy.single_run()`).
The partitions are the site's days, so the asset is built for a time zone (`build_daily_energy_rollups`).
A run for a day the stream changes while it is rolled up serves nothing and fails no check (warnings):
the day keeps its change marks, and the sensor `rollups_follow_late_data` asks for it again.
"""

from datetime import date

import dagster as dg
from sqlalchemy import Engine

from solar_platform.orchestration import keys
from solar_platform.orchestration.resources import SolarSettingsResource, SolarSparkResource
from solar_platform.orchestration.rollups.partitions import partition_days
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage import rollups as daily_rollups
from solar_platform.storage.site_rollups import roll_up_site_days_touching

GROUP = "rollups"

_CHECK_ASSET = {
    daily_rollups.RECOMPUTE_CHECK: keys.PANEL_DAILY_ENERGY,
    daily_rollups.PEAK_CHECK: keys.PANEL_DAILY_ENERGY,
    daily_rollups.COMPLETENESS_CHECK: keys.PANEL_DAILY_ENERGY,
    daily_rollups.FLEET_CHECK: keys.FLEET_DAILY_ENERGY,
}


def _metadata(values: dict[str, object]) -> dict[str, object]:
    return {k: dg.MetadataValue.json(v) if isinstance(v, list | dict) else v for k, v in values.items()}


def _roll_up(context: dg.AssetExecutionContext, engine: Engine, settings: Settings, days: list[date],
             spark: SolarSparkResource) -> daily_rollups.RollupRun:
    """The rollup of `days`; folded days whose readings retention dropped first get their buckets
    back from the raw archive, on Spark (`history.rebuild`, buckets only)."""
    try:
        return daily_rollups.roll_up_days(engine, settings, context.run.run_id[:36], days)
    except daily_rollups.FoldedDaysNeedTheArchive as folded:
        from solar_platform.history.rebuild import rebuild

        for day in folded.days:
            start, end = daily_rollups.local_day_bounds(day, settings.site_timezone)
            context.log.info(f"{day}: buckets folded and raw readings expired: rebuilding them from the archive")
            rebuild(settings, start, end, rollups=False, spark=spark.spark_session)
        return daily_rollups.roll_up_days(engine, settings, context.run.run_id[:36], days)


def build_daily_energy_rollups(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The daily rollups' multi-asset over `partitions_def` (the site's days)."""

    @dg.multi_asset(
        name="daily_energy_rollups",
        group_name=GROUP,
        specs=[
            dg.AssetSpec(keys.PANEL_DAILY_ENERGY, kinds={"mysql"}, deps=[keys.PANEL_DATA, keys.PANEL_REGISTRY],
                         skippable=True,
                         description="Per-panel energy per site-time-zone day (table `panel_daily_energy`): Wh "
                                     "and covered seconds summed from the panel's 15-min buckets, peak W, uptime "
                                     "share, readings received vs expected (day seconds / interval; 23 or 25 h on "
                                     "DST days)."),
            dg.AssetSpec(keys.FLEET_DAILY_ENERGY, kinds={"mysql"}, deps=[keys.PANEL_DATA], skippable=True,
                         description="The fleet's daily totals (table `fleet_daily_energy`): the sum of the day's "
                                     "panel rows, checked against the fleet buckets the stream keeps."),
        ],
        check_specs=[
            dg.AssetCheckSpec(daily_rollups.RECOMPUTE_CHECK, asset=keys.PANEL_DAILY_ENERGY, blocking=True,
                              description="Staged energy, coverage, peak, uptime and readings equal a numpy "
                                          "trapezoid recompute from panelData (storage/energy.py's oracle) on a "
                                          "sample of panels per day. Days whose raw readings have expired are "
                                          "listed, not checked."),
            dg.AssetCheckSpec(daily_rollups.PEAK_CHECK, asset=keys.PANEL_DAILY_ENERGY, blocking=True,
                              description="0 <= staged peak <= SOLAR_HEALTH_OVER_RANGE_FACTOR (1.25) x the "
                                          "panel's registered Pmax."),
            dg.AssetCheckSpec(daily_rollups.COMPLETENESS_CHECK, asset=keys.PANEL_DAILY_ENERGY,
                              description="Readings received vs expected per panel-day; warns below 90 %."),
            dg.AssetCheckSpec(daily_rollups.FLEET_CHECK, asset=keys.FLEET_DAILY_ENERGY, blocking=True,
                              description="Per day: the staged fleet row = the sum of the staged panel rows = the "
                                          "sum of the day's fleet buckets (fleet_energy_15min)."),
        ],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        can_subset=False,
    )
    def daily_energy_rollups(context: dg.AssetExecutionContext, solar: SolarSettingsResource,  # noqa: ANN202
                             spark: SolarSparkResource):
        """Daily energy per panel and for the fleet, per site-time-zone day, from the 15-minute buckets:
        staged, checked on the stage, then swapped in (one transaction) only if every blocking check
        passed. Idempotent per day."""
        settings = solar.get()
        first, last = partition_days(context)
        days = daily_rollups.days_between(first, last)
        engine = db.engine(settings)
        run = _roll_up(context, engine, settings, days, spark)
        for name, outcome in run.checks.items():
            # A check that failed because the stream changed the day meanwhile blocks nothing: the day
            # keeps its change marks and the sensor rolls it up again.
            blocks = name in run.blocking and not run.changed_meanwhile
            severity = dg.AssetCheckSeverity.ERROR if blocks else dg.AssetCheckSeverity.WARN
            yield dg.AssetCheckResult(asset_key=_CHECK_ASSET[name], check_name=name, passed=outcome.passed,
                                      severity=severity, metadata=_metadata(
                                          {**outcome.metadata, "changed_meanwhile": [
                                              d.isoformat() for d in run.changed_meanwhile]}))
        if run.served is None and run.changed_meanwhile:
            context.log.warning(f"{', '.join(d.isoformat() for d in run.changed_meanwhile)} changed while rolled up "
                                "(a late reading): nothing served this time; the sensor rolls it up again")
            return
        if run.served is None:
            raise dg.Failure(
                description=f"rollup of {first}..{last} not served: blocking check(s) "
                            f"{', '.join(run.failures())} failed; the served rows are unchanged",
                metadata={"staged_panel_days": run.staged})
        panel_rows, fleet_rows = run.served
        # The site days over the same buckets (each in its site's zone) follow the fleet's days.
        site_days = roll_up_site_days_touching(
            engine, settings, daily_rollups.local_day_bounds(first, settings.site_timezone)[0],
            daily_rollups.local_day_bounds(last, settings.site_timezone)[1])
        fleet = daily_rollups.fleet_days(engine, first, last)
        context.log.info(f"{first}..{last} ({settings.site_timezone}): served {panel_rows} panel-days, "
                         f"{fleet_rows} days")
        yield dg.MaterializeResult(asset_key=keys.PANEL_DAILY_ENERGY, metadata={
            "days": dg.MetadataValue.json([d.isoformat() for d in days]),
            "time_zone": settings.site_timezone,
            "panel_days": panel_rows,
            "site_days_rerolled": site_days,
        })
        yield dg.MaterializeResult(asset_key=keys.FLEET_DAILY_ENERGY, metadata={
            "days_written": fleet_rows,
            "energy_kwh_by_day": dg.MetadataValue.json({str(x["day"]): round(float(x["energy_wh"]) / 1000, 3)
                                                        for x in fleet}),
            "coverage_by_day": dg.MetadataValue.json({
                str(x["day"]): round(float(x["covered_seconds"])
                                     / max(1, int(x["day_seconds"]) * int(x["panels_reporting"])), 4)
                for x in fleet}),
        })

    return daily_energy_rollups
