"""Partitions: the site's days (SOLAR_SITE_TIMEZONE), for the daily rollups and their backfills."""

from datetime import date

import dagster as dg

DAILY_START = "2024-01-01"


def daily_partitions(site_timezone: str) -> dg.DailyPartitionsDefinition:
    """A partition key is a local date of the site; its run rolls up that local day (23 or 25 h on DST days)."""
    return dg.DailyPartitionsDefinition(start_date=DAILY_START, timezone=site_timezone)


def partition_days(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """First and last local day of the run's partition range (one day, or a whole single-run backfill)."""
    keys = context.partition_keys
    return date.fromisoformat(keys[0]), date.fromisoformat(keys[-1])
