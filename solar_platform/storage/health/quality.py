"""Quality figures of the live tables, for Dagster's asset checks: bounded, indexed reads of what the
stream keeps (15-minute buckets, progress rows), never raw readings.

- `delivery`: readings per panel in the newest complete buckets against the cadence: the share the
  median panel reached (completeness), the panels under the required share, and the panels that
  sent more readings than the cadence allows (re-stamped duplicates: the (panel, time) key stops
  exact repeats, not a reading sent again with another time). One row per panel and bucket.
- `power_out_of_bounds`: buckets whose lowest reading is negative or whose peak passes the panel's
  Pmax x the over-range factor.
- `dead_letter_rate`: from the stream's per-batch counters.

Fault detection per panel is elsewhere (`storage.health.faults`, `storage.health.alerts`).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from solar_platform.storage.db import PANEL_BUCKETS, PANEL_LATEST, PANELS, STREAM_PROGRESS
from solar_platform.storage.energy import BUCKET_SECONDS
from solar_platform.storage.stream.progress import READINGS_QUERY

_HISTOGRAM_BINS = 20


_EPOCH = datetime(1970, 1, 1)


def complete_buckets(until: datetime, minutes: float) -> tuple[datetime, datetime]:
    """`[start, end)` (naive UTC) of the newest whole 15-min buckets before `until` (naive UTC),
    covering at least `minutes`."""
    edge = _EPOCH + timedelta(seconds=math.floor((until - _EPOCH).total_seconds() / BUCKET_SECONDS) * BUCKET_SECONDS)
    count = max(1, math.ceil(minutes * 60 / BUCKET_SECONDS))
    return edge - timedelta(seconds=count * BUCKET_SECONDS), edge


def delivery(conn: Connection, *, start: datetime, end: datetime, interval_seconds: float, min_share: float
             ) -> dict[str, float]:
    """Readings per active panel (registered and not retired, or seen) in the buckets `[start, end)`
    against the cadence. The median share comes from a histogram of shares in 5 % steps."""
    expected = (end - start).total_seconds() / interval_seconds
    panels, below, above, lowest, *histogram = conn.execute(text(f"""
        SELECT COUNT(*), COALESCE(SUM(share < :min_share), 0), COALESCE(SUM(n > :expected + 1), 0), MIN(share),
               {", ".join(f"COALESCE(SUM(share < {(k + 1) / _HISTOGRAM_BINS}), 0)" for k in range(_HISTOGRAM_BINS))}
        FROM (
            SELECT a.panel_id, COALESCE(SUM(b.readings), 0) AS n,
                   LEAST(COALESCE(SUM(b.readings), 0) / :expected, 1) AS share
            FROM (SELECT panel_id FROM {PANELS} WHERE retired_at IS NULL AND pmax_w IS NOT NULL
                  UNION SELECT panel_id FROM {PANEL_LATEST} WHERE last_seen >= :start) a
            LEFT JOIN {PANEL_BUCKETS} b ON b.panel_id = a.panel_id AND b.bucket_start >= :start
                                        AND b.bucket_start < :end
            GROUP BY a.panel_id
        ) s"""), {"start": start, "end": end, "expected": expected, "min_share": min_share}).one()
    panels = int(panels)
    median = 0.0
    if panels:
        # the first 5 % step whose cumulative count reaches half the panels
        cumulative = [int(c) for c in histogram]
        median = next(((k + 1) / _HISTOGRAM_BINS for k, c in enumerate(cumulative) if c >= panels / 2), 1.0)
    return {
        "panels": panels,
        "window_start": start.isoformat(), "window_end": end.isoformat(),
        "expected_per_panel": round(expected, 2),
        "median_share": median,
        "min_share": float(lowest) if lowest is not None else 0.0,
        "panels_below_min_share": int(below),
        "panels_above_expected": int(above),
    }


def power_out_of_bounds(conn: Connection, *, start: datetime, end: datetime, tolerance: float) -> dict[str, object]:
    """Buckets in `[start, end)` with a negative reading, or one above `tolerance` x the panel's
    registered Pmax (`tolerance` is the over_range rule's factor, `SOLAR_HEALTH_OVER_RANGE_FACTOR`)."""
    checked, negative, above, sample = conn.execute(text(
        "SELECT COUNT(*), COALESCE(SUM(b.min_w < 0), 0), "
        "COALESCE(SUM(p.pmax_w IS NOT NULL AND b.peak_w > :tol * p.pmax_w), 0), "
        "MIN(IF(b.min_w < 0 OR b.peak_w > :tol * p.pmax_w, b.panel_id, NULL)) "
        f"FROM {PANEL_BUCKETS} b LEFT JOIN {PANELS} p ON p.panel_id = b.panel_id "
        "WHERE b.bucket_start >= :start AND b.bucket_start < :end AND b.readings > 0"),
        {"tol": tolerance, "start": start, "end": end}).one()
    return {"buckets_checked": int(checked), "negative": int(negative), "above_limit": int(above),
            "example_panel": sample or ""}


def dead_letter_rate(conn: Connection, *, since: datetime) -> dict[str, float]:
    """Dead letters / messages read by the stream since `since`, from stream_progress."""
    rows_in, dead = conn.execute(text(
        f"SELECT COALESCE(SUM(rows_in), 0), COALESCE(SUM(dead_letters), 0) FROM {STREAM_PROGRESS} "
        "WHERE query_name = :q AND recorded_at >= :since"), {"q": READINGS_QUERY, "since": since}).one()
    table_dead = conn.execute(text("SELECT COUNT(*) FROM dead_letters WHERE recorded_at >= :since"),
                              {"since": since}).scalar()
    rows_in, dead = int(rows_in), max(int(dead), int(table_dead or 0))
    return {"messages": rows_in, "dead_letters": dead, "rate": dead / rows_in if rows_in else 0.0}
