"""Windows and energy buckets on Spark's executors, by the stream's own numpy functions.

The readings of a range (with `gap` on either side, for the segments that cross its edges) are
partitioned by panel and sorted by (panel, time); each partition is one numpy pass
(`derive_partition`): `storage.windows.aggregate_windows` for the 30-s windows and
`storage.stream.appends.bucket_rows` (segments cut by `storage.energy.segment_pieces`) for the
buckets, each reading's predecessor being the panel's previous reading. The energy model and the
window means stay defined once; the SQL recompute (`storage.energy`, `storage.windows`) is the other
engine, and the tests hold the two equal.

Output: one Arrow table of both kinds of rows (`KIND` 0 = window, 1 = bucket), only those starting
in `[start, end)`; `collect` splits it into what `storage.history.rebuild_writes` loads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame

from solar_platform.contracts import PANEL_ID, POWER, STATUS
from solar_platform.storage.stream.appends import BucketRows, bucket_rows
from solar_platform.storage.stream.latest import NONE
from solar_platform.storage.stream.readings import Readings
from solar_platform.storage.windows import WindowRows, aggregate_windows

TIME_US = "time_us"  # epoch microseconds, UTC: the readings' time in every DataFrame here
KIND = "kind"
WINDOW, BUCKET = 0, 1
START_US = "start_us"
_WINDOW_FIELDS = [("reading_count", pa.int64()), ("power_sum", pa.float64()), ("power_min", pa.float64()),
                  ("power_max", pa.float64()), ("readings_on", pa.int64()), ("power_on_sum", pa.float64()),
                  ("power_on_min", pa.float64()), ("power_on_max", pa.float64()), ("first_time_us", pa.int64()),
                  ("first_power", pa.float64()), ("last_time_us", pa.int64()), ("last_power", pa.float64()),
                  ("last_on_time_us", pa.int64()), ("last_off_time_us", pa.int64())]
_BUCKET_FIELDS = [("energy_wh", pa.float64()), ("covered_s", pa.float64()), ("readings", pa.int64()),
                  ("bucket_readings_on", pa.int64()), ("peak_w", pa.float64()), ("min_w", pa.float64())]
SCHEMA = pa.schema([(KIND, pa.int8()), (PANEL_ID, pa.string()), (START_US, pa.int64()),
                    *_WINDOW_FIELDS, *_BUCKET_FIELDS])
# The readings' columns `derive_partition` takes.
INPUT_COLUMNS = (PANEL_ID, TIME_US, POWER, STATUS)


def _readings(table: pa.Table) -> Readings:
    """Rows grouped by panel and sorted by time within it, as `Readings` (panels coded per partition)."""
    coded = pc.dictionary_encode(table.column(PANEL_ID)).combine_chunks()
    return Readings(np.asarray(coded.dictionary.to_pylist(), dtype=object), np.asarray(coded.indices, dtype=np.int64),
                    np.asarray(table.column(TIME_US), dtype=np.int64),
                    np.asarray(table.column(POWER), dtype=np.float64),
                    np.asarray(table.column(STATUS), dtype=np.int8))


def _predecessors(r: Readings) -> tuple[np.ndarray, np.ndarray]:
    """Each reading's previous reading of the same panel (time `NONE` for a panel's first)."""
    prev_us = np.full(len(r), NONE, dtype=np.int64)
    prev_power = np.zeros(len(r), dtype=np.float64)
    if len(r) > 1:
        same = r.panel[1:] == r.panel[:-1]
        prev_us[1:] = np.where(same, r.time_us[:-1], NONE)
        prev_power[1:] = np.where(same, r.power[:-1], 0.0)
    return prev_us, prev_power


def _rows(kind: int, ids: np.ndarray, start_us: np.ndarray, columns: dict[str, object]) -> pa.Table:
    n = len(ids)
    values: dict[str, pa.Array] = {KIND: pa.array(np.full(n, kind, dtype=np.int8)),
                                   PANEL_ID: pa.array(ids, pa.string()), START_US: pa.array(start_us, pa.int64())}
    for name, kind_type in (*_WINDOW_FIELDS, *_BUCKET_FIELDS):
        given = columns.get(name)
        values[name] = (pa.nulls(n, kind_type) if given is None
                        else pa.array(given, kind_type, mask=np.isnan(given) if kind_type == pa.float64() else None))
    return pa.table(values, schema=SCHEMA)


def derive(table: pa.Table, start_us: int, end_us: int, max_gap_s: float) -> pa.Table:
    """The window and bucket rows starting in `[start_us, end_us)` of readings grouped by panel and
    sorted by time (the readings may reach `max_gap_s` beyond either end)."""
    if table.num_rows == 0:
        return SCHEMA.empty_table()
    r = _readings(table)
    w = aggregate_windows(r.panel, r.time_us, r.power, r.status)
    inside = (w.window_start_us >= start_us) & (w.window_start_us < end_us)
    windows = _rows(WINDOW, r.panel_ids[r.panel[w.row[inside]]], w.window_start_us[inside], {
        "reading_count": w.reading_count[inside], "power_sum": w.power_sum[inside], "power_min": w.power_min[inside],
        "power_max": w.power_max[inside], "readings_on": w.readings_on[inside],
        "power_on_sum": w.power_on_sum[inside], "power_on_min": w.power_on_min[inside],
        "power_on_max": w.power_on_max[inside], "first_time_us": w.first_time_us[inside],
        "first_power": w.first_power[inside], "last_time_us": w.last_time_us[inside],
        "last_power": w.last_power[inside], "last_on_time_us": w.last_on_time_us[inside],
        "last_off_time_us": w.last_off_time_us[inside]})
    b = bucket_rows(r, *_predecessors(r), max_gap_s)
    starts_us = b.bucket_start_s * 1_000_000
    keep = (starts_us >= start_us) & (starts_us < end_us)
    buckets = _rows(BUCKET, r.panel_ids[b.panel[keep]], starts_us[keep], {
        "energy_wh": b.energy_wh[keep], "covered_s": b.covered_s[keep], "readings": b.readings[keep],
        "bucket_readings_on": b.readings_on[keep], "peak_w": b.peak_w[keep],
        "min_w": b.min_w[keep]})
    return pa.concat_tables([windows, buckets])


def derive_partition(start_us: int, end_us: int, max_gap_s: float
                     ) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """`mapInArrow`'s function: one sorted partition (whole panels) -> its window and bucket rows."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        received = list(batches)
        table = pa.Table.from_batches(received) if received else None
        if table is None or table.num_rows == 0:
            return
        yield from derive(table.select(list(INPUT_COLUMNS)), start_us, end_us, max_gap_s).to_batches()

    return run


def on_spark(readings: DataFrame, start_us: int, end_us: int, max_gap_s: float, partitions: int) -> pa.Table:
    """Run `derive` on Spark over `readings` (`INPUT_COLUMNS`), whole panels per task; the rows come
    back to the driver as one Arrow table."""
    ordered = readings.select(*INPUT_COLUMNS).repartition(partitions, PANEL_ID).sortWithinPartitions(PANEL_ID, TIME_US)
    from pyspark.sql.pandas.types import from_arrow_schema

    return ordered.mapInArrow(derive_partition(start_us, end_us, max_gap_s), from_arrow_schema(SCHEMA)).toArrow()


@dataclass(frozen=True)
class Derived:
    """`derive`'s rows split by kind, as the stream's row types (panel ids beside them)."""

    window_ids: np.ndarray
    windows: WindowRows
    bucket_ids: np.ndarray
    buckets: BucketRows


def split(rows: pa.Table) -> Derived:
    kind = np.asarray(rows.column(KIND), dtype=np.int8)

    def part(k: int) -> pa.Table:
        return rows.filter(pa.array(kind == k))

    def col(t: pa.Table, name: str, dtype: type, fill: object = None) -> np.ndarray:
        column = t.column(name)
        if fill is not None:
            column = pc.fill_null(column, fill)
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=dtype)

    w, b = part(WINDOW), part(BUCKET)
    windows = WindowRows(
        row=np.zeros(w.num_rows, dtype=np.int64), window_start_us=col(w, START_US, np.int64),
        reading_count=col(w, "reading_count", np.int64), power_sum=col(w, "power_sum", np.float64),
        power_min=col(w, "power_min", np.float64), power_max=col(w, "power_max", np.float64),
        readings_on=col(w, "readings_on", np.int64), power_on_sum=col(w, "power_on_sum", np.float64),
        power_on_min=col(w, "power_on_min", np.float64, np.nan),
        power_on_max=col(w, "power_on_max", np.float64, np.nan),
        first_time_us=col(w, "first_time_us", np.int64), first_power=col(w, "first_power", np.float64),
        last_time_us=col(w, "last_time_us", np.int64), last_power=col(w, "last_power", np.float64),
        last_on_time_us=col(w, "last_on_time_us", np.int64), last_off_time_us=col(w, "last_off_time_us", np.int64))
    bucket_ids = col(b, PANEL_ID, object)
    buckets = BucketRows(
        panel=np.arange(b.num_rows, dtype=np.int64), bucket_start_s=col(b, START_US, np.int64) // 1_000_000,
        energy_wh=col(b, "energy_wh", np.float64), covered_s=col(b, "covered_s", np.float64),
        readings=col(b, "readings", np.int64), readings_on=col(b, "bucket_readings_on", np.int64),
        peak_w=col(b, "peak_w", np.float64, np.nan), min_w=col(b, "min_w", np.float64, np.nan))
    return Derived(col(w, PANEL_ID, object), windows, bucket_ids, buckets)
