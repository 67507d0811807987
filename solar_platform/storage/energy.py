"""The energy model and the derived tables the stream keeps, defined once.

**Energy** of a panel is the trapezoid between consecutive readings, `(P0 + P1) / 2 x (t1 - t0)`,
only across gaps no longer than `settings.energy_max_gap_seconds`: a longer gap is no data, and
`covered_seconds` says how much of a bucket the credited segments cover. A segment that crosses a
15-minute bucket edge is cut exactly there (the power at the edge is the straight line between the
two readings), so quarter-hours add up to hours, days, months and years in any time zone (every
real zone's offset is a multiple of 15 minutes).

Derived tables, each a function of `panelData` alone:

- `panelDataAgg`: per (panel, 30-s window), the mean and count of its readings;
- `panel_energy_15min` / `fleet_energy_15min`: energy, coverage, reading counts, peak per bucket;
- `panel_latest`: each panel's newest reading and first/last time seen.

Two ways to the same rows:

- **`apply_batch`**, the stream's upkeep, in the same transaction as the raw upsert and in
  proportion to what arrived: only staged readings that are new or changed against `panelData`
  count. A new reading adds its segments and splits the one it lands in; a changed one replaces
  its two. Old segments are read before the upsert, new ones from the same neighbours and the
  batch's own changes; the bucket deltas are their difference, so a replay (nothing changed) adds
  nothing. A window is kept from its sum: a new reading adds its power and one to the count, a
  changed one the difference (`mean x count` is the sum), so no window re-reads panelData.
- **`recompute_*`**, the same figures straight from `panelData` over a range: `solar-platform
  rebuild`, the checks and the tests' invariant.

Neighbour look-ups are bounded by the max gap: a neighbour further away bounds no credited
segment, and the bound keeps each seek inside one or two day partitions.

Joins from a batch's scratch tables to the big tables are `STRAIGHT_JOIN`s, batch first: the
scratch tables' statistics are always stale, and a plan that drives from panelData turns a batch
of thousands of one panel's readings into a quadratic scan (measured: 42 s -> 0.8 s for 16k rows).

All SQL runs on a connection whose session zone is UTC (`storage.db`); epoch seconds are
computed with `TIMESTAMPDIFF`, which does not depend on the session zone anyway.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, bindparam, text

from solar_platform.storage.db import FLEET_BUCKETS, PANEL_BUCKETS, PANEL_LATEST

BUCKET_SECONDS = 900
WINDOW_SECONDS = 30

_EPOCH = "TIMESTAMP'1970-01-01 00:00:00'"  # a DATETIME literal: TIMESTAMPADD then returns DATETIME, not text


# ------------------------------------------------------------------------------ pure model
def trapezoid_buckets(times_s: npt.ArrayLike, power_w: npt.ArrayLike, max_gap_s: float,
                      bucket_s: int = BUCKET_SECONDS) -> dict[int, tuple[float, float]]:
    """One panel's readings (any order, unique times) -> `{bucket start epoch s: (Wh, covered s)}`.

    The reference implementation of the model, in numpy; the SQL below must agree with it.
    Buckets that only hold readings but no credited segment are absent.
    """
    times = np.asarray(times_s, dtype=np.float64)
    power = np.asarray(power_w, dtype=np.float64)
    order = np.argsort(times, kind="stable")
    times, power = times[order], power[order]
    result: dict[int, list[float]] = {}
    for t0, p0, t1, p1 in zip(times[:-1], power[:-1], times[1:], power[1:], strict=True):
        if t1 - t0 > max_gap_s + 1e-9:
            continue
        edge = math.floor(t0 / bucket_s) * bucket_s
        while edge < t1:
            a, b = max(t0, edge), min(t1, edge + bucket_s)
            if b > a:
                pa = p0 + (p1 - p0) * (a - t0) / (t1 - t0)
                pb = p0 + (p1 - p0) * (b - t0) / (t1 - t0)
                slot = result.setdefault(int(edge), [0.0, 0.0])
                slot[0] += (pa + pb) / 2.0 * (b - a) / 3600.0
                slot[1] += b - a
            edge += bucket_s
    return {bucket: (energy, covered) for bucket, (energy, covered) in result.items()}


# ------------------------------------------------------------------------------ SQL pieces
def _epoch_s(column: str) -> str:
    """Epoch seconds (DOUBLE, microsecond exact) of a DATETIME(3) expression."""
    return f"(TIMESTAMPDIFF(MICROSECOND, {_EPOCH}, {column}) / 1e6)"


def _floor_to(column: str, seconds: int) -> str:
    """The DATETIME that starts the `seconds`-aligned slot holding `column` (epoch-aligned)."""
    return (f"TIMESTAMPADD(SECOND, FLOOR(TIMESTAMPDIFF(MICROSECOND, {_EPOCH}, {column}) / {seconds * 1_000_000}) "
            f"* {seconds}, {_EPOCH})")


def _gap_us(max_gap_s: float) -> int:
    return int(round(max_gap_s * 1_000_000))


def _pieces_select(segments: str, max_gap_s: float, extra_columns: str) -> str:
    """Each segment of `segments` (panel_id, t0, p0, t1, p1, sign) cut at bucket edges.

    Columns: panel_id, bucket_start, energy_wh, covered_seconds, then `extra_columns`. A segment spans at most
    `ceil(max_gap / 900) + 1` buckets, which MariaDB's sequence engine enumerates.
    """
    spans = math.ceil(max_gap_s / BUCKET_SECONDS) + 1
    x0, x1 = _epoch_s("s.t0"), _epoch_s("s.t1")
    first_edge = f"FLOOR({x0} / {BUCKET_SECONDS}) * {BUCKET_SECONDS}"
    return f"""
        SELECT panel_id, TIMESTAMPADD(SECOND, edge, {_EPOCH}) AS bucket_start,
               sign * (p0 + (p1 - p0) * (xa - x0) / (x1 - x0) + p0 + (p1 - p0) * (xb - x0) / (x1 - x0))
                      / 2 * (xb - xa) / 3600 AS energy_wh,
               sign * (xb - xa) AS covered_seconds, {extra_columns}
        FROM (
            SELECT s.panel_id, s.p0, s.p1, {x0} AS x0, {x1} AS x1, s.sign,
                   {first_edge} + q.seq * {BUCKET_SECONDS} AS edge,
                   GREATEST({x0}, {first_edge} + q.seq * {BUCKET_SECONDS}) AS xa,
                   LEAST({x1}, {first_edge} + (q.seq + 1) * {BUCKET_SECONDS}) AS xb
            FROM {segments} s JOIN seq_0_to_{spans} q ON {first_edge} + q.seq * {BUCKET_SECONDS} < {x1}
        ) cut
        WHERE xb > xa"""


_BUCKET_UPSERT = f"""
    INSERT INTO {PANEL_BUCKETS} (panel_id, bucket_start, energy_wh, covered_seconds, readings, readings_on, peak_w)
    SELECT panel_id, bucket_start, energy_wh, covered_seconds, readings, readings_on, peak_w FROM tmp_bucket_delta
    ON DUPLICATE KEY UPDATE
        {PANEL_BUCKETS}.energy_wh = {PANEL_BUCKETS}.energy_wh + VALUES(energy_wh),
        {PANEL_BUCKETS}.covered_seconds = {PANEL_BUCKETS}.covered_seconds + VALUES(covered_seconds),
        {PANEL_BUCKETS}.readings = {PANEL_BUCKETS}.readings + VALUES(readings),
        {PANEL_BUCKETS}.readings_on = {PANEL_BUCKETS}.readings_on + VALUES(readings_on),
        {PANEL_BUCKETS}.peak_w = COALESCE(GREATEST({PANEL_BUCKETS}.peak_w, VALUES(peak_w)),
                                          {PANEL_BUCKETS}.peak_w, VALUES(peak_w))"""

_FLEET_UPSERT = f"""
    INSERT INTO {FLEET_BUCKETS} (bucket_start, energy_wh, covered_seconds, readings, readings_on)
    SELECT bucket_start, SUM(energy_wh), SUM(covered_seconds), SUM(readings), SUM(readings_on)
    FROM tmp_bucket_delta GROUP BY bucket_start
    ON DUPLICATE KEY UPDATE
        {FLEET_BUCKETS}.energy_wh = {FLEET_BUCKETS}.energy_wh + VALUES(energy_wh),
        {FLEET_BUCKETS}.covered_seconds = {FLEET_BUCKETS}.covered_seconds + VALUES(covered_seconds),
        {FLEET_BUCKETS}.readings = {FLEET_BUCKETS}.readings + VALUES(readings),
        {FLEET_BUCKETS}.readings_on = {FLEET_BUCKETS}.readings_on + VALUES(readings_on)"""

# Each panel's newest change: the batch's first and newest time per panel (GROUP BY), the newest's
# values by key from panelData (already upserted). A MIN() OVER (PARTITION BY ...) instead runs in
# quadratic time in MariaDB for a panel with thousands of readings in one batch (a backlog).
# Later assignments see earlier ones (MariaDB evaluates them left to right): last_seen goes last.
_L = PANEL_LATEST
_LATEST_UPSERT = f"""
    INSERT INTO {_L} (panel_id, first_seen, last_seen, power_panel, current_status)
    SELECT c.panel_id, c.first_time, c.last_time, d.power_panel, d.current_status
    FROM (SELECT panel_id, MIN(time_data) AS first_time, MAX(time_data) AS last_time FROM tmp_changes
          GROUP BY panel_id) c
    STRAIGHT_JOIN panelData d ON d.Panel_id = c.panel_id AND d.time_data = c.last_time
    ON DUPLICATE KEY UPDATE
        {_L}.first_seen = LEAST({_L}.first_seen, VALUES(first_seen)),
        {_L}.power_panel = IF(VALUES(last_seen) >= {_L}.last_seen, VALUES(power_panel), {_L}.power_panel),
        {_L}.current_status = IF(VALUES(last_seen) >= {_L}.last_seen, VALUES(current_status), {_L}.current_status),
        {_L}.last_seen = GREATEST({_L}.last_seen, VALUES(last_seen))"""

def _window_select(where: str, join: str = "") -> str:
    start = _floor_to("d.time_data", WINDOW_SECONDS)
    return (f"SELECT d.Panel_id, AVG(d.power_panel), {start} AS ws, "
            f"TIMESTAMPADD(SECOND, {WINDOW_SECONDS}, {start}), COUNT(*) "
            f"FROM panelData d {join} WHERE {where} GROUP BY d.Panel_id, ws")


# ------------------------------------------------------------------------------ the stream's upkeep
_TEMP_TABLES = (
    # Staged readings that are new or differ from panelData, with their old values and neighbours.
    """CREATE TEMPORARY TABLE IF NOT EXISTS tmp_changes (
        panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        time_data DATETIME(3) NOT NULL,
        power_panel DOUBLE NOT NULL, current_status TINYINT NOT NULL,
        old_power DOUBLE NULL, old_status TINYINT NULL,
        prev_time DATETIME(3) NULL, next_time DATETIME(3) NULL,
        appended TINYINT NOT NULL DEFAULT 0,  -- newer than everything stored for the panel
        PRIMARY KEY (panel_id, time_data)) ENGINE=InnoDB""",
    # Segments leaving (-1, before the upsert) and arriving (+1, after it); a segment is named by
    # its start, so two changes that see the same segment count it once.
    """CREATE TEMPORARY TABLE IF NOT EXISTS tmp_neighbours (
        panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        time_data DATETIME(3) NOT NULL,
        prev_time DATETIME(3) NULL, next_time DATETIME(3) NULL,
        PRIMARY KEY (panel_id, time_data)) ENGINE=InnoDB""",
    """CREATE TEMPORARY TABLE IF NOT EXISTS tmp_segments (
        sign TINYINT NOT NULL,
        panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        t0 DATETIME(3) NOT NULL, p0 DOUBLE NOT NULL, t1 DATETIME(3) NOT NULL, p1 DOUBLE NOT NULL,
        PRIMARY KEY (sign, panel_id, t0)) ENGINE=InnoDB""",
    """CREATE TEMPORARY TABLE IF NOT EXISTS tmp_window_delta (
        panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        window_start DATETIME NOT NULL,
        power_sum DOUBLE NOT NULL, readings INT NOT NULL,
        PRIMARY KEY (panel_id, window_start)) ENGINE=InnoDB""",
    """CREATE TEMPORARY TABLE IF NOT EXISTS tmp_bucket_delta (
        panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        bucket_start DATETIME NOT NULL,
        energy_wh DOUBLE NOT NULL, covered_seconds DOUBLE NOT NULL,
        readings INT NOT NULL, readings_on INT NOT NULL, peak_w DOUBLE NULL,
        changed_existing TINYINT NOT NULL,
        PRIMARY KEY (panel_id, bucket_start)) ENGINE=InnoDB""",
)


def _neighbour_update(max_gap_s: float) -> list[str]:
    """Fill prev_time / next_time of every change from panelData as it is now (bounded seeks).

    - An append (newer than the panel's `panel_latest.last_seen`, which the same transactions
      keep equal to its newest reading) has that reading as its only neighbour: one key lookup on
      a small table, the live path.
    - Others (late, re-sent, or a panel without a latest row) seek panelData with a join whose panel
      condition is a closed range: MariaDB then plans "range checked for each record" and reads the
      few rows within the gap on the (panel, time) key. An equality (or a correlated subquery)
      plans `ref` on the panel alone, reading the panel's whole history per reading. STRAIGHT_JOIN
      keeps the changes outside, whatever stale statistics say.
    """
    gap = _gap_us(max_gap_s)
    same_panel = "d.Panel_id >= c.panel_id AND d.Panel_id <= c.panel_id"
    return [
        f"""UPDATE tmp_changes c STRAIGHT_JOIN {PANEL_LATEST} l ON l.panel_id = c.panel_id
            SET c.appended = 1,
                c.prev_time = IF(TIMESTAMPDIFF(MICROSECOND, l.last_seen, c.time_data) <= {gap}, l.last_seen, NULL)
            WHERE c.time_data > l.last_seen""",
        f"""INSERT INTO tmp_neighbours (panel_id, time_data, prev_time)
            SELECT STRAIGHT_JOIN c.panel_id, c.time_data, MAX(d.time_data) FROM tmp_changes c JOIN panelData d
              ON {same_panel} AND d.time_data < c.time_data
             AND d.time_data >= TIMESTAMPADD(MICROSECOND, -{gap}, c.time_data)
            WHERE c.appended = 0 GROUP BY c.panel_id, c.time_data""",
        f"""INSERT INTO tmp_neighbours (panel_id, time_data, next_time)
            SELECT STRAIGHT_JOIN c.panel_id, c.time_data, MIN(d.time_data) FROM tmp_changes c JOIN panelData d
              ON {same_panel} AND d.time_data > c.time_data
             AND d.time_data <= TIMESTAMPADD(MICROSECOND, {gap}, c.time_data)
            WHERE c.appended = 0 GROUP BY c.panel_id, c.time_data
            ON DUPLICATE KEY UPDATE tmp_neighbours.next_time = VALUES(next_time)""",
        """UPDATE tmp_changes c STRAIGHT_JOIN tmp_neighbours n ON n.panel_id = c.panel_id AND n.time_data = c.time_data
            SET c.prev_time = n.prev_time, c.next_time = n.next_time""",
    ]


def _segments_before(max_gap_s: float) -> list[str]:
    """Segments that leave with this batch, from panelData before the upsert: a changed reading's two
    segments with its old value, and for a new reading the one it splits."""
    gap = _gap_us(max_gap_s)
    return [
        """INSERT IGNORE INTO tmp_segments (sign, panel_id, t0, p0, t1, p1)
            SELECT -1, c.panel_id, c.prev_time, a.power_panel, c.time_data, c.old_power
            FROM tmp_changes c STRAIGHT_JOIN panelData a ON a.Panel_id = c.panel_id AND a.time_data = c.prev_time
            WHERE c.prev_time IS NOT NULL AND c.old_power IS NOT NULL""",
        """INSERT IGNORE INTO tmp_segments (sign, panel_id, t0, p0, t1, p1)
            SELECT -1, c.panel_id, c.time_data, c.old_power, c.next_time, b.power_panel
            FROM tmp_changes c STRAIGHT_JOIN panelData b ON b.Panel_id = c.panel_id AND b.time_data = c.next_time
            WHERE c.next_time IS NOT NULL AND c.old_power IS NOT NULL""",
        f"""INSERT IGNORE INTO tmp_segments (sign, panel_id, t0, p0, t1, p1)
            SELECT -1, c.panel_id, c.prev_time, a.power_panel, c.next_time, b.power_panel
            FROM tmp_changes c
            STRAIGHT_JOIN panelData a ON a.Panel_id = c.panel_id AND a.time_data = c.prev_time
            STRAIGHT_JOIN panelData b ON b.Panel_id = c.panel_id AND b.time_data = c.next_time
            WHERE c.old_power IS NULL AND TIMESTAMPDIFF(MICROSECOND, c.prev_time, c.next_time) <= {gap}""",
    ]


def _segments_after(max_gap_s: float) -> list[str]:
    """Segments that arrive with this batch, after the upsert, without a second seek pass.

    A change's new neighbour is the nearer of its old neighbour (within the gap) and the nearest
    other change of the batch (LAG/LEAD over the changes). Each change emits the segment that ends
    at it, and the one that starts at it only when the next point is not a change too (that change
    emits it), so every new segment appears once.
    """
    gap = _gap_us(max_gap_s)
    near = f"TIMESTAMPDIFF(MICROSECOND, {{a}}, {{b}}) <= {gap}"
    prev_change_wins = ("n.prev_change IS NOT NULL AND " + near.format(a="n.prev_change", b="n.time_data")
                        + " AND (n.prev_time IS NULL OR n.prev_change >= n.prev_time)")
    next_change_wins = ("n.next_change IS NOT NULL AND " + near.format(a="n.time_data", b="n.next_change")
                        + " AND (n.next_time IS NULL OR n.next_change <= n.next_time)")
    with_changes = """(
        SELECT panel_id, time_data, power_panel, prev_time, next_time,
               LAG(time_data) OVER w AS prev_change, LAG(power_panel) OVER w AS prev_change_power,
               LEAD(time_data) OVER w AS next_change
        FROM tmp_changes WINDOW w AS (PARTITION BY panel_id ORDER BY time_data)) n"""
    return [
        f"""INSERT IGNORE INTO tmp_segments (sign, panel_id, t0, p0, t1, p1)
            SELECT 1, n.panel_id, n.prev_change, n.prev_change_power, n.time_data, n.power_panel
            FROM {with_changes} WHERE {prev_change_wins}""",
        f"""INSERT IGNORE INTO tmp_segments (sign, panel_id, t0, p0, t1, p1)
            SELECT 1, n.panel_id, n.prev_time, a.power_panel, n.time_data, n.power_panel
            FROM {with_changes} STRAIGHT_JOIN panelData a ON a.Panel_id = n.panel_id AND a.time_data = n.prev_time
            WHERE n.prev_time IS NOT NULL AND NOT ({prev_change_wins})""",
        f"""INSERT IGNORE INTO tmp_segments (sign, panel_id, t0, p0, t1, p1)
            SELECT 1, n.panel_id, n.time_data, n.power_panel, n.next_time, b.power_panel
            FROM {with_changes} STRAIGHT_JOIN panelData b ON b.Panel_id = n.panel_id AND b.time_data = n.next_time
            WHERE n.next_time IS NOT NULL AND NOT ({next_change_wins})""",
    ]


def _window_deltas() -> list[str]:
    """Windows kept from sums: a new reading adds its power and a count, a changed one the difference.

    The stored mean times its count is the window's sum, so the new mean is (sum + delta) / count.
    Equal to AVG over panelData up to rounding (the tests compare within 1e-9 relative).
    """
    start = _floor_to("time_data", WINDOW_SECONDS)
    return [
        f"""INSERT INTO tmp_window_delta (panel_id, window_start, power_sum, readings)
            SELECT panel_id, {start} AS ws, SUM(power_panel - COALESCE(old_power, 0)), SUM(old_power IS NULL)
            FROM tmp_changes GROUP BY panel_id, ws""",
        """UPDATE tmp_window_delta d STRAIGHT_JOIN panelDataAgg a
              ON a.Panel_id = d.panel_id AND a.window_start = d.window_start
            SET a.total_power = (a.total_power * a.reading_count + d.power_sum) / (a.reading_count + d.readings),
                a.reading_count = a.reading_count + d.readings""",
        # Windows not stored yet hold only new readings (readings > 0); stored ones were updated above.
        f"""INSERT IGNORE INTO panelDataAgg (Panel_id, total_power, window_start, window_end, reading_count)
            SELECT panel_id, power_sum / readings, window_start,
                   TIMESTAMPADD(SECOND, {WINDOW_SECONDS}, window_start), readings
            FROM tmp_window_delta WHERE readings > 0""",
    ]


# Segment pieces carry energy and coverage; readings are counted from the readings themselves.
_NO_READINGS = "0 AS readings, 0 AS readings_on, NULL AS peak_w"


def _bucket_delta_insert(max_gap_s: float) -> str:
    bucket = _floor_to("time_data", BUCKET_SECONDS)
    return f"""
        INSERT INTO tmp_bucket_delta
        SELECT panel_id, bucket_start, SUM(energy_wh), SUM(covered_seconds), SUM(readings), SUM(readings_on),
               MAX(peak_w), MAX(changed_existing)
        FROM (
            {_pieces_select('tmp_segments', max_gap_s, _NO_READINGS + ", 0 AS changed_existing")}
          UNION ALL
            SELECT panel_id, {bucket}, 0, 0, old_power IS NULL, current_status - COALESCE(old_status, 0),
                   IF(old_power IS NULL, power_panel, NULL), old_power IS NOT NULL
            FROM tmp_changes
        ) parts GROUP BY panel_id, bucket_start"""


def _peak_refresh() -> str:
    """A changed reading may have been a bucket's peak: re-read the peak of those buckets (a join
    with a closed panel range, for a per-row range read; see `_neighbour_update`)."""
    return f"""
        UPDATE (
            SELECT STRAIGHT_JOIN t.panel_id, t.bucket_start, MAX(d.power_panel) AS peak_w
            FROM tmp_bucket_delta t JOIN panelData d
              ON d.Panel_id >= t.panel_id AND d.Panel_id <= t.panel_id AND d.time_data >= t.bucket_start
             AND d.time_data < TIMESTAMPADD(SECOND, {BUCKET_SECONDS}, t.bucket_start)
            WHERE t.changed_existing = 1 GROUP BY t.panel_id, t.bucket_start
        ) p STRAIGHT_JOIN {PANEL_BUCKETS} e ON e.panel_id = p.panel_id AND e.bucket_start = p.bucket_start
        SET e.peak_w = p.peak_w"""


def apply_batch(conn: Connection, stage: str, job_id: int, max_gap_s: float,
                timings: dict[str, float] | None = None) -> int:
    """Move one job's staged readings into panelData and keep every derived table in step.

    Runs inside the caller's transaction (the raw upsert and its consequences commit together).
    Returns how many staged readings were new or changed. `timings` receives seconds per step.
    """
    import time

    def step(name: str, statements: Sequence[str], params: dict[str, object] | None = None) -> None:
        started = time.perf_counter()
        for statement in statements:
            conn.execute(text(statement), params or {})
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - started

    step("prepare", [
        # GROUP BY and window functions over a batch stay in memory (defaults are 16 MB).
        "SET SESSION tmp_table_size = 536870912, max_heap_table_size = 536870912",
        *_TEMP_TABLES,
        *(f"DELETE FROM {scratch}" for scratch in ("tmp_changes", "tmp_neighbours", "tmp_segments",
                                                    "tmp_window_delta", "tmp_bucket_delta"))])
    step("detect_changes", [f"""
        INSERT INTO tmp_changes (panel_id, time_data, power_panel, current_status, old_power, old_status)
        SELECT s.Panel_id, s.time_data, s.power_panel, s.current_status, d.power_panel, d.current_status
        FROM `{stage}` s LEFT JOIN panelData d ON d.Panel_id = s.Panel_id AND d.time_data = s.time_data
        WHERE s.job_id = :job AND (d.Panel_id IS NULL OR d.power_panel <> s.power_panel
                                   OR d.current_status <> s.current_status)"""], {"job": job_id})
    changed = int(conn.execute(text("SELECT COUNT(*) FROM tmp_changes")).scalar() or 0)
    if not changed:
        return 0
    step("segments_before", [*_neighbour_update(max_gap_s), *_segments_before(max_gap_s)])
    step("upsert", ["""
        INSERT INTO panelData (Panel_id, power_panel, current_status, time_data)
        SELECT panel_id, power_panel, current_status, time_data FROM tmp_changes
        ON DUPLICATE KEY UPDATE panelData.power_panel = VALUES(power_panel),
                                panelData.current_status = VALUES(current_status)"""])
    step("segments_after", _segments_after(max_gap_s))
    step("windows", _window_deltas())
    step("energy", [_bucket_delta_insert(max_gap_s), _BUCKET_UPSERT, _FLEET_UPSERT, _peak_refresh()])
    step("latest", [_LATEST_UPSERT])
    return changed


# ------------------------------------------------------------------------------ recompute from raw
def recompute_windows(conn: Connection, start: datetime, end: datetime) -> int:
    """Rewrite panelDataAgg for windows starting in `[start, end)` (30-s aligned) from panelData."""
    conn.execute(text("DELETE FROM panelDataAgg WHERE window_start >= :a AND window_start < :b"),
                 {"a": start, "b": end})
    return int(conn.execute(text(
        "INSERT INTO panelDataAgg (Panel_id, total_power, window_start, window_end, reading_count) "
        + _window_select("d.time_data >= :a AND d.time_data < :b")), {"a": start, "b": end}).rowcount)


def _raw_segments(max_gap_s: float) -> str:
    """Consecutive readings of each panel around `[:a, :b)` no further apart than the max gap."""
    gap = _gap_us(max_gap_s)
    return f"""(
        SELECT panel_id, t0, p0, t1, p1, 1 AS sign FROM (
            SELECT Panel_id AS panel_id, time_data AS t1, power_panel AS p1,
                   LAG(time_data) OVER w AS t0, LAG(power_panel) OVER w AS p0
            FROM panelData
            WHERE time_data >= TIMESTAMPADD(MICROSECOND, -{gap}, :a)
              AND time_data < TIMESTAMPADD(MICROSECOND, {gap}, :b)
            WINDOW w AS (PARTITION BY Panel_id ORDER BY time_data)
        ) pairs WHERE t0 IS NOT NULL AND TIMESTAMPDIFF(MICROSECOND, t0, t1) <= {gap})"""


def recompute_buckets_select(max_gap_s: float) -> str:
    """Panel bucket rows for buckets in `[:a, :b)` straight from panelData (bind :a, :b)."""
    bucket = _floor_to("time_data", BUCKET_SECONDS)
    return f"""
        SELECT panel_id, bucket_start, SUM(energy_wh) AS energy_wh, SUM(covered_seconds) AS covered_seconds,
               SUM(readings) AS readings, SUM(readings_on) AS readings_on, MAX(peak_w) AS peak_w
        FROM (
            {_pieces_select(_raw_segments(max_gap_s), max_gap_s, _NO_READINGS)}
          UNION ALL
            SELECT Panel_id, {bucket}, 0, 0, 1, current_status = 1, power_panel
            FROM panelData WHERE time_data >= :a AND time_data < :b
        ) parts
        WHERE bucket_start >= :a AND bucket_start < :b
        GROUP BY panel_id, bucket_start"""


def recompute_buckets(conn: Connection, start: datetime, end: datetime, max_gap_s: float) -> int:
    """Rewrite the panel and fleet buckets starting in `[start, end)` (15-min aligned) from panelData."""
    params = {"a": start, "b": end}
    conn.execute(text(f"DELETE FROM {PANEL_BUCKETS} WHERE bucket_start >= :a AND bucket_start < :b"), params)
    conn.execute(text(f"DELETE FROM {FLEET_BUCKETS} WHERE bucket_start >= :a AND bucket_start < :b"), params)
    written = conn.execute(text(
        f"INSERT INTO {PANEL_BUCKETS} (panel_id, bucket_start, energy_wh, covered_seconds, readings, "
        f"readings_on, peak_w) {recompute_buckets_select(max_gap_s)}"), params).rowcount
    conn.execute(text(
        f"INSERT INTO {FLEET_BUCKETS} (bucket_start, energy_wh, covered_seconds, readings, readings_on) "
        f"SELECT bucket_start, SUM(energy_wh), SUM(covered_seconds), SUM(readings), SUM(readings_on) "
        f"FROM {PANEL_BUCKETS} WHERE bucket_start >= :a AND bucket_start < :b GROUP BY bucket_start"), params)
    return int(written)


def recompute_latest(conn: Connection, panel_ids: Sequence[str] | None = None) -> int:
    """Rewrite panel_latest from panelData (all panels, or some); first_seen never moves later.

    Retention drops old raw days, so a stored first_seen earlier than the oldest kept reading stays.
    """
    where = ""
    params: dict[str, object] = {}
    if panel_ids is not None:
        if not panel_ids:
            return 0
        where = "WHERE Panel_id IN :ids"
        params["ids"] = list(panel_ids)
    statement = text(
        f"INSERT INTO {PANEL_LATEST} (panel_id, first_seen, last_seen, power_panel, current_status) "
        "SELECT e.Panel_id, e.first_time, e.last_time, d.power_panel, d.current_status FROM ("
        f"  SELECT Panel_id, MIN(time_data) AS first_time, MAX(time_data) AS last_time FROM panelData {where} "
        "   GROUP BY Panel_id) e "
        "JOIN panelData d ON d.Panel_id = e.Panel_id AND d.time_data = e.last_time "
        f"ON DUPLICATE KEY UPDATE {_L}.first_seen = LEAST({_L}.first_seen, VALUES(first_seen)), "
        f"{_L}.last_seen = VALUES(last_seen), {_L}.power_panel = VALUES(power_panel), "
        f"{_L}.current_status = VALUES(current_status)")
    if panel_ids is not None:
        statement = statement.bindparams(bindparam("ids", expanding=True))
    return int(conn.execute(statement, params).rowcount)
