"""Daily rollups per site day, in each site's own zone (`site_daily_energy`).

A separate, small addition beside the fleet's daily rollups (`rollups.py`): a site's day is a
calendar day of the **site's** zone, the sum of its panels' 15-minute buckets starting in
`[local midnight, next local midnight)`, with its panels, kWp and the energy the power model
expected of them (`yields.expected_wh`), so dashboards read specific yield and performance ratio
from one row per site day. Each (site, day) is recomputed whole and upserted, so re-rolling a day
that got late data gives the same rows as a first roll-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text

from solar_platform.settings import Settings
from solar_platform.storage.db import PANEL_BUCKETS, PANELS, SITE_DAILY_ENERGY
from solar_platform.storage.periods import Period
from solar_platform.storage.rollups import days_between, days_touching, local_day_bounds
from solar_platform.storage.sites import list_sites
from solar_platform.storage.yields import expected_wh


def recent_days(time_zone: str, now: datetime, days_back: int) -> list[date]:
    """The last `days_back` local days of a zone before today, and today."""
    today = now.astimezone(ZoneInfo(time_zone)).date()
    return days_between(today - timedelta(days=days_back), today)


def roll_up_site_days(engine: Engine, settings: Settings, days: Sequence[date] | None = None, *,
                      site_ids: Sequence[str] | None = None, now: datetime | None = None,
                      days_back: int = 2) -> int:
    """(Re)compute the site days: `days` for every site (or `site_ids`), or by default each site's
    last `days_back` local days and today. Returns the rows written."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    written = 0
    with engine.begin() as conn:
        sites = [s for s in list_sites(conn, limit=1_000_000) if site_ids is None or s.site_id in site_ids]
        places = {s.site_id: s.place for s in sites}
        for site in sites:
            for day in days if days is not None else recent_days(site.time_zone, moment, days_back):
                a, b = local_day_bounds(day, site.time_zone)
                energy, covered, reporting = conn.execute(text(
                    f"SELECT COALESCE(SUM(b.energy_wh), 0), COALESCE(SUM(b.covered_seconds), 0), "
                    f"COUNT(DISTINCT b.panel_id) FROM {PANEL_BUCKETS} b "
                    f"JOIN {PANELS} p ON p.panel_id = b.panel_id AND p.site_id = :s "
                    "WHERE b.bucket_start >= :a AND b.bucket_start < :b"), {"s": site.site_id, "a": a, "b": b}).one()
                expected = expected_wh(settings, places, {site.site_id: site.kwp}, Period(a, a, b))
                conn.execute(text(
                    f"INSERT INTO {SITE_DAILY_ENERGY} (site_id, day, time_zone, energy_wh, covered_seconds, "
                    "day_seconds, panels, panels_reporting, kwp, expected_wh, computed_at) "
                    "VALUES (:s, :d, :tz, :e, :c, :ds, :n, :r, :kwp, :x, :now) ON DUPLICATE KEY UPDATE "
                    "time_zone = VALUES(time_zone), energy_wh = VALUES(energy_wh), "
                    "covered_seconds = VALUES(covered_seconds), day_seconds = VALUES(day_seconds), "
                    "panels = VALUES(panels), panels_reporting = VALUES(panels_reporting), kwp = VALUES(kwp), "
                    "expected_wh = VALUES(expected_wh), computed_at = VALUES(computed_at)"),
                    {"s": site.site_id, "d": day, "tz": site.time_zone, "e": float(energy), "c": float(covered),
                     "ds": int((b - a).total_seconds()), "n": site.panels, "r": int(reporting), "kwp": site.kwp,
                     "x": expected, "now": moment.replace(tzinfo=None)})
                written += 1
    return written


def roll_up_site_days_touching(engine: Engine, settings: Settings, start: datetime, end: datetime) -> int:
    """Recompute every site day that overlaps the UTC range `[start, end)`, each in its site's zone.

    Called after the fleet's rollup of a day (`orchestration/rollups/assets.py`): when late data
    makes the sensor roll a fleet day up again, the site days holding the same buckets follow."""
    with engine.connect() as conn:
        sites = list_sites(conn, limit=1_000_000)
    return sum(roll_up_site_days(engine, settings, days_touching(start, end, site.time_zone), site_ids=[site.site_id])
               for site in sites)
