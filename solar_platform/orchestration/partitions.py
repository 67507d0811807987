"""Partitions: the site's days (SOLAR_SITE_TIMEZONE), for the daily rollups and their backfills."""

from __future__ import annotations

from datetime import date

import dagster as dg

from solar_platform.settings import SettingsError, load_settings

DAILY_START = "2024-01-01"


def _site_timezone() -> str:
    try:
        return load_settings().site_timezone
    except SettingsError:  # the code location still loads; the runs report the bad setting
        return "UTC"


# A partition key is a local date of the site; its run rolls up that local day (23 or 25 h on DST days).
daily_partitions = dg.DailyPartitionsDefinition(start_date=DAILY_START, timezone=_site_timezone())


def partition_days(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """First and last local day of the run's partition range (one day, or a whole single-run backfill)."""
    keys = context.partition_keys
    return date.fromisoformat(keys[0]), date.fromisoformat(keys[-1])

