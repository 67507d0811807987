"""The energy model, defined once: numpy for the stream's appends and the reference, SQL for the
recomputes and the exact path.

**Energy** of a panel is the trapezoid between consecutive readings, `(P0 + P1) / 2 x (t1 - t0)`,
only across gaps no longer than `settings.energy_max_gap_seconds`: a longer gap is no data, and
`covered_seconds` says how much of a bucket the credited segments cover. A segment that crosses a
15-minute bucket edge is cut exactly there (the power at the edge is the straight line between the
two readings), so quarter-hours add up to hours, days, months and years in any time zone (every
real zone's offset is a multiple of 15 minutes).

The stream keeps `panel_energy_15min` / `fleet_energy_15min` (energy, coverage, reading counts and
peak per bucket) and `panel_latest` in each batch's transaction (`storage.stream`: appends in bulk
with `segment_pieces`, corrections exactly with the SQL pieces here). `recompute_*` give the same
figures straight from `panelData` over a range: `solar-platform rebuild`, the checks and the
tests' invariant.

All SQL runs on a connection whose session zone is UTC (`storage.db`); epoch seconds are
computed with `TIMESTAMPDIFF`, which does not depend on the session zone anyway.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, bindparam, text

from solar_platform.storage.db import FLEET_BUCKETS, PANEL_BUCKETS, PANEL_LATEST

BUCKET_SECONDS = 900

_EPOCH = "TIMESTAMP'1970-01-01 00:00:00'"  # a DATETIME literal: TIMESTAMPADD then returns DATETIME, not text


# ------------------------------------------------------------------------------ pure model
@dataclass(frozen=True)
class SegmentPieces:
    """Segments cut at bucket edges: one row per (segment, bucket it overlaps), in input order."""

    segment: npt.NDArray[np.int64]  # index of the segment each piece comes from
    bucket_start_s: npt.NDArray[np.int64]  # epoch seconds of the piece's bucket
    energy_wh: npt.NDArray[np.float64]
    covered_s: npt.NDArray[np.float64]


def segment_pieces(t0_us: npt.ArrayLike, p0_w: npt.ArrayLike, t1_us: npt.ArrayLike, p1_w: npt.ArrayLike,
                   bucket_s: int = BUCKET_SECONDS) -> SegmentPieces:
    """Trapezoid segments `(t0, P0) -> (t1, P1)` (epoch µs, t0 < t1) cut exactly at bucket edges.

    The power at an edge is the straight line between the two readings, so the pieces of a segment
    add up to its whole trapezoid. The same arithmetic as the SQL (`_pieces_select`): epoch seconds
    are `µs / 1e6`, which is exact for any time this platform stores.
    """
    t0 = np.asarray(t0_us, dtype=np.int64)
    t1 = np.asarray(t1_us, dtype=np.int64)
    p0 = np.asarray(p0_w, dtype=np.float64)
    p1 = np.asarray(p1_w, dtype=np.float64)
    x0, x1 = t0 / 1e6, t1 / 1e6
    first = np.floor(x0 / bucket_s).astype(np.int64)
    # The bucket holding the segment's end; an end exactly on an edge belongs to the bucket before.
    last = np.ceil(x1 / bucket_s).astype(np.int64) - 1
    spans = np.maximum(last - first + 1, 1)
    segment = np.repeat(np.arange(t0.size, dtype=np.int64), spans)
    within = np.arange(segment.size, dtype=np.int64) - np.repeat(np.cumsum(spans) - spans, spans)
    edge = (first[segment] + within) * bucket_s
    xs0, xs1, ps0, ps1 = x0[segment], x1[segment], p0[segment], p1[segment]
    xa = np.maximum(xs0, edge.astype(np.float64))
    xb = np.minimum(xs1, (edge + bucket_s).astype(np.float64))
    keep = xb > xa
    slope = (ps1 - ps0) / (xs1 - xs0)
    energy = (ps0 + slope * (xa - xs0) + ps0 + slope * (xb - xs0)) / 2 * (xb - xa) / 3600
    return SegmentPieces(segment[keep], edge[keep], energy[keep], (xb - xa)[keep])


def consecutive_segments(panel: npt.ArrayLike, time_us: npt.ArrayLike, max_gap_s: float) -> npt.NDArray[np.int64]:
    """Indexes `i` of readings sorted by (panel, time) whose segment `i -> i + 1` is credited:
    same panel, and no further apart than the max gap."""
    panel = np.asarray(panel)
    time_us = np.asarray(time_us, dtype=np.int64)
    if panel.size < 2:
        return np.zeros(0, dtype=np.int64)
    same = panel[1:] == panel[:-1]
    return np.flatnonzero(same & (time_us[1:] - time_us[:-1] <= gap_us(max_gap_s)))


def trapezoid_buckets(times_s: npt.ArrayLike, power_w: npt.ArrayLike, max_gap_s: float,
                      bucket_s: int = BUCKET_SECONDS) -> dict[int, tuple[float, float]]:
    """One panel's readings (any order, unique times) -> `{bucket start epoch s: (Wh, covered s)}`.

    The reference for the SQL recompute; the stream's appends use the same `segment_pieces`.
    Buckets that only hold readings but no credited segment are absent.
    """
    times = np.asarray(times_s, dtype=np.float64)
    power = np.asarray(power_w, dtype=np.float64)
    order = np.argsort(times, kind="stable")
    micros = np.rint(times[order] * 1e6).astype(np.int64)
    power = power[order]
    credited = consecutive_segments(np.zeros(micros.size), micros, max_gap_s)
    pieces = segment_pieces(micros[credited], power[credited], micros[credited + 1], power[credited + 1], bucket_s)
    result: dict[int, list[float]] = {}
    for bucket, energy, covered in zip(pieces.bucket_start_s.tolist(), pieces.energy_wh.tolist(),
                                       pieces.covered_s.tolist(), strict=True):
        slot = result.setdefault(int(bucket), [0.0, 0.0])
        slot[0] += energy
        slot[1] += covered
    return {bucket: (energy, covered) for bucket, (energy, covered) in result.items()}


# ------------------------------------------------------------------------------ SQL pieces
def epoch_s(column: str) -> str:
    """Epoch seconds (DOUBLE, microsecond exact) of a DATETIME(3) expression."""
    return f"(TIMESTAMPDIFF(MICROSECOND, {_EPOCH}, {column}) / 1e6)"


def floor_to(column: str, seconds: int) -> str:
    """The DATETIME that starts the `seconds`-aligned slot holding `column` (epoch-aligned)."""
    return (f"TIMESTAMPADD(SECOND, FLOOR(TIMESTAMPDIFF(MICROSECOND, {_EPOCH}, {column}) / {seconds * 1_000_000}) "
            f"* {seconds}, {_EPOCH})")


def gap_us(max_gap_s: float) -> int:
    return int(round(max_gap_s * 1_000_000))


def pieces_select(segments: str, max_gap_s: float, extra_columns: str) -> str:
    """Each segment of `segments` (panel_id, t0, p0, t1, p1, sign) cut at bucket edges.

    Columns: panel_id, bucket_start, energy_wh, covered_seconds, then `extra_columns`. A segment spans at most
    `ceil(max_gap / 900) + 1` buckets, which MariaDB's sequence engine enumerates.
    """
    spans = math.ceil(max_gap_s / BUCKET_SECONDS) + 1
    x0, x1 = epoch_s("s.t0"), epoch_s("s.t1")
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


# Segment pieces carry energy and coverage; readings are counted from the readings themselves.
NO_READINGS = "0 AS readings, 0 AS readings_on, NULL AS peak_w, NULL AS min_w"


# ------------------------------------------------------------------------------ recompute from raw
PanelRange = tuple[str | None, str | None]  # [first, past) of panel ids; None: unbounded
ALL_PANELS: PanelRange = (None, None)


def panel_range_sql(column: str, panels: PanelRange) -> str:
    """A condition on `column` for the panel range (bind :lo, :hi); '1 = 1' for all panels."""
    parts = ([f"{column} >= :lo"] if panels[0] is not None else []) + (
        [f"{column} < :hi"] if panels[1] is not None else [])
    return " AND ".join(parts) or "1 = 1"


def _raw_segments(max_gap_s: float, panels: PanelRange = ALL_PANELS) -> str:
    """Consecutive readings of each panel around `[:a, :b)` no further apart than the max gap."""
    gap = gap_us(max_gap_s)
    return f"""(
        SELECT panel_id, t0, p0, t1, p1, 1 AS sign FROM (
            SELECT Panel_id AS panel_id, time_data AS t1, power_panel AS p1,
                   LAG(time_data) OVER w AS t0, LAG(power_panel) OVER w AS p0
            FROM panelData
            WHERE time_data >= TIMESTAMPADD(MICROSECOND, -{gap}, :a)
              AND time_data < TIMESTAMPADD(MICROSECOND, {gap}, :b) AND {panel_range_sql("Panel_id", panels)}
            WINDOW w AS (PARTITION BY Panel_id ORDER BY time_data)
        ) pairs WHERE t0 IS NOT NULL AND TIMESTAMPDIFF(MICROSECOND, t0, t1) <= {gap})"""


def recompute_buckets_select(max_gap_s: float, panels: PanelRange = ALL_PANELS) -> str:
    """Panel bucket rows for buckets in `[:a, :b)` straight from panelData (bind :a, :b, and :lo,
    :hi for a panel range)."""
    bucket = floor_to("time_data", BUCKET_SECONDS)
    return f"""
        SELECT panel_id, bucket_start, SUM(energy_wh) AS energy_wh, SUM(covered_seconds) AS covered_seconds,
               SUM(readings) AS readings, SUM(readings_on) AS readings_on, MAX(peak_w) AS peak_w,
               MIN(min_w) AS min_w
        FROM (
            {pieces_select(_raw_segments(max_gap_s, panels), max_gap_s, NO_READINGS)}
          UNION ALL
            SELECT Panel_id, {bucket}, 0, 0, 1, current_status = 1, power_panel, power_panel
            FROM panelData WHERE time_data >= :a AND time_data < :b AND {panel_range_sql("Panel_id", panels)}
        ) parts
        WHERE bucket_start >= :a AND bucket_start < :b
        GROUP BY panel_id, bucket_start"""


def recompute_panel_buckets(conn: Connection, start: datetime, end: datetime, max_gap_s: float,
                            panels: PanelRange = ALL_PANELS) -> int:
    """Rewrite the panel buckets starting in `[start, end)` (15-min aligned) of a panel range from
    panelData; the fleet buckets are the caller's (`recompute_fleet_buckets`)."""
    params = {"a": start, "b": end, "lo": panels[0], "hi": panels[1]}
    conn.execute(text(f"DELETE FROM {PANEL_BUCKETS} WHERE bucket_start >= :a AND bucket_start < :b "
                      f"AND {panel_range_sql('panel_id', panels)}"), params)
    return int(conn.execute(text(
        f"INSERT INTO {PANEL_BUCKETS} (panel_id, bucket_start, energy_wh, covered_seconds, readings, "
        f"readings_on, peak_w, min_w) {recompute_buckets_select(max_gap_s, panels)}"), params).rowcount)


def recompute_fleet_buckets(conn: Connection, start: datetime, end: datetime) -> None:
    """Rewrite the fleet buckets starting in `[start, end)` as the sums of the panel buckets."""
    params = {"a": start, "b": end}
    conn.execute(text(f"DELETE FROM {FLEET_BUCKETS} WHERE bucket_start >= :a AND bucket_start < :b"), params)
    conn.execute(text(
        f"INSERT INTO {FLEET_BUCKETS} (bucket_start, energy_wh, covered_seconds, readings, readings_on) "
        f"SELECT bucket_start, SUM(energy_wh), SUM(covered_seconds), SUM(readings), SUM(readings_on) "
        f"FROM {PANEL_BUCKETS} WHERE bucket_start >= :a AND bucket_start < :b GROUP BY bucket_start"), params)


def recompute_buckets(conn: Connection, start: datetime, end: datetime, max_gap_s: float) -> int:
    """Rewrite the panel and fleet buckets starting in `[start, end)` (15-min aligned) from panelData."""
    written = recompute_panel_buckets(conn, start, end, max_gap_s)
    recompute_fleet_buckets(conn, start, end)
    return written


def recompute_latest(conn: Connection, panel_ids: Sequence[str] | None = None) -> int:
    """Rewrite panel_latest from panelData (all panels, or some); first_seen never moves later.

    Retention drops old raw days, so a stored first_seen earlier than the oldest kept reading stays.
    Bumps the derived generation first, in the same transaction, so a running stream reloads its
    copy (`storage.stream.latest`) and waits for this transaction rather than race it.
    """
    from solar_platform.storage.stream.latest import bump_generation

    bump_generation(conn)
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
        f"ON DUPLICATE KEY UPDATE {PANEL_LATEST}.first_seen = LEAST({PANEL_LATEST}.first_seen, VALUES(first_seen)), "
        f"{PANEL_LATEST}.last_seen = VALUES(last_seen), {PANEL_LATEST}.power_panel = VALUES(power_panel), "
        f"{PANEL_LATEST}.current_status = VALUES(current_status)")
    if panel_ids is not None:
        statement = statement.bindparams(bindparam("ids", expanding=True))
    return int(conn.execute(statement, params).rowcount)
