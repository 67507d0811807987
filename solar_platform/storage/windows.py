"""The 30-second window summary (`panelDataAgg`), defined once: its columns, its recompute from raw
readings (SQL) and its aggregate of a batch of appends (numpy).

`panelDataAgg` keeps the seed's columns (`total_power` is the window's mean power) and, beside
them, what fault detection and the live checks judge from instead of raw readings: sums, extremes,
readings per status and the first and last reading of each (panel, window). Every column is a
function of the readings `panelData` holds for the window, so a recompute gives the same row
however late, re-sent or reordered the readings arrived.

- **Appends** (a panel's readings newer than everything stored for it: nearly every reading) are
  aggregated per window in numpy and merged with `MERGE_APPENDED_WINDOWS`: sums add, extremes
  widen, the last reading replaces, the first stays. Exact because an appended reading is later
  than every reading the stored window holds.
- **Corrections** (late, re-sent or changed readings) recompute their windows from `panelData`
  (`recompute_windows_select`): at most 6 readings a window at 5 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, text

from solar_platform.storage.db import WINDOWS
from solar_platform.storage.energy import panel_range_sql
from solar_platform.storage.stream import bulk

WINDOW_SECONDS = 30
WINDOW_MICROS = WINDOW_SECONDS * 1_000_000

_EPOCH = "TIMESTAMP'1970-01-01 00:00:00'"

# panelDataAgg's columns in the order every writer uses (the seed's five first).
COLUMNS = (
    "Panel_id", "total_power", "window_start", "window_end", "reading_count",
    "power_sum", "power_min", "power_max",
    "readings_on", "power_on_sum", "power_on_min", "power_on_max",
    "first_time", "first_power", "last_time", "last_power", "last_on_time", "last_off_time",
)


def recompute_windows_select(source: str, where: str) -> str:
    """Window rows straight from readings: `source` is a FROM clause exposing panelData's columns as
    `d` (optionally joined), `where` filters it. Columns in `COLUMNS` order.

    The first and last reading's power come back by key (two primary-key lookups a window).
    """
    start = (f"TIMESTAMPADD(SECOND, FLOOR(TIMESTAMPDIFF(MICROSECOND, {_EPOCH}, d.time_data) / {WINDOW_MICROS}) "
             f"* {WINDOW_SECONDS}, {_EPOCH})")
    on = "d.current_status = 1"
    return f"""
        SELECT w.Panel_id, w.power_sum / w.reading_count, w.window_start,
               TIMESTAMPADD(SECOND, {WINDOW_SECONDS}, w.window_start), w.reading_count,
               w.power_sum, w.power_min, w.power_max, w.readings_on, w.power_on_sum, w.power_on_min, w.power_on_max,
               w.first_time, f.power_panel, w.last_time, l.power_panel, w.last_on_time, w.last_off_time
        FROM (
            SELECT d.Panel_id, {start} AS window_start, COUNT(*) AS reading_count,
                   SUM(d.power_panel) AS power_sum, MIN(d.power_panel) AS power_min,
                   MAX(d.power_panel) AS power_max, SUM({on}) AS readings_on,
                   COALESCE(SUM(IF({on}, d.power_panel, 0)), 0) AS power_on_sum,
                   MIN(IF({on}, d.power_panel, NULL)) AS power_on_min,
                   MAX(IF({on}, d.power_panel, NULL)) AS power_on_max,
                   MIN(d.time_data) AS first_time, MAX(d.time_data) AS last_time,
                   MAX(IF({on}, d.time_data, NULL)) AS last_on_time,
                   MAX(IF(d.current_status = 0, d.time_data, NULL)) AS last_off_time
            FROM {source} WHERE {where}
            GROUP BY d.Panel_id, window_start
        ) w
        STRAIGHT_JOIN panelData f ON f.Panel_id = w.Panel_id AND f.time_data = w.first_time
        STRAIGHT_JOIN panelData l ON l.Panel_id = w.Panel_id AND l.time_data = w.last_time"""


@dataclass(frozen=True)
class WindowRows:
    """Per-(panel, window) aggregates of readings sorted by (panel, time), as column arrays."""

    row: npt.NDArray[np.int64]  # index (into the sorted readings) of each window's first reading
    window_start_us: npt.NDArray[np.int64]
    reading_count: npt.NDArray[np.int64]
    power_sum: npt.NDArray[np.float64]
    power_min: npt.NDArray[np.float64]
    power_max: npt.NDArray[np.float64]
    readings_on: npt.NDArray[np.int64]
    power_on_sum: npt.NDArray[np.float64]
    power_on_min: npt.NDArray[np.float64]  # NaN: no status-1 reading
    power_on_max: npt.NDArray[np.float64]
    first_time_us: npt.NDArray[np.int64]
    first_power: npt.NDArray[np.float64]
    last_time_us: npt.NDArray[np.int64]
    last_power: npt.NDArray[np.float64]
    last_on_time_us: npt.NDArray[np.int64]  # -1: none
    last_off_time_us: npt.NDArray[np.int64]


def run_starts(keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Start index of each run of equal values in a sorted key array."""
    if keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([[0], np.flatnonzero(keys[1:] != keys[:-1]) + 1]).astype(np.int64)


def aggregate_windows(panel: npt.NDArray[np.int64], time_us: npt.NDArray[np.int64], power: npt.NDArray[np.float64],
                      status: npt.NDArray[np.int8]) -> WindowRows:
    """Window rows of readings sorted by (panel code, time): the same figures as the SQL recompute."""
    window = time_us // WINDOW_MICROS
    key = panel.astype(np.int64) * (1 << 40) + window  # sorted, since the readings are
    starts = run_starts(key)
    ends = np.append(starts[1:], key.size) - 1
    on = status == 1
    counts = np.diff(np.append(starts, key.size))

    def total(values: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        return np.add.reduceat(values, starts) if starts.size else values[:0]

    def extreme(ufunc: np.ufunc, values: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        return ufunc.reduceat(values, starts) if starts.size else values[:0]

    on_min = extreme(np.minimum, np.where(on, power, np.inf))
    on_max = extreme(np.maximum, np.where(on, power, -np.inf))
    return WindowRows(
        row=starts, window_start_us=window[starts] * WINDOW_MICROS, reading_count=counts.astype(np.int64),
        power_sum=total(power), power_min=extreme(np.minimum, power), power_max=extreme(np.maximum, power),
        readings_on=total(on.astype(np.int64)), power_on_sum=total(np.where(on, power, 0.0)),
        power_on_min=np.where(np.isfinite(on_min), on_min, np.nan),
        power_on_max=np.where(np.isfinite(on_max), on_max, np.nan),
        first_time_us=time_us[starts], first_power=power[starts], last_time_us=time_us[ends], last_power=power[ends],
        last_on_time_us=extreme(np.maximum, np.where(on, time_us, -1)),
        last_off_time_us=extreme(np.maximum, np.where(status == 0, time_us, -1)),
    )


def window_load_columns(panel_ids: npt.NDArray[np.object_], w: WindowRows) -> list[bulk.Column]:
    """Window rows (`panel_ids`: each row's panel) as the columns `bulk.load` writes into a
    `panelDataAgg`-shaped table, in `COLUMNS` order."""
    values = dict(zip(COLUMNS, (
        panel_ids, w.power_sum / w.reading_count, w.window_start_us, w.window_start_us + WINDOW_MICROS,
        w.reading_count, w.power_sum, w.power_min, w.power_max, w.readings_on, w.power_on_sum, w.power_on_min,
        w.power_on_max, w.first_time_us, w.first_power, w.last_time_us, w.last_power, w.last_on_time_us,
        w.last_off_time_us), strict=True))
    kinds: dict[str, bulk.Kind] = {
        "window_start": "time_us", "window_end": "time_us", "first_time": "time_us", "last_time": "time_us",
        "last_on_time": "time_us", "last_off_time": "time_us", "power_on_min": "nullable", "power_on_max": "nullable"}
    return [bulk.Column(name, values[name], kinds.get(name, "plain")) for name in COLUMNS]


# Appended readings are later than everything stored for their panel: sums add, extremes widen,
# the last reading replaces, the first stays. MariaDB applies the assignments left to right, so
# `total_power` sees the new sum and count.
MERGE_APPENDED_WINDOWS = f"""
    INSERT INTO {WINDOWS} ({", ".join(COLUMNS)})
    SELECT {", ".join(COLUMNS)} FROM tmp_append_windows
    ON DUPLICATE KEY UPDATE
        {WINDOWS}.power_sum = {WINDOWS}.power_sum + VALUES(power_sum),
        {WINDOWS}.reading_count = {WINDOWS}.reading_count + VALUES(reading_count),
        {WINDOWS}.total_power = {WINDOWS}.power_sum / {WINDOWS}.reading_count,
        {WINDOWS}.power_min = LEAST({WINDOWS}.power_min, VALUES(power_min)),
        {WINDOWS}.power_max = GREATEST({WINDOWS}.power_max, VALUES(power_max)),
        {WINDOWS}.readings_on = {WINDOWS}.readings_on + VALUES(readings_on),
        {WINDOWS}.power_on_sum = {WINDOWS}.power_on_sum + VALUES(power_on_sum),
        {WINDOWS}.power_on_min = COALESCE(LEAST({WINDOWS}.power_on_min, VALUES(power_on_min)),
                                          {WINDOWS}.power_on_min, VALUES(power_on_min)),
        {WINDOWS}.power_on_max = COALESCE(GREATEST({WINDOWS}.power_on_max, VALUES(power_on_max)),
                                          {WINDOWS}.power_on_max, VALUES(power_on_max)),
        {WINDOWS}.last_time = VALUES(last_time),
        {WINDOWS}.last_power = VALUES(last_power),
        {WINDOWS}.last_on_time = COALESCE(VALUES(last_on_time), {WINDOWS}.last_on_time),
        {WINDOWS}.last_off_time = COALESCE(VALUES(last_off_time), {WINDOWS}.last_off_time)"""


def recompute_windows(conn: Connection, start: datetime, end: datetime,
                      panels: tuple[str | None, str | None] = (None, None)) -> int:
    """Rewrite panelDataAgg for windows starting in `[start, end)` (30-s aligned) from panelData, for
    all panels or a range `[first, past)` of panel ids."""
    params = {"a": start, "b": end, "lo": panels[0], "hi": panels[1]}
    conn.execute(text(f"DELETE FROM {WINDOWS} WHERE window_start >= :a AND window_start < :b "
                      f"AND {panel_range_sql('Panel_id', panels)}"), params)
    return int(conn.execute(text(
        f"INSERT INTO {WINDOWS} ({', '.join(COLUMNS)}) " + recompute_windows_select(
            "panelData d", f"d.time_data >= :a AND d.time_data < :b AND {panel_range_sql('d.Panel_id', panels)}")),
        params).rowcount)
