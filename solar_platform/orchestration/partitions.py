"""Partitions: UTC days, for the daily rollups and their backfills."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

DAILY_START = "2024-01-01"

daily_partitions = dg.DailyPartitionsDefinition(start_date=DAILY_START, timezone="UTC")


def partition_days(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """First and last UTC day of the run's partition range (one day, or a whole single-run backfill)."""
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()
