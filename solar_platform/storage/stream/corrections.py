"""The exact path: late, re-sent and changed readings, kept against `panelData` as it is.

Only readings that are new or differ from `panelData` count (`detect_changes`), so a reading sent
again changes nothing. A new reading adds its energy segments and splits the one it lands in; a
changed one replaces its two. Old segments are read before the upsert, new ones from the same
neighbours and the batch's own changes; the bucket deltas are their difference. Windows the
changes touch are recomputed from `panelData` (`storage.windows`).

Runs after the batch's appends in the same transaction (`stream.commit`): neighbours are then
whatever `panelData` holds, appends included, so a correction next to an append is exact too.

Neighbour look-ups are bounded by the max gap: a neighbour further away bounds no credited
segment, and the bound keeps each seek inside one or two day partitions. Joins from the scratch
tables to the big ones are `STRAIGHT_JOIN`s, scratch first: their statistics are always stale, and
a plan that drives from panelData turns a batch of thousands of one panel's readings into a
quadratic scan (measured: 42 s -> 0.8 s for 16k rows).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import Connection, text

from solar_platform.storage.db import FLEET_BUCKETS, PANEL_BUCKETS, PANEL_LATEST, WINDOWS
from solar_platform.storage.energy import BUCKET_SECONDS, NO_READINGS, floor_to, gap_us, pieces_select
from solar_platform.storage.stream import bulk
from solar_platform.storage.stream.readings import Readings
from solar_platform.storage.windows import COLUMNS as WINDOW_COLUMNS
from solar_platform.storage.windows import WINDOW_SECONDS, recompute_windows_select

_BUCKET_UPSERT = f"""
    INSERT INTO {PANEL_BUCKETS} (panel_id, bucket_start, energy_wh, covered_seconds, readings, readings_on, peak_w,
                                 min_w)
    SELECT panel_id, bucket_start, energy_wh, covered_seconds, readings, readings_on, peak_w, min_w
    FROM tmp_bucket_delta
    ON DUPLICATE KEY UPDATE
        {PANEL_BUCKETS}.energy_wh = {PANEL_BUCKETS}.energy_wh + VALUES(energy_wh),
        {PANEL_BUCKETS}.covered_seconds = {PANEL_BUCKETS}.covered_seconds + VALUES(covered_seconds),
        {PANEL_BUCKETS}.readings = {PANEL_BUCKETS}.readings + VALUES(readings),
        {PANEL_BUCKETS}.readings_on = {PANEL_BUCKETS}.readings_on + VALUES(readings_on),
        {PANEL_BUCKETS}.peak_w = COALESCE(GREATEST({PANEL_BUCKETS}.peak_w, VALUES(peak_w)),
                                          {PANEL_BUCKETS}.peak_w, VALUES(peak_w)),
        {PANEL_BUCKETS}.min_w = COALESCE(LEAST({PANEL_BUCKETS}.min_w, VALUES(min_w)),
                                         {PANEL_BUCKETS}.min_w, VALUES(min_w))"""

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
    """CREATE TEMPORARY TABLE IF NOT EXISTS tmp_touched_windows (
        panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        window_start DATETIME(3) NOT NULL,
        PRIMARY KEY (panel_id, window_start)) ENGINE=InnoDB""",
    """CREATE TEMPORARY TABLE IF NOT EXISTS tmp_bucket_delta (
        panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        bucket_start DATETIME NOT NULL,
        energy_wh DOUBLE NOT NULL, covered_seconds DOUBLE NOT NULL,
        readings INT NOT NULL, readings_on INT NOT NULL, peak_w DOUBLE NULL, min_w DOUBLE NULL,
        changed_existing TINYINT NOT NULL,
        PRIMARY KEY (panel_id, bucket_start)) ENGINE=InnoDB""",
)


def _neighbour_update(max_gap_s: float) -> list[str]:
    """Fill prev_time / next_time of every change from panelData as it is now (bounded seeks).

    - An append (newer than the panel's `panel_latest.last_seen`, which equals its newest reading
      here: the waiting summaries are written before the exact path runs) has that reading as its
      only neighbour: one key lookup on a small table.
    - Others (late, re-sent, or a panel without a latest row) seek panelData with a join whose panel
      condition is a closed range: MariaDB then plans "range checked for each record" and reads the
      few rows within the gap on the (panel, time) key. An equality (or a correlated subquery)
      plans `ref` on the panel alone, reading the panel's whole history per reading. STRAIGHT_JOIN
      keeps the changes outside, whatever stale statistics say.
    """
    gap = gap_us(max_gap_s)
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
    gap = gap_us(max_gap_s)
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
    gap = gap_us(max_gap_s)
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


def _window_recompute() -> list[str]:
    """The windows the changes touched, recomputed from panelData (at most 6 readings each at 5 s):
    every summary column stays a function of the window's readings, extremes and first/last too."""
    source = (f"tmp_touched_windows t STRAIGHT_JOIN panelData d ON d.Panel_id >= t.panel_id "
              f"AND d.Panel_id <= t.panel_id AND d.time_data >= t.window_start "
              f"AND d.time_data < TIMESTAMPADD(SECOND, {WINDOW_SECONDS}, t.window_start)")
    return [
        f"""INSERT IGNORE INTO tmp_touched_windows (panel_id, window_start)
            SELECT panel_id, {floor_to("time_data", WINDOW_SECONDS)} FROM tmp_changes""",
        f"REPLACE INTO {WINDOWS} ({', '.join(WINDOW_COLUMNS)}) {recompute_windows_select(source, '1 = 1')}",
    ]


def _bucket_delta_insert(max_gap_s: float) -> str:
    bucket = floor_to("time_data", BUCKET_SECONDS)
    return f"""
        INSERT INTO tmp_bucket_delta
        SELECT panel_id, bucket_start, SUM(energy_wh), SUM(covered_seconds), SUM(readings), SUM(readings_on),
               MAX(peak_w), MIN(min_w), MAX(changed_existing)
        FROM (
            {pieces_select('tmp_segments', max_gap_s, NO_READINGS + ", 0 AS changed_existing")}
          UNION ALL
            SELECT panel_id, {bucket}, 0, 0, old_power IS NULL, current_status - COALESCE(old_status, 0),
                   IF(old_power IS NULL, power_panel, NULL), IF(old_power IS NULL, power_panel, NULL),
                   old_power IS NOT NULL
            FROM tmp_changes
        ) parts GROUP BY panel_id, bucket_start"""


def _peak_refresh() -> str:
    """A changed reading may have been a bucket's peak or minimum: re-read both for those buckets (a
    join with a closed panel range, for a per-row range read; see `_neighbour_update`)."""
    return f"""
        UPDATE (
            SELECT STRAIGHT_JOIN t.panel_id, t.bucket_start, MAX(d.power_panel) AS peak_w,
                   MIN(d.power_panel) AS min_w
            FROM tmp_bucket_delta t JOIN panelData d
              ON d.Panel_id >= t.panel_id AND d.Panel_id <= t.panel_id AND d.time_data >= t.bucket_start
             AND d.time_data < TIMESTAMPADD(SECOND, {BUCKET_SECONDS}, t.bucket_start)
            WHERE t.changed_existing = 1 GROUP BY t.panel_id, t.bucket_start
        ) p STRAIGHT_JOIN {PANEL_BUCKETS} e ON e.panel_id = p.panel_id AND e.bucket_start = p.bucket_start
        SET e.peak_w = p.peak_w, e.min_w = p.min_w"""


_RECEIVED = """CREATE TEMPORARY TABLE IF NOT EXISTS tmp_received (
    Panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    power_panel DOUBLE NOT NULL, current_status TINYINT NOT NULL, time_data DATETIME(3) NOT NULL) ENGINE=InnoDB"""


def apply_corrections(conn: Connection, readings: Readings, max_gap_s: float,
                      timings: dict[str, float] | None = None) -> int:
    """Upsert `readings` into panelData with every derived table kept exactly in step, in the
    caller's transaction. Returns how many were new or changed (the rest were already stored).
    `timings` receives seconds per step."""

    def step(name: str, statements: Sequence[str]) -> None:
        started = time.perf_counter()
        for statement in statements:
            conn.execute(text(statement))
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - started

    if not len(readings):
        return 0
    step("prepare", [
        _RECEIVED, *_TEMP_TABLES,
        *(f"DELETE FROM {scratch}" for scratch in ("tmp_received", "tmp_changes", "tmp_neighbours", "tmp_segments",
                                                    "tmp_touched_windows", "tmp_bucket_delta"))])
    started = time.perf_counter()
    bulk.load(conn, "tmp_received", [
        bulk.Column("Panel_id", readings.ids()), bulk.Column("power_panel", readings.power),
        bulk.Column("current_status", readings.status), bulk.Column("time_data", readings.time_us, "time_us")])
    if timings is not None:
        timings["prepare"] += time.perf_counter() - started
    step("detect_changes", ["""
        INSERT INTO tmp_changes (panel_id, time_data, power_panel, current_status, old_power, old_status)
        SELECT STRAIGHT_JOIN s.Panel_id, s.time_data, s.power_panel, s.current_status, d.power_panel,
               d.current_status
        FROM tmp_received s LEFT JOIN panelData d ON d.Panel_id = s.Panel_id AND d.time_data = s.time_data
        WHERE d.Panel_id IS NULL OR d.power_panel <> s.power_panel OR d.current_status <> s.current_status"""])
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
    step("windows", _window_recompute())
    step("energy", [_bucket_delta_insert(max_gap_s), _BUCKET_UPSERT, _FLEET_UPSERT, _peak_refresh()])
    step("latest", [_LATEST_UPSERT])
    return changed


def changed_panels(conn: Connection) -> list[str]:
    """The panels the last `apply_corrections` changed (its scratch table lives until the next call)."""
    return [panel for (panel,) in conn.execute(text("SELECT DISTINCT panel_id FROM tmp_changes"))]
