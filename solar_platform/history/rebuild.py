"""`solar-platform rebuild` on Spark: panelData where it still holds the range, the raw archive where
it does not; `local[*]` or the standalone cluster (`SOLAR_SPARK_MASTER`).

The plan, the refusal of a range without a source, the folded days and what follows the chunks
(`panel_latest`, the registry, the daily rollups) are `storage.rebuild`'s, shared with the SQL
engine (`engine="sql"`). Per chunk:

1. read the chunk's change marks (what the stream has changed so far);
2. read its readings, with the max gap on either side: panelData over JDBC (a query per 15 minutes,
   READ COMMITTED), or the archive's Parquet files resolved by its rule (`history.sources`);
3. compute its windows and buckets on the executors with the stream's own numpy (`history.derive`);
4. write them per panel range in short transactions that first hold the stream off and check the
   marks (`storage.history.rebuild_writes`): a range the stream changed meanwhile is recomputed in
   MariaDB in the same transaction when panelData holds it, or the chunk is computed again.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from pyspark.sql import SparkSession

from solar_platform.history import derive
from solar_platform.history.sources import archived_readings, raw_readings
from solar_platform.settings import Settings
from solar_platform.storage import db, energy
from solar_platform.storage import rebuild as shared
from solar_platform.storage.energy import ALL_PANELS, PanelRange
from solar_platform.storage.history import changes, folding
from solar_platform.storage.history.archive import Archive
from solar_platform.storage.history.rebuild_writes import changed_since, hold_stream_off, replace_rows
from solar_platform.storage.rebuild import ARCHIVE, PANDATA, Chunk, Progress, RebuildError, RebuildReport
from solar_platform.storage.stream.appends import BucketRows, bucket_load_columns
from solar_platform.storage.windows import WindowRows, window_load_columns

Engine = Literal["spark", "sql"]
ENGINES: tuple[Engine, ...] = ("spark", "sql")
# A chunk the stream keeps changing while Spark computes it (only possible for the archive's old
# days, where there is no exact path in MariaDB to fall back on) is computed at most this often.
ATTEMPTS = 3
_EPOCH = datetime(1970, 1, 1)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _take_windows(w: WindowRows, rows: np.ndarray) -> WindowRows:
    return WindowRows(**{name: getattr(w, name)[rows] for name in WindowRows.__dataclass_fields__})


def _take_buckets(b: BucketRows, rows: np.ndarray) -> BucketRows:
    taken = {name: getattr(b, name)[rows] for name in BucketRows.__dataclass_fields__}
    return BucketRows(**{**taken, "panel": np.arange(len(rows), dtype=np.int64)})


def _in_range(ids: np.ndarray, panels: PanelRange) -> np.ndarray:
    keep = np.ones(len(ids), dtype=bool)
    if panels[0] is not None:
        keep &= ids >= panels[0]
    if panels[1] is not None:
        keep &= ids < panels[1]
    return keep


def _compute(spark: SparkSession, settings: Settings, archive: Archive, chunk: Chunk, partitions: int
             ) -> derive.Derived:
    gap = timedelta(seconds=settings.energy_max_gap_seconds)
    a, b = chunk.start - gap, chunk.end + gap
    readings = (raw_readings(spark, settings, a, b) if chunk.source == PANDATA
                else archived_readings(spark, archive, a, b))
    rows = derive.on_spark(readings, _micros(chunk.start), _micros(chunk.end), settings.energy_max_gap_seconds,
                           partitions)
    return derive.split(rows)


def _write(settings: Settings, chunk: Chunk, panel_sets: list[PanelRange], rows: derive.Derived,
           seen: list[changes.Mark], report: RebuildReport) -> bool:
    """Write a computed chunk (see the module docstring); False when the stream changed it meanwhile
    and panelData cannot recompute it (the caller computes it again)."""
    eng = db.engine(settings, bulk_load=True)
    whole_day = chunk.folded_day is not None
    redone = False
    with db.read_committed(eng) as conn:
        for panels in ([ALL_PANELS] if whole_day else panel_sets):
            hold_stream_off(conn)
            if changed_since(conn, chunk.start, chunk.end, seen):
                if chunk.source != PANDATA:
                    conn.rollback()
                    return False
                w, p = shared.recompute_chunk_in_sql(conn, chunk, panels, settings.energy_max_gap_seconds)
                redone = True
            else:
                w_rows = np.flatnonzero(_in_range(rows.window_ids, panels))
                b_rows = np.flatnonzero(_in_range(rows.bucket_ids, panels))
                window_columns = (window_load_columns(rows.window_ids[w_rows], _take_windows(rows.windows, w_rows))
                                  if chunk.windows else None)
                bucket_columns = bucket_load_columns(rows.bucket_ids[b_rows], _take_buckets(rows.buckets, b_rows))
                replace_rows(conn, chunk.start, chunk.end, panels, window_columns, bucket_columns)
                w, p = (len(w_rows) if chunk.windows else 0), len(b_rows)
            report.windows += w
            report.panel_buckets += p
            if not whole_day:
                conn.commit()
        energy.recompute_fleet_buckets(conn, chunk.start, chunk.end)
        if chunk.folded_day is not None:  # with its buckets: lifetime energy never counts the day twice
            folding.unfold(conn, chunk.folded_day)
        report.readings += shared.bucket_readings(conn, chunk.start, chunk.end)
        conn.commit()
    report.chunks_recomputed_in_sql += int(redone)
    return True


def rebuild(settings: Settings, start: datetime, end: datetime, *, engine: Engine = "spark",
            chunk: timedelta = timedelta(hours=1), panels_per_chunk: int = 20_000, progress: Progress | None = None,
            rollups: bool = True, spark: SparkSession | None = None, partitions: int | None = None) -> RebuildReport:
    """Recompute every derived table over `[start, end)` (see `storage.rebuild`), on Spark by default.

    Raises `RebuildError` (nothing changed) when part of the range has no source, and when a
    blocking rollup check fails (the served rollups stay unchanged).
    """
    if engine not in ENGINES:
        raise RebuildError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "sql":
        return shared.rebuild(settings, start, end, chunk=chunk, panels_per_chunk=panels_per_chunk,
                              progress=progress, rollups=rollups)
    a, b = shared.align(start, end)
    eng = db.engine(settings)
    with db.read_committed(eng) as conn:
        planned = shared.plan(conn, settings, a, b, chunk)
        panel_sets = shared.panel_ranges(conn, panels_per_chunk)
        conn.commit()
    if spark is None:
        from solar_platform.runtime.spark_session import build_session

        spark = build_session(settings, app_name="solar-platform-rebuild")
    partitions = partitions or max(2, 2 * spark.sparkContext.defaultParallelism)
    archive = Archive.of(settings)
    report = RebuildReport(a, b, engine="spark", chunks=len(planned),
                           chunks_from_archive=sum(c.source == ARCHIVE for c in planned))
    notify = progress or (lambda _phase, _done, _total: None)
    began = time.perf_counter()
    with shared.stream_summaries_in_every_batch(settings) as renew:
        for i, piece in enumerate(planned):
            for _attempt in range(ATTEMPTS):
                with eng.connect() as conn:
                    seen = changes.marks(conn, piece.start, piece.end)
                rows = _compute(spark, settings, archive, piece, partitions)
                if _write(settings, piece, panel_sets, rows, seen, report):
                    break
            else:
                raise RebuildError(f"the stream changed {piece.start:%Y-%m-%d %H:%M} .. {piece.end:%H:%M} UTC during "
                                   f"each of {ATTEMPTS} attempts; run the rebuild again")
            renew()
            notify("windows and buckets", i + 1, len(planned))
        return shared.finish(eng, settings, report, [c for c in planned if c.source == PANDATA], began, notify,
                             rollups)
