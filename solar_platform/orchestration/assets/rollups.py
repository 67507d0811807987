"""Rollups domain: per-panel and fleet energy per site-time-zone day, from the 15-minute buckets.

One multi-asset materializes both tables per day partition: the rows are staged, checked on the
stage, and only then swapped into the served tables in one MariaDB transaction. A blocking check
that fails stops the run before the swap: the served rows stay as they were, and the failed
checks are recorded with their figures. Backfills run as one run (`BackfillPolicy.single_run()`).
"""


import dagster as dg

from solar_platform.orchestration.assets.live import PANEL_DATA
from solar_platform.orchestration.partitions import daily_partitions, partition_days
from solar_platform.orchestration.resources import MonitoringResource, SolarSettingsResource
from solar_platform.storage import db
from solar_platform.storage import rollups as r
from solar_platform.storage.health import PMAX_TOLERANCE

GROUP = "rollups"
PANEL_DAILY = dg.AssetKey("panel_daily_energy")
FLEET_DAILY = dg.AssetKey("fleet_daily_energy")

_CHECK_ASSET = {r.RECOMPUTE_CHECK: PANEL_DAILY, r.PEAK_CHECK: PANEL_DAILY, r.COMPLETENESS_CHECK: PANEL_DAILY,
                r.FLEET_CHECK: FLEET_DAILY}


def _metadata(values: dict[str, object]) -> dict[str, object]:
    return {k: dg.MetadataValue.json(v) if isinstance(v, list | dict) else v for k, v in values.items()}


@dg.multi_asset(
    name="daily_energy_rollups",
    group_name=GROUP,
    specs=[
        dg.AssetSpec(PANEL_DAILY, kinds={"mysql"}, deps=[PANEL_DATA, "panels"],
                     description="Per-panel energy per site-time-zone day (table `panel_daily_energy`): Wh and "
                                 "covered seconds summed from the panel's 15-min buckets, peak W, uptime share, "
                                 "readings received vs expected (day seconds / interval; 23 or 25 h on DST days)."),
        dg.AssetSpec(FLEET_DAILY, kinds={"mysql"}, deps=[PANEL_DATA],
                     description="The fleet's daily totals (table `fleet_daily_energy`): the sum of the day's panel "
                                 "rows, checked against the fleet buckets the stream keeps."),
    ],
    check_specs=[
        dg.AssetCheckSpec(r.RECOMPUTE_CHECK, asset=PANEL_DAILY, blocking=True,
                          description="Staged energy, coverage, peak, uptime and readings equal a numpy trapezoid "
                                      "recompute from panelData (storage/energy.py's oracle) on a sample of panels "
                                      "per day. Days whose raw readings have expired are listed, not checked."),
        dg.AssetCheckSpec(r.PEAK_CHECK, asset=PANEL_DAILY, blocking=True,
                          description="0 <= staged peak <= 1.25 x the panel's registered Pmax."),
        dg.AssetCheckSpec(r.COMPLETENESS_CHECK, asset=PANEL_DAILY,
                          description="Readings received vs expected per panel-day; warns below 90 %."),
        dg.AssetCheckSpec(r.FLEET_CHECK, asset=FLEET_DAILY, blocking=True,
                          description="Per day: the staged fleet row = the sum of the staged panel rows = the sum of "
                                      "the day's fleet buckets (fleet_energy_15min)."),
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=False,
)
def daily_energy_rollups(context: dg.AssetExecutionContext, solar: SolarSettingsResource,
                         monitoring: MonitoringResource):  # noqa: ANN201
    """Daily energy per panel and for the fleet, per site-time-zone day, from the 15-minute buckets:
    staged, checked on the stage, then swapped in (one transaction) only if every blocking check
    passed. Idempotent per day."""
    settings = solar.get()
    first, last = partition_days(context)
    days = r.days_between(first, last)
    engine = db.engine(settings)
    run = r.roll_up_days(engine, settings, context.run.run_id[:36], days,
                         sample_size=monitoring.rollup_sample_panels, rel_tol=monitoring.rollup_relative_tolerance,
                         pmax_tolerance=PMAX_TOLERANCE)
    for name, outcome in run.checks.items():
        severity = dg.AssetCheckSeverity.ERROR if name in run.blocking else dg.AssetCheckSeverity.WARN
        yield dg.AssetCheckResult(asset_key=_CHECK_ASSET[name], check_name=name, passed=outcome.passed,
                                  severity=severity, metadata=_metadata(outcome.metadata))
    if run.served is None:
        raise dg.Failure(
            description=f"rollup of {first}..{last} not served: blocking check(s) {', '.join(run.failures())} "
                        "failed; the served rows are unchanged",
            metadata={"staged_panel_days": run.staged})
    panel_rows, fleet_rows = run.served
    fleet = r.fleet_days(engine, first, last)
    context.log.info(f"{first}..{last} ({settings.site_timezone}): served {panel_rows} panel-days, {fleet_rows} days")
    yield dg.MaterializeResult(asset_key=PANEL_DAILY, metadata={
        "days": dg.MetadataValue.json([d.isoformat() for d in days]),
        "time_zone": settings.site_timezone,
        "panel_days": panel_rows,
    })
    yield dg.MaterializeResult(asset_key=FLEET_DAILY, metadata={
        "days_written": fleet_rows,
        "energy_kwh_by_day": dg.MetadataValue.json({str(x["day"]): round(float(x["energy_wh"]) / 1000, 3)
                                                    for x in fleet}),
        "coverage_by_day": dg.MetadataValue.json({
            str(x["day"]): round(float(x["covered_seconds"])
                                 / max(1, int(x["day_seconds"]) * int(x["panels_reporting"])), 4) for x in fleet}),
    })
