"""The bulk path: a batch's appends (each panel's next readings, newer than anything stored for it).

Nearly every reading is one, so they cost about what a bulk insert costs:

- the raw rows are loaded straight into `panelData` (`LOAD DATA`, no staging copy);
- their windows, energy buckets (panel and fleet) and each panel's latest reading are aggregated
  in numpy (`plan_appends`) and merged with one statement per table (`write_summaries`): one row
  per touched window, bucket and panel, whatever the number of readings; for several batches at
  once when their summaries waited (`summaries`).

Exact because an append is later than every reading stored for its panel: a window or bucket it
touches only gains readings at its end, and the panel's energy gains the segments that start at
its newest stored reading (from `LatestReadings`) and run through the batch's own readings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, text

from solar_platform.storage.db import FLEET_BUCKETS, PANEL_BUCKETS, PANEL_LATEST, READINGS
from solar_platform.storage.energy import BUCKET_SECONDS, gap_us, segment_pieces
from solar_platform.storage.stream import bulk
from solar_platform.storage.stream.latest import NONE, LatestReadings
from solar_platform.storage.stream.readings import Readings
from solar_platform.storage.windows import MERGE_APPENDED_WINDOWS, WindowRows, aggregate_windows, window_load_columns

BUCKET_MICROS = BUCKET_SECONDS * 1_000_000


class AppendConflict(RuntimeError):
    """An "append" was already in panelData: `panel_latest` is behind panelData (a bulk import
    without a rebuild). The caller rolls back and sends the batch down the exact path."""


@dataclass(frozen=True)
class BucketRows:
    """Per (panel, 15-min bucket) deltas, sorted by (panel, bucket)."""

    panel: npt.NDArray[np.int64]
    bucket_start_s: npt.NDArray[np.int64]
    energy_wh: npt.NDArray[np.float64]
    covered_s: npt.NDArray[np.float64]
    readings: npt.NDArray[np.int64]
    readings_on: npt.NDArray[np.int64]
    peak_w: npt.NDArray[np.float64]  # NaN: no reading stamped in the bucket
    min_w: npt.NDArray[np.float64]


@dataclass(frozen=True)
class LatestRows:
    """Each appended panel's new `panel_latest` row."""

    panel: npt.NDArray[np.int64]
    first_us: npt.NDArray[np.int64]
    last_us: npt.NDArray[np.int64]
    power: npt.NDArray[np.float64]
    status: npt.NDArray[np.int8]


@dataclass(frozen=True)
class AppendPlan:
    readings: Readings
    windows: WindowRows
    buckets: BucketRows
    latest: LatestRows


def predecessors(appends: Readings, positions: npt.NDArray[np.int64], latest: LatestReadings
                 ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Each append's previous reading (time µs, power): the one before it in the batch, or for a
    panel's first append its newest stored reading; time `NONE` for a panel never seen."""
    time_us, power = appends.time_us, appends.power
    prev_us = np.empty_like(time_us)
    prev_power = np.empty_like(power)
    prev_us[1:], prev_power[1:] = time_us[:-1], power[:-1]
    first = appends.first_of_panel()
    where = positions[appends.panel[first]]
    prev_us[first] = latest.at(latest.last_us, where, NONE)
    prev_power[first] = latest.at(latest.power, where, 0.0)
    return prev_us, prev_power


def bucket_rows(appends: Readings, prev_us: npt.NDArray[np.int64], prev_power: npt.NDArray[np.float64],
                max_gap_s: float) -> BucketRows:
    """Per (panel, bucket): the energy and coverage of the segments ending at each reading (from its
    predecessor `prev_*`, `NONE` for none; credited within the max gap, cut at bucket edges by
    `energy.segment_pieces`), and the readings stamped in it. The stream's appends and the rebuild
    on Spark (`history.derive`) both run it."""
    code, time_us, power = appends.panel, appends.time_us, appends.power
    # Segments ending at each append, credited when no longer than the max gap.
    has_prev = prev_us != NONE
    gap_ok = has_prev & (time_us - np.where(has_prev, prev_us, time_us) <= gap_us(max_gap_s))
    ends = np.flatnonzero(gap_ok)
    pieces = segment_pieces(prev_us[ends], prev_power[ends], time_us[ends], power[ends])
    reading_bucket = time_us // BUCKET_MICROS * BUCKET_SECONDS
    all_code = np.concatenate([code[ends][pieces.segment], code])
    all_bucket = np.concatenate([pieces.bucket_start_s, reading_bucket])
    key = all_code * (1 << 32) + all_bucket // BUCKET_SECONDS
    unique, inverse = np.unique(key, return_inverse=True)
    n_pieces = pieces.segment.size
    count = unique.size
    is_reading = np.arange(key.size) >= n_pieces
    peak = np.full(count, -np.inf)
    np.maximum.at(peak, inverse[n_pieces:], power)
    low = np.full(count, np.inf)
    np.minimum.at(low, inverse[n_pieces:], power)
    return BucketRows(
        panel=unique >> 32, bucket_start_s=(unique & ((1 << 32) - 1)) * BUCKET_SECONDS,
        energy_wh=np.bincount(inverse[:n_pieces], weights=pieces.energy_wh, minlength=count),
        covered_s=np.bincount(inverse[:n_pieces], weights=pieces.covered_s, minlength=count),
        readings=np.bincount(inverse, weights=is_reading, minlength=count).astype(np.int64),
        readings_on=np.bincount(inverse[n_pieces:], weights=appends.status == 1, minlength=count).astype(np.int64),
        peak_w=np.where(np.isfinite(peak), peak, np.nan), min_w=np.where(np.isfinite(low), low, np.nan),
    )


def latest_rows(appends: Readings, positions: npt.NDArray[np.int64], latest: LatestReadings) -> LatestRows:
    """Each appended panel's new `panel_latest` row: its newest append, first seen kept from `latest`."""
    code = appends.panel
    first, last = appends.first_of_panel(), appends.last_of_panel()
    where = positions[code[last]]
    stored_first = latest.at(latest.first_us, where, NONE)
    return LatestRows(panel=code[last], first_us=np.where(where >= 0, stored_first, appends.time_us[first]),
                      last_us=appends.time_us[last], power=appends.power[last], status=appends.status[last])


def plan_appends(appends: Readings, positions: npt.NDArray[np.int64], latest: LatestReadings,
                 max_gap_s: float) -> AppendPlan:
    """Everything the appends change, aggregated (`positions`: each batch panel code's row in
    `latest`, -1 for a new panel)."""
    prev_us, prev_power = predecessors(appends, positions, latest)
    return AppendPlan(
        readings=appends,
        windows=aggregate_windows(appends.panel, appends.time_us, appends.power, appends.status),
        buckets=bucket_rows(appends, prev_us, prev_power, max_gap_s),
        latest=latest_rows(appends, positions, latest),
    )


# ------------------------------------------------------------------------------------ the SQL
_TEMP_TABLES = (
    # MEMORY, no keys: each is filled by LOAD DATA and read once by one INSERT ... SELECT.
    """CREATE TEMPORARY TABLE IF NOT EXISTS tmp_append_windows (
        Panel_id VARCHAR(64) CHARACTER SET ascii NOT NULL, total_power DOUBLE NOT NULL,
        window_start DATETIME(3) NOT NULL, window_end DATETIME(3) NOT NULL, reading_count INT NOT NULL,
        power_sum DOUBLE NOT NULL, power_min DOUBLE NOT NULL, power_max DOUBLE NOT NULL,
        readings_on INT NOT NULL, power_on_sum DOUBLE NOT NULL, power_on_min DOUBLE NULL, power_on_max DOUBLE NULL,
        first_time DATETIME(3) NOT NULL, first_power DOUBLE NOT NULL, last_time DATETIME(3) NOT NULL,
        last_power DOUBLE NOT NULL, last_on_time DATETIME(3) NULL, last_off_time DATETIME(3) NULL) ENGINE=MEMORY""",
    """CREATE TEMPORARY TABLE IF NOT EXISTS tmp_append_buckets (
        panel_id VARCHAR(64) CHARACTER SET ascii NOT NULL, bucket_start DATETIME NOT NULL,
        energy_wh DOUBLE NOT NULL, covered_seconds DOUBLE NOT NULL, readings INT NOT NULL, readings_on INT NOT NULL,
        peak_w DOUBLE NULL, min_w DOUBLE NULL) ENGINE=MEMORY""",
)
# "The table is full" on these is their size limit (max_heap_table_size), not a full disk.
MEMORY_SCRATCH_TABLES = ("tmp_append_windows", "tmp_append_buckets")

_MERGE_BUCKETS = f"""
    INSERT INTO {PANEL_BUCKETS} (panel_id, bucket_start, energy_wh, covered_seconds, readings, readings_on, peak_w,
                                 min_w)
    SELECT panel_id, bucket_start, energy_wh, covered_seconds, readings, readings_on, peak_w, min_w
    FROM tmp_append_buckets
    ON DUPLICATE KEY UPDATE
        {PANEL_BUCKETS}.energy_wh = {PANEL_BUCKETS}.energy_wh + VALUES(energy_wh),
        {PANEL_BUCKETS}.covered_seconds = {PANEL_BUCKETS}.covered_seconds + VALUES(covered_seconds),
        {PANEL_BUCKETS}.readings = {PANEL_BUCKETS}.readings + VALUES(readings),
        {PANEL_BUCKETS}.readings_on = {PANEL_BUCKETS}.readings_on + VALUES(readings_on),
        {PANEL_BUCKETS}.peak_w = COALESCE(GREATEST({PANEL_BUCKETS}.peak_w, VALUES(peak_w)),
                                          {PANEL_BUCKETS}.peak_w, VALUES(peak_w)),
        {PANEL_BUCKETS}.min_w = COALESCE(LEAST({PANEL_BUCKETS}.min_w, VALUES(min_w)),
                                         {PANEL_BUCKETS}.min_w, VALUES(min_w))"""

_MERGE_FLEET = f"""
    INSERT INTO {FLEET_BUCKETS} (bucket_start, energy_wh, covered_seconds, readings, readings_on)
    SELECT bucket_start, SUM(energy_wh), SUM(covered_seconds), SUM(readings), SUM(readings_on)
    FROM tmp_append_buckets GROUP BY bucket_start
    ON DUPLICATE KEY UPDATE
        {FLEET_BUCKETS}.energy_wh = {FLEET_BUCKETS}.energy_wh + VALUES(energy_wh),
        {FLEET_BUCKETS}.covered_seconds = {FLEET_BUCKETS}.covered_seconds + VALUES(covered_seconds),
        {FLEET_BUCKETS}.readings = {FLEET_BUCKETS}.readings + VALUES(readings),
        {FLEET_BUCKETS}.readings_on = {FLEET_BUCKETS}.readings_on + VALUES(readings_on)"""


def _timer(timings: dict[str, float] | None, name: str) -> Callable[[], None]:
    started = perf_counter()

    def done() -> None:
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + perf_counter() - started
    return done


def load_appended(conn: Connection, readings: Readings, timings: dict[str, float] | None = None) -> int:
    """The appends' raw rows straight into `panelData`, in the caller's transaction; returns their count.

    Raises `AppendConflict` (nothing is half-written that a rollback does not undo) when an append
    was already stored.
    """
    if not len(readings):
        return 0
    done = _timer(timings, "append_raw")
    loaded = bulk.load(conn, READINGS, [
        bulk.Column("Panel_id", readings.ids()), bulk.Column("power_panel", readings.power),
        bulk.Column("current_status", readings.status), bulk.Column("time_data", readings.time_us, "time_us")])
    done()
    if loaded != len(readings):
        raise AppendConflict(f"{len(readings) - loaded} of {len(readings)} appended readings were already stored")
    return len(readings)


def write_summaries(conn: Connection, plan: AppendPlan, timings: dict[str, float] | None = None) -> None:
    """Merge `plan`'s windows, energy buckets (panel and fleet) and latest rows, in the caller's
    transaction (its raw rows are loaded already: `load_appended`)."""
    if not len(plan.readings):
        return
    ids = plan.readings.panel_ids
    done = _timer(timings, "append_windows")
    for statement in _TEMP_TABLES:
        conn.execute(text(statement))
    conn.execute(text("DELETE FROM tmp_append_windows"))
    conn.execute(text("DELETE FROM tmp_append_buckets"))
    w = plan.windows
    bulk.load(conn, "tmp_append_windows", window_load_columns(ids[plan.readings.panel[w.row]], w))
    conn.execute(text(MERGE_APPENDED_WINDOWS))
    done()

    done = _timer(timings, "append_energy")
    bulk.load(conn, "tmp_append_buckets", bucket_load_columns(ids, plan.buckets))
    conn.execute(text(_MERGE_BUCKETS))
    conn.execute(text(_MERGE_FLEET))
    done()

    done = _timer(timings, "append_latest")
    latest = plan.latest
    # Whole rows (first seen included, from memory): REPLACE needs no read of the stored row.
    bulk.load(conn, PANEL_LATEST, [
        bulk.Column("panel_id", ids[latest.panel]), bulk.Column("first_seen", latest.first_us, "time_us"),
        bulk.Column("last_seen", latest.last_us, "time_us"), bulk.Column("power_panel", latest.power),
        bulk.Column("current_status", latest.status)], replace=True)
    done()


def bucket_load_columns(panel_ids: npt.NDArray[np.object_], b: BucketRows) -> list[bulk.Column]:
    """Bucket rows as the columns `bulk.load` writes into a `panel_energy_15min`-shaped table
    (`panel_ids[b.panel]` is each row's panel)."""
    return [bulk.Column("panel_id", panel_ids[b.panel]),
            bulk.Column("bucket_start", b.bucket_start_s * 1_000_000, "time_us"),
            bulk.Column("energy_wh", b.energy_wh), bulk.Column("covered_seconds", b.covered_s),
            bulk.Column("readings", b.readings), bulk.Column("readings_on", b.readings_on),
            bulk.Column("peak_w", b.peak_w, "nullable"), bulk.Column("min_w", b.min_w, "nullable")]


def apply_to_latest(latest: LatestReadings, readings: Readings, rows: LatestRows) -> None:
    """New latest rows (`rows`, coded like `readings`) in memory: what `write_summaries` writes."""
    latest.update(readings.panel_ids[rows.panel], rows.first_us, rows.last_us, rows.power, rows.status)
