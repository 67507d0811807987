"""Quality figures of the live tables, for Dagster's asset checks.

The checks pass the window to read (`since`, `window`), so cost follows that window. Fault
detection per panel is elsewhere: `storage.health.faults` (the rules), `storage.health.alerts` (judging the live
tables, keeping `panel_alerts`) and `storage.health.registry` (the panel registry).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Connection, text

from solar_platform.storage.db import PANELS, STREAM_PROGRESS
from solar_platform.storage.stream.progress import READINGS_QUERY


def completeness(conn: Connection, *, window: timedelta, interval_seconds: float, min_share: float
                 ) -> dict[str, float]:
    """Readings per registered-or-seen panel in the `window` ending at the newest reading, vs the cadence;
    `panels_below_min_share` counts the panels under `min_share` of it."""
    newest = conn.execute(text("SELECT MAX(time_data) FROM panelData")).scalar()
    expected = window.total_seconds() / interval_seconds
    if newest is None:
        return {"panels": 0, "expected_per_panel": expected, "median_share": 0.0, "min_share": 0.0,
                "panels_below_min_share": 0}
    counts = dict(conn.execute(text(
        "SELECT Panel_id, COUNT(*) FROM panelData WHERE time_data > :since AND time_data <= :newest "
        "GROUP BY Panel_id"), {"since": newest - window, "newest": newest}).all())
    panels = {pid for (pid,) in conn.execute(text(f"SELECT panel_id FROM {PANELS} WHERE pmax_w IS NOT NULL"))}
    panels |= set(counts)
    shares = np.array([min(counts.get(pid, 0) / expected, 1.0) for pid in panels]) if panels else np.zeros(0)
    return {
        "panels": len(panels),
        "expected_per_panel": round(expected, 2),
        "median_share": float(np.median(shares)) if shares.size else 0.0,
        "min_share": float(shares.min()) if shares.size else 0.0,
        "panels_below_min_share": int(np.sum(shares < min_share)),
    }


def power_out_of_bounds(conn: Connection, *, since: datetime | None, tolerance: float) -> dict[str, object]:
    """Readings with P < 0 or P > tolerance x the panel's registered Pmax (since `since`, or all).

    `tolerance` is the over_range rule's factor (`SOLAR_HEALTH_OVER_RANGE_FACTOR`).
    """
    where = "d.time_data >= :since AND " if since is not None else ""
    checked, negative, above, sample = conn.execute(text(
        "SELECT COUNT(*), COALESCE(SUM(d.power_panel < 0), 0), "
        "COALESCE(SUM(p.pmax_w IS NOT NULL AND d.power_panel > :tol * p.pmax_w), 0), "
        "MIN(IF(d.power_panel < 0 OR d.power_panel > :tol * p.pmax_w, d.Panel_id, NULL)) "
        f"FROM panelData d LEFT JOIN {PANELS} p ON p.panel_id = d.Panel_id WHERE {where}1=1"),
        {"tol": tolerance, "since": since}).one()
    return {"readings_checked": int(checked), "negative": int(negative), "above_limit": int(above),
            "example_panel": sample or ""}


def duplicate_keys(conn: Connection, relation: str, key_exprs: Iterable[str], params: Mapping | None = None
                   ) -> dict[str, object]:
    """Groups of `relation` (a table name or a parenthesised query with alias) sharing a key.

    `relation` and `key_exprs` are SQL written by this package, never user input.
    """
    keys = ", ".join(key_exprs)
    groups, extra = conn.execute(text(
        f"SELECT COUNT(*), COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) AS n FROM {relation} "
        f"GROUP BY {keys} HAVING COUNT(*) > 1) dup"), dict(params or {})).one()
    return {"duplicate_groups": int(groups), "extra_rows": int(extra)}


def readings_per_tick_duplicates(conn: Connection, *, since: datetime | None, interval_seconds: float
                                 ) -> dict[str, object]:
    """Panels with more than one reading in the same `interval_seconds` tick.

    panelData's key (panel, time) stops exact replays; this catches what the key cannot: the same
    reading delivered twice with a re-stamped time (e.g. a naive local time read in another zone).
    """
    where = "WHERE time_data >= :since" if since is not None else ""
    return duplicate_keys(
        conn, f"(SELECT Panel_id, time_data FROM panelData {where}) r",
        ["Panel_id", "FLOOR(UNIX_TIMESTAMP(time_data) / :interval)"],
        {"since": since, "interval": interval_seconds})


def dead_letter_rate(conn: Connection, *, since: datetime) -> dict[str, float]:
    """Dead letters / messages read by the stream since `since`, from stream_progress."""
    rows_in, dead = conn.execute(text(
        f"SELECT COALESCE(SUM(rows_in), 0), COALESCE(SUM(dead_letters), 0) FROM {STREAM_PROGRESS} "
        "WHERE query_name = :q AND recorded_at >= :since"), {"q": READINGS_QUERY, "since": since}).one()
    table_dead = conn.execute(text("SELECT COUNT(*) FROM dead_letters WHERE recorded_at >= :since"),
                              {"since": since}).scalar()
    rows_in, dead = int(rows_in), max(int(dead), int(table_dead or 0))
    return {"messages": rows_in, "dead_letters": dead, "rate": dead / rows_in if rows_in else 0.0}
