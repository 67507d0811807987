"""The per-panel daily rollup in Spark: panelData over JDBC -> per (day, panel) figures -> stage table.

`panel_day_figures` is the pure DataFrame transformation (testable on any DataFrame with
panelData's columns); `stage_panel_days` reads, transforms and appends to
`stage_panel_daily_energy`, from which `storage.rollups.swap_in_panel_days` swaps the days in.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F  # noqa: N812 - the conventional alias

from solar_platform.settings import Settings
from solar_platform.storage.rollups import day_range, jdbc_properties, jdbc_url

STAGE_TABLE = "stage_panel_daily_energy"


def panel_day_figures(readings: DataFrame) -> DataFrame:
    """Per (day, panel): trapezoid energy (Wh), peak W, uptime share, readings received.

    `readings` has panelData's columns (Panel_id, power_panel, current_status, time_data as a
    UTC timestamp). Each segment between consecutive readings of a panel on a day adds
    (P_prev + P) / 2 x dt: exactly `numpy.trapezoid` over that day's readings.
    """
    t = F.col("time_data").cast("double")
    by_panel_day = Window.partitionBy("day", "Panel_id").orderBy("time_data")
    with_prev = (
        readings.withColumn("day", F.to_date("time_data"))
        .withColumn("t", t)
        .withColumn("prev_t", F.lag("t").over(by_panel_day))
        .withColumn("prev_p", F.lag("power_panel").over(by_panel_day))
    )
    segment_wh = F.when(
        F.col("prev_t").isNotNull(),
        (F.col("prev_p") + F.col("power_panel")) / 2.0 * (F.col("t") - F.col("prev_t")) / 3600.0,
    ).otherwise(F.lit(0.0))
    return with_prev.groupBy("day", F.col("Panel_id").alias("panel_id")).agg(
        F.sum(segment_wh).alias("energy_wh"),
        F.max("power_panel").alias("peak_w"),
        F.avg(F.when(F.col("current_status") == 1, 1.0).otherwise(0.0)).alias("uptime_share"),
        F.count(F.lit(1)).cast("int").alias("readings_received"),
    )


def read_readings(spark: SparkSession, settings: Settings, first: date, last: date) -> DataFrame:
    """panelData for days first..last over JDBC, split by time into a few parallel reads."""
    start, end = day_range(first, last)
    query = ("(SELECT Panel_id, power_panel, current_status, time_data FROM panelData "
             f"WHERE time_data >= '{start:%Y-%m-%d %H:%M:%S}' AND time_data < '{end:%Y-%m-%d %H:%M:%S}') r")
    parallelism = max(1, min(4, (last - first).days + 1) * 2)
    reader = spark.read.format("jdbc").option("url", jdbc_url(settings)).option("dbtable", query)
    for key, value in jdbc_properties(settings).items():
        reader = reader.option(key, value)
    return (reader.option("partitionColumn", "time_data")
            .option("lowerBound", f"{start:%Y-%m-%d %H:%M:%S}").option("upperBound", f"{end:%Y-%m-%d %H:%M:%S}")
            .option("numPartitions", str(parallelism)).option("fetchsize", "10000").load())


def stage_panel_days(spark: SparkSession, settings: Settings, first: date, last: date, run_key: str) -> int:
    """Compute days first..last and append them to the stage table under `run_key`; returns the rows."""
    figures = panel_day_figures(read_readings(spark, settings, first, last)).withColumn(
        "run_key", F.lit(run_key)).select(
        "run_key", "day", "panel_id", "energy_wh", "peak_w", "uptime_share", "readings_received").cache()
    try:
        rows = figures.count()
        if rows:
            figures.coalesce(2).write.jdbc(url=jdbc_url(settings), table=STAGE_TABLE, mode="append",
                                           properties={**jdbc_properties(settings), "batchsize": "5000"})
        return rows
    finally:
        figures.unpersist()
