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
  its two. Old segments are read before the upsert, new ones after; the bucket deltas are their
  difference, so a replay (nothing changed) adds nothing. Touched windows are recomputed from
  `panelData` (at most 6 rows each at 5 s).
- **`recompute_*`**, the same figures straight from `panelData` over a range: `solar-platform
  rebuild`, the checks and the tests' invariant.

Neighbour look-ups are bounded by the max gap: a neighbour further away bounds no credited
segment, and the bound keeps each seek inside one or two day partitions.

All SQL runs on a connection whose session zone is UTC (`storage.db`); epoch seconds are
computed with `TIMESTAMPDIFF`, which does not depend on the session zone anyway.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, text

BUCKET_SECONDS = 900
WINDOW_SECONDS = 30

PANEL_BUCKETS = "panel_energy_15min"
FLEET_BUCKETS = "fleet_energy_15min"
PANEL_LATEST = "panel_latest"
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


def window_start_s(time_s: float, window_s: int = WINDOW_SECONDS) -> float:
    """The seed's tumbling window holding `time_s`: aligned to the epoch, `[start, start + 30 s)`."""
    return math.floor(time_s / window_s) * window_s


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

# Later assignments see earlier ones (MariaDB evaluates them left to right): last_seen goes last.
_L = PANEL_LATEST
_LATEST_UPSERT = f"""
    INSERT INTO {_L} (panel_id, first_seen, last_seen, power_panel, current_status)
    SELECT c.panel_id, c.first_time, c.last_time, d.power_panel, d.current_status
    FROM ({{changes}}) c JOIN panelData d ON d.Panel_id = c.panel_id AND d.time_data = c.last_time
    ON DUPLICATE KEY UPDATE
        {_L}.first_seen = LEAST({_L}.first_seen, VALUES(first_seen)),
        {_L}.power_panel = IF(VALUES(last_seen) >= {_L}.last_seen, VALUES(power_panel), {_L}.power_panel),
        {_L}.current_status = IF(VALUES(last_seen) >= {_L}.last_seen, VALUES(current_status), {_L}.current_status),
        {_L}.last_seen = GREATEST({_L}.last_seen, VALUES(last_seen))"""

_WINDOW_UPSERT_TAIL = """
    ON DUPLICATE KEY UPDATE panelDataAgg.total_power = VALUES(total_power),
        panelDataAgg.window_end = VALUES(window_end), panelDataAgg.reading_count = VALUES(reading_count)"""


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
        PRIMARY KEY (panel_id, time_data)) ENGINE=InnoDB""",
    # Segments leaving (-1, before the upsert) and arriving (+1, after it); a segment is named by
    # its start, so two changes that see the same segment count it once.
    """CREATE TEMPORARY TABLE IF NOT EXISTS tmp_segments (
        sign TINYINT NOT NULL,
        panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        t0 DATETIME(3) NOT NULL, p0 DOUBLE NOT NULL, t1 DATETIME(3) NOT NULL, p1 DOUBLE NOT NULL,
        PRIMARY KEY (sign, panel_id, t0)) ENGINE=InnoDB""",
    """CREATE TEMPORARY TABLE IF NOT EXISTS tmp_bucket_delta (
        panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        bucket_start DATETIME NOT NULL,
        energy_wh DOUBLE NOT NULL, covered_seconds DOUBLE NOT NULL,
        readings INT NOT NULL, readings_on INT NOT NULL, peak_w DOUBLE NULL,
        changed_existing TINYINT NOT NULL,
        PRIMARY KEY (panel_id, bucket_start)) ENGINE=InnoDB""",
)


def _neighbour_update(max_gap_s: float) -> str:
    """Fill prev_time / next_time of every change from panelData as it is now (bounded seeks)."""
    gap = _gap_us(max_gap_s)
    return f"""
        UPDATE tmp_changes c SET
          prev_time = (SELECT MAX(d.time_data) FROM panelData d WHERE d.Panel_id = c.panel_id
                       AND d.time_data < c.time_data
                       AND d.time_data >= TIMESTAMPADD(MICROSECOND, -{gap}, c.time_data)),
          next_time = (SELECT MIN(d.time_data) FROM panelData d WHERE d.Panel_id = c.panel_id
                       AND d.time_data > c.time_data
                       AND d.time_data <= TIMESTAMPADD(MICROSECOND, {gap}, c.time_data))"""


def _segment_inserts(sign: int, max_gap_s: float) -> list[str]:
    """Segments next to each change. Before the upsert (sign -1): a changed reading's two
    segments with its old value, and for a new reading the one it will split. After (+1): each
    change's two segments with the values panelData now holds."""
    gap = _gap_us(max_gap_s)
    value = "c.old_power" if sign < 0 else "c.power_panel"
    existed = "AND c.old_power IS NOT NULL" if sign < 0 else ""
    statements = [
        f"""INSERT IGNORE INTO tmp_segments (sign, panel_id, t0, p0, t1, p1)
            SELECT {sign}, c.panel_id, c.prev_time, a.power_panel, c.time_data, {value}
            FROM tmp_changes c JOIN panelData a ON a.Panel_id = c.panel_id AND a.time_data = c.prev_time
            WHERE c.prev_time IS NOT NULL {existed}""",
        f"""INSERT IGNORE INTO tmp_segments (sign, panel_id, t0, p0, t1, p1)
            SELECT {sign}, c.panel_id, c.time_data, {value}, c.next_time, b.power_panel
            FROM tmp_changes c JOIN panelData b ON b.Panel_id = c.panel_id AND b.time_data = c.next_time
            WHERE c.next_time IS NOT NULL {existed}""",
    ]
    if sign < 0:
        statements.append(f"""
            INSERT IGNORE INTO tmp_segments (sign, panel_id, t0, p0, t1, p1)
            SELECT -1, c.panel_id, c.prev_time, a.power_panel, c.next_time, b.power_panel
            FROM tmp_changes c
            JOIN panelData a ON a.Panel_id = c.panel_id AND a.time_data = c.prev_time
            JOIN panelData b ON b.Panel_id = c.panel_id AND b.time_data = c.next_time
            WHERE c.old_power IS NULL AND TIMESTAMPDIFF(MICROSECOND, c.prev_time, c.next_time) <= {gap}""")
    return statements


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
    """A changed reading may have been a bucket's peak: re-read the peak of those buckets."""
    return f"""
        UPDATE {PANEL_BUCKETS} e JOIN tmp_bucket_delta t
          ON t.panel_id = e.panel_id AND t.bucket_start = e.bucket_start AND t.changed_existing = 1
        SET e.peak_w = (SELECT MAX(d.power_panel) FROM panelData d WHERE d.Panel_id = e.panel_id
                        AND d.time_data >= e.bucket_start
                        AND d.time_data < TIMESTAMPADD(SECOND, {BUCKET_SECONDS}, e.bucket_start))"""


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

    step("prepare", [*_TEMP_TABLES, "DELETE FROM tmp_changes", "DELETE FROM tmp_segments",
                     "DELETE FROM tmp_bucket_delta"])
    step("detect_changes", [f"""
        INSERT INTO tmp_changes (panel_id, time_data, power_panel, current_status, old_power, old_status)
        SELECT s.Panel_id, s.time_data, s.power_panel, s.current_status, d.power_panel, d.current_status
        FROM `{stage}` s LEFT JOIN panelData d ON d.Panel_id = s.Panel_id AND d.time_data = s.time_data
        WHERE s.job_id = :job AND (d.Panel_id IS NULL OR d.power_panel <> s.power_panel
                                   OR d.current_status <> s.current_status)"""], {"job": job_id})
    changed = int(conn.execute(text("SELECT COUNT(*) FROM tmp_changes")).scalar() or 0)
    if not changed:
        return 0
    step("segments_before", [_neighbour_update(max_gap_s), *_segment_inserts(-1, max_gap_s)])
    step("upsert", ["""
        INSERT INTO panelData (Panel_id, power_panel, current_status, time_data)
        SELECT panel_id, power_panel, current_status, time_data FROM tmp_changes
        ON DUPLICATE KEY UPDATE panelData.power_panel = VALUES(power_panel),
                                panelData.current_status = VALUES(current_status)"""])
    step("segments_after", [_neighbour_update(max_gap_s), *_segment_inserts(1, max_gap_s)])
    step("windows", [
        "INSERT INTO panelDataAgg (Panel_id, total_power, window_start, window_end, reading_count) "
        + _window_select(
            f"d.time_data >= w.ws AND d.time_data < TIMESTAMPADD(SECOND, {WINDOW_SECONDS}, w.ws)",
            join=f"JOIN (SELECT DISTINCT panel_id, {_floor_to('time_data', WINDOW_SECONDS)} AS ws FROM tmp_changes) w "
                 "ON d.Panel_id = w.panel_id")
        + _WINDOW_UPSERT_TAIL])
    step("energy", [_bucket_delta_insert(max_gap_s), _BUCKET_UPSERT, _FLEET_UPSERT, _peak_refresh()])
    step("latest", [_LATEST_UPSERT.format(changes=(
        "SELECT panel_id, MIN(time_data) AS first_time, MAX(time_data) AS last_time FROM tmp_changes "
        "GROUP BY panel_id"))])
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
        from sqlalchemy import bindparam

        statement = statement.bindparams(bindparam("ids", expanding=True))
    return int(conn.execute(statement, params).rowcount)
