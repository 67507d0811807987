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


# An active panel: registered and not retired (with a Pmax), or seen since the window's start.
_REGISTERED = "retired_at IS NULL AND pmax_w IS NOT NULL"
# Room for the per-panel sums' in-memory temporary table (~270 bytes a panel: the key is a fixed-width
# VARCHAR(64) utf8mb4 there): at the 16 MB default, 200k panels spill to disk and take 10x longer.
_GROUPING_BYTES = 256 * 2**20


def delivery(conn: Connection, *, start: datetime, end: datetime, interval_seconds: float, min_share: float
             ) -> dict[str, float]:
    """Readings per active panel (registered and not retired, or seen) in the buckets `[start, end)`
    against the cadence. The median share comes from a histogram of shares in 5 % steps.

    The buckets of the window are summed per panel first (one `bucket_start` range of the index);
    the active panels without a bucket there, all at share 0, are counted by difference: the active
    set's size less the panels with buckets in it. Nothing joins the ~450k active panels to buckets."""
    expected = (end - start).total_seconds() / interval_seconds
    params = {"start": start, "end": end, "expected": expected, "min_share": min_share}
    sizes = conn.execute(text("SELECT @@SESSION.tmp_table_size, @@SESSION.max_heap_table_size")).one()
    conn.execute(text("SET SESSION tmp_table_size = GREATEST(@@tmp_table_size, :b), "
                      "max_heap_table_size = GREATEST(@@max_heap_table_size, :b)"), {"b": _GROUPING_BYTES})
    try:
        counted, below, above, lowest, *histogram = conn.execute(text(f"""
            SELECT COUNT(*), COALESCE(SUM(share < :min_share), 0), COALESCE(SUM(n > :expected + 1), 0), MIN(share),
                   {", ".join(f"COALESCE(SUM(share < {(k + 1) / _HISTOGRAM_BINS}), 0)" for k in range(_HISTOGRAM_BINS))}
            FROM (
                SELECT panel_id, SUM(readings) AS n, LEAST(COALESCE(SUM(readings), 0) / :expected, 1) AS share
                FROM {PANEL_BUCKETS} WHERE bucket_start >= :start AND bucket_start < :end
                GROUP BY panel_id
            ) s
            WHERE EXISTS (SELECT 1 FROM {PANEL_LATEST} l WHERE l.panel_id = s.panel_id AND l.last_seen >= :start)
               OR EXISTS (SELECT 1 FROM {PANELS} p WHERE p.panel_id = s.panel_id AND p.{_REGISTERED})"""),
            params).one()
    finally:
        conn.execute(text("SET SESSION tmp_table_size = :t, max_heap_table_size = :h"),
                     {"t": int(sizes[0]), "h": int(sizes[1])})
    active = conn.execute(text(f"""
        SELECT (SELECT COUNT(*) FROM {PANELS} WHERE {_REGISTERED})
             + (SELECT COUNT(*) FROM {PANEL_LATEST} l WHERE l.last_seen >= :start
                AND NOT EXISTS (SELECT 1 FROM {PANELS} p WHERE p.panel_id = l.panel_id AND p.{_REGISTERED}))"""),
        params).scalar()
    silent = int(active or 0) - int(counted)  # active, no reading in the window: share 0
    panels = int(counted) + silent
    if silent:
        below = int(below) + (silent if min_share > 0 else 0)
        lowest = 0.0
        histogram = [int(c) + silent for c in histogram]
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
