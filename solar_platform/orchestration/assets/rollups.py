"""Rollups domain: per-panel and fleet energy per UTC day, partitioned by day.

Both are idempotent per day (the day's rows are replaced in one transaction) and backfill in a
single run (`BackfillPolicy.single_run()`): a 30-day backfill is one Spark job over 30 days,
not 30 SparkSession starts.
"""


from datetime import date, timedelta

import dagster as dg
from sqlalchemy import text

from solar_platform.orchestration.assets.live import PANEL_DATA
from solar_platform.orchestration.partitions import daily_partitions, partition_days
from solar_platform.orchestration.resources import MonitoringResource, SolarSettingsResource, SolarSparkResource
from solar_platform.storage import db
from solar_platform.storage import rollups as r
from solar_platform.storage.health import PMAX_TOLERANCE

GROUP = "rollups"

RECOMPUTE_CHECK = "matches_numpy_recompute"
PEAK_CHECK = "peak_within_pmax"
COMPLETENESS_CHECK = "readings_complete"
FLEET_CHECK = "matches_panelData"


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@dg.asset(
    group_name=GROUP,
    kinds={"spark", "mysql"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[PANEL_DATA, "panels"],
    check_specs=[
        dg.AssetCheckSpec(RECOMPUTE_CHECK, asset="panel_daily_energy", blocking=True,
                          description="Energy, peak, uptime and counts equal a numpy trapezoid recompute from "
                                      "panelData on a sample of panels per day (relative tolerance configurable)."),
        dg.AssetCheckSpec(PEAK_CHECK, asset="panel_daily_energy", blocking=True,
                          description="0 <= peak <= 1.25 x the panel's registered Pmax."),
        dg.AssetCheckSpec(COMPLETENESS_CHECK, asset="panel_daily_energy",
                          description="Readings received vs expected (86400 / interval per panel-day); "
                                      "warns below 90 %."),
    ],
)
def panel_daily_energy(context: dg.AssetExecutionContext, solar: SolarSettingsResource,
                       spark: SolarSparkResource, monitoring: MonitoringResource):  # noqa: ANN201
    """Per-panel daily energy (table `panel_daily_energy`): Wh integrated with the trapezoid rule
    from the day's readings, peak W, uptime share (readings with status 1), readings received vs
    expected (86400 / interval per day).

    Computed in Spark reading panelData over JDBC, staged, then swapped in per day in one
    MariaDB transaction (delete + insert): re-running a day gives the same rows.
    """
    from solar_platform.orchestration.spark_rollup import stage_panel_days

    settings = solar.get()
    first, last = partition_days(context)
    engine = db.engine(settings)
    run_key = context.run.run_id[:36]
    try:
        staged = stage_panel_days(spark.spark_session, settings, first, last, run_key)
        inserted = r.swap_in_panel_days(engine, run_key, first, last, settings.interval_seconds)
    except Exception:
        r.clear_stage(engine, run_key)
        raise
    context.log.info(f"{first}..{last}: staged {staged}, inserted {inserted} panel-days")
    days = _days(first, last)

    comparison = r.compare_with_recompute(engine, days, monitoring.rollup_sample_panels,
                                          monitoring.rollup_relative_tolerance)
    yield dg.AssetCheckResult(
        check_name=RECOMPUTE_CHECK, passed=comparison["mismatched"] == 0,
        metadata={"panels_checked": comparison["panels_checked"], "mismatched": comparison["mismatched"],
                  "worst_relative_error": float(comparison["worst_relative_error"]),
                  "tolerance": monitoring.rollup_relative_tolerance,
                  "examples": dg.MetadataValue.json(comparison["examples"])})
    peaks = r.peak_vs_pmax(engine, first, last, PMAX_TOLERANCE)
    yield dg.AssetCheckResult(check_name=PEAK_CHECK, passed=peaks["out_of_bounds"] == 0, metadata=peaks)
    complete = r.completeness_of_days(engine, first, last)
    yield dg.AssetCheckResult(
        check_name=COMPLETENESS_CHECK, passed=complete["panel_days"] == 0 or complete["share"] >= 0.9,
        severity=dg.AssetCheckSeverity.WARN, metadata=complete)

    with engine.connect() as conn:
        energy, panels = conn.execute(text(
            "SELECT COALESCE(SUM(energy_wh), 0), COUNT(DISTINCT panel_id) FROM panel_daily_energy "
            "WHERE day BETWEEN :a AND :b"), {"a": first, "b": last}).one()
    yield dg.MaterializeResult(metadata={
        "days": dg.MetadataValue.json([d.isoformat() for d in days]),
        "panel_days": inserted,
        "panels": int(panels),
        "energy_kwh": round(float(energy) / 1000.0, 3),
        "readings_expected_per_panel_day": r.expected_readings_per_day(settings.interval_seconds),
    })


@dg.asset(
    group_name=GROUP,
    kinds={"mysql"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[panel_daily_energy],
    check_specs=[dg.AssetCheckSpec(
        FLEET_CHECK, asset="fleet_daily_energy", blocking=True,
        description="Per day: readings and reporting panels equal a direct count over panelData, and the "
                    "energy equals the sum of the panel rows.")],
)
def fleet_daily_energy(context: dg.AssetExecutionContext, solar: SolarSettingsResource):  # noqa: ANN201
    """The fleet's daily totals (table `fleet_daily_energy`): energy, highest panel peak, panels
    reporting, readings received vs expected and mean uptime, summed from panel_daily_energy per day.
    """
    settings = solar.get()
    first, last = partition_days(context)
    engine = db.engine(settings)
    written = r.rollup_fleet_days(engine, first, last)
    start, end = r.day_range(first, last)
    with engine.connect() as conn:
        direct = {row[0]: (int(row[1]), int(row[2])) for row in conn.execute(text(
            "SELECT DATE(time_data), COUNT(*), COUNT(DISTINCT Panel_id) FROM panelData "
            "WHERE time_data >= :a AND time_data < :b GROUP BY DATE(time_data)"), {"a": start, "b": end})}
        panel_sum = {row[0]: float(row[1]) for row in conn.execute(text(
            "SELECT day, SUM(energy_wh) FROM panel_daily_energy WHERE day BETWEEN :a AND :b GROUP BY day"),
            {"a": first, "b": last})}
    rows = r.fleet_days(engine, first, last)
    problems = []
    for row in rows:
        readings, panels = direct.get(row["day"], (0, 0))
        if (row["readings_received"], row["panels_reporting"]) != (readings, panels):
            problems.append(f"{row['day']}: rollup {row['readings_received']} readings / {row['panels_reporting']} "
                            f"panels vs panelData {readings} / {panels}")
        if abs(row["energy_wh"] - panel_sum.get(row["day"], 0.0)) > 1e-6 * max(1.0, row["energy_wh"]):
            problems.append(f"{row['day']}: energy differs from the panel rows")
    missing = sorted(set(direct) - {row["day"] for row in rows})
    problems += [f"{day}: readings in panelData but no rollup" for day in missing]
    yield dg.AssetCheckResult(check_name=FLEET_CHECK, passed=not problems,
                              metadata={"days_checked": len(rows), "problems": dg.MetadataValue.json(problems[:10])})
    context.log.info(f"fleet rollup {first}..{last}: {written} days")
    yield dg.MaterializeResult(metadata={
        "days_written": written,
        "energy_kwh_by_day": dg.MetadataValue.json({str(x["day"]): round(x["energy_wh"] / 1000, 3) for x in rows}),
    })
