"""A closed UTC day of the raw archive compacted into a few files, and checked against panelData.

**Compaction** (Dagster asset `raw_archive`, one partition per UTC day) reads the day's files (one
per stream batch, and earlier compactions), keeps the rows panelData keeps (the archive's rule,
with their ingest columns, so later files still resolve against them), and writes them sorted by
(hour, panel, time) as at most `SOLAR_ARCHIVE_COMPACTED_FILES_PER_DAY` files. Spark writes them under
`_compaction/` (ignored by every reader); they are then moved into the day and only then are the
files they replace deleted. A reader in between sees some rows twice, with equal ingest columns,
so the rule resolves them alike; a crash leaves the inputs, and the next run compacts them again.
A batch file that lands while it runs is not an input and stays.

**The check** compares the compacted day with panelData while panelData still holds the day: the
same number of rows, and for a sample of panels (`SOLAR_ARCHIVE_CHECK_SAMPLE_PANELS`) the same rows
with the same values, row for row. Counting the day's rows in panelData is one range of its time
index; the sample reads a few panels' rows by key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pyarrow.fs as pafs
from pyspark.sql import SparkSession
from pyspark.sql import functions as sf
from sqlalchemy import Engine, bindparam, text

from solar_platform.contracts import PANEL_ID, POWER, STATUS
from solar_platform.history.sources import archive_frame, resolved
from solar_platform.settings import Settings
from solar_platform.storage.db import READINGS
from solar_platform.storage.history import sources as raw_sources
from solar_platform.storage.history.archive import COMPACTED_PREFIX, TIME, Archive

SCRATCH = "_compaction"


@dataclass
class Compaction:
    day: date
    files_before: int = 0
    files_after: int = 0
    rows_in: int = 0
    rows_kept: int = 0
    bytes_after: int = 0

    def metadata(self) -> dict[str, object]:
        return {"day": self.day.isoformat(), "files_before": self.files_before, "files_after": self.files_after,
                "rows_archived": self.rows_in, "rows_kept": self.rows_kept, "bytes": self.bytes_after,
                "bytes_per_row": round(self.bytes_after / self.rows_kept, 2) if self.rows_kept else 0.0}


def compact_day(spark: SparkSession, archive: Archive, day: date, files_per_day: int) -> Compaction:
    """Compact one UTC day of the archive (see the module docstring); idempotent."""
    report = Compaction(day)
    inputs = archive.files(day)
    report.files_before = len(inputs)
    rows = archive_frame(spark, archive, [day])
    if rows is None:
        return report
    report.rows_in = rows.count()
    key = uuid.uuid4().hex[:12]
    scratch = f"{archive.root}/{SCRATCH}/{day.isoformat()}-{key}"
    # Sorted by hour, then panel and time: a Parquet row group then spans about an hour, so a reader
    # of one hour (a rebuild's chunk) skips the others by their statistics, and each panel's readings
    # of the hour sit together (they compress well).
    kept = resolved(rows).repartition(files_per_day, PANEL_ID).sortWithinPartitions(
        sf.date_trunc("hour", sf.col(TIME)), PANEL_ID, TIME)
    kept.write.mode("overwrite").option("compression", "zstd").parquet(archive.spark_path(scratch))
    parts = sorted(info.path for info in archive.fs.get_file_info(pafs.FileSelector(scratch))
                   if info.base_name.startswith("part-") and info.base_name.endswith(".parquet"))
    for number, part in enumerate(parts):
        archive.fs.move(part, f"{archive.day_dir(day)}/{COMPACTED_PREFIX}{key}-{number:03d}.parquet")
    for path in inputs:  # only now: until here every row is in an input file
        archive.fs.delete_file(path)
    archive.fs.delete_dir(scratch)
    after = archive.files(day)
    report.files_after = len(after)
    report.bytes_after = sum(info.size for info in archive.fs.get_file_info(after))
    report.rows_kept = archive_frame(spark, archive, [day]).count() if after else 0  # type: ignore[union-attr]
    return report


@dataclass
class DayCheck:
    day: date
    checked: bool  # False: panelData no longer holds the day (nothing to compare with)
    archive_rows: int = 0
    panel_data_rows: int = 0
    panels_sampled: int = 0
    rows_compared: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.checked or (self.archive_rows == self.panel_data_rows and not self.differences)

    def metadata(self) -> dict[str, object]:
        return {"day": self.day.isoformat(), "checked": self.checked, "archive_rows": self.archive_rows,
                "panel_data_rows": self.panel_data_rows, "panels_sampled": self.panels_sampled,
                "rows_compared": self.rows_compared, "differences": self.differences[:10]}


def check_day(spark: SparkSession, archive: Archive, engine: Engine, settings: Settings, day: date) -> DayCheck:
    """The archive's day (resolved) vs panelData's: row counts, and a sample of panels row for row."""
    start = datetime.combine(day, datetime.min.time())
    end = start + timedelta(days=1)
    with engine.connect() as conn:
        if not raw_sources.raw_retained(conn, start):
            return DayCheck(day, checked=False)
        panel_rows = int(conn.execute(text(f"SELECT COUNT(*) FROM {READINGS} WHERE time_data >= :a AND time_data < :b"),
                                      {"a": start, "b": end}).scalar() or 0)
    rows = archive_frame(spark, archive, [day])
    report = DayCheck(day, checked=True, panel_data_rows=panel_rows)
    if rows is None:
        if panel_rows:
            report.differences.append(f"nothing archived for {day}, {panel_rows} rows in panelData")
        return report
    kept = resolved(rows).cache()
    try:
        report.archive_rows = kept.count()
        ids = sorted(r[0] for r in kept.select(PANEL_ID).distinct().collect())
        if len(ids) > settings.archive_check_sample_panels:
            rng = np.random.default_rng(day.toordinal())
            ids = sorted(rng.choice(ids, size=settings.archive_check_sample_panels, replace=False).tolist())
        report.panels_sampled = len(ids)
        archived = {(r[0], r[1]): (float(r[2]), int(r[3])) for r in kept.where(sf.col(PANEL_ID).isin(ids)).select(
            PANEL_ID, sf.unix_micros(TIME), POWER, STATUS).collect()}
    finally:
        kept.unpersist()
    with engine.connect() as conn:
        stored = {(p, int(t)): (float(w), int(s)) for p, t, w, s in conn.execute(text(
            f"SELECT Panel_id, TIMESTAMPDIFF(MICROSECOND, TIMESTAMP'1970-01-01 00:00:00', time_data), power_panel, "
            f"current_status FROM {READINGS} WHERE Panel_id IN :ids AND time_data >= :a AND time_data < :b"
        ).bindparams(bindparam("ids", expanding=True)), {"ids": ids or [""], "a": start, "b": end})}
    report.rows_compared = len(stored)
    for key in sorted(set(archived) | set(stored)):
        if archived.get(key) != stored.get(key):
            report.differences.append(f"{key[0]} at {key[1]} µs: archive {archived.get(key)} vs panelData "
                                      f"{stored.get(key)}")
    return report
