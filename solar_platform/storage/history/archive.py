"""The raw archive: every reading the stream accepts, as Parquet, one directory per UTC day.

It outlives MariaDB's raw retention: rebuilds read it where panelData no longer holds the readings
(`history.rebuild`), and it is kept for ever unless `SOLAR_ARCHIVE_RETENTION_DAYS` says otherwise.

**Where.** `settings.archive_location`: a local directory by default (`<SOLAR_HOME>/archive/<database>`),
or any URI that both pyarrow (the stream's writer) and Spark (compaction, rebuilds) reach: `hdfs://`
or S3 (`s3a://bucket/path`, written by pyarrow as `s3://`); README "Raw archive".

**Layout.** `<root>/day=YYYY-MM-DD/` (the UTC day of `time_data`) holds
- `batch-<query id>-<batch id>.parquet`: what one stream batch accepted for that day, written before
  the batch's MariaDB transaction;
- `compacted-<key>-<n>.parquet`: a day compacted into a few files (`history.compaction`).
Files are written under a dot name and then renamed, so no reader ever sees half a file (Spark and
pyarrow skip names starting with `.` or `_`).

**Exactly once: batch-id idempotent paths**, not Spark's file-sink log. A batch's file is named by
the query id and batch id, which Spark's checkpoint gives a replay unchanged; it is written before
the batch's transaction commits. A crash before the commit replays the same offsets, and the replay
rewrites the same file; a crash after it finds the file already written. So a committed batch is
always archived, and never twice. A file-sink log (`_spark_metadata`) would need a second query
reading Kafka again, and only readers that honour the log would see exactly once; plain paths keep
the archive readable by anything that reads Parquet.

**Resolution, the rule defined once (`INGEST_ORDER`).** The archive keeps every accepted reading,
re-sent ones too. For each (Panel_id, time_data) the row panelData keeps is the one with the greatest
(`ingested_at`, `kafka_partition`, `kafka_offset`): a later batch wins (the stream commits batches in
order), and within a batch the later Kafka position wins, as `storage.stream.readings.from_arrow`
dedupes a batch. `ingested_at` is the batch's start (UTC), the same for all its rows; a replay
rewrites its file with its own.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from solar_platform.contracts import PANEL_ID, POWER, STATUS, TIME_MICROS
from solar_platform.settings import Settings

# Column names: panelData's four, then where each reading came from.
INGESTED_AT = "ingested_at"
KAFKA_PARTITION = "kafka_partition"
KAFKA_OFFSET = "kafka_offset"
TIME = "time_data"
SCHEMA = pa.schema([
    pa.field(PANEL_ID, pa.string(), nullable=False),
    pa.field(POWER, pa.float64(), nullable=False),
    pa.field(STATUS, pa.int8(), nullable=False),
    pa.field(TIME, pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field(INGESTED_AT, pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field(KAFKA_PARTITION, pa.int32(), nullable=False),
    pa.field(KAFKA_OFFSET, pa.int64(), nullable=False),
])
KEY = (PANEL_ID, TIME)
# The row panelData keeps for a KEY is the one that is greatest in this order (see the module docstring).
INGEST_ORDER = (INGESTED_AT, KAFKA_PARTITION, KAFKA_OFFSET)

DAY_PREFIX = "day="
BATCH_PREFIX = "batch-"
COMPACTED_PREFIX = "compacted-"
_DAY_DIR = re.compile(r"^day=(\d{4}-\d{2}-\d{2})$")
_MS = 1000
_DAY_MS = 86_400_000


# --------------------------------------------------------------------------- where
def pyarrow_uri(location: str) -> str:
    """The location as pyarrow's filesystems name it (`s3a://` is Hadoop's name for `s3://`)."""
    return "s3://" + location[len("s3a://"):] if location.startswith("s3a://") else location


def spark_uri(location: str) -> str:
    """The location as Spark's Hadoop filesystems name it: a local path becomes `file://`, `s3://` `s3a://`."""
    if location.startswith("s3://"):
        return "s3a://" + location[len("s3://"):]
    if "://" not in location:
        from pathlib import Path

        return Path(location).resolve().as_uri()
    return location


@dataclass(frozen=True)
class Archive:
    """The archive at a location: its filesystem and root path (pyarrow's view of it)."""

    location: str
    fs: pafs.FileSystem
    root: str

    @classmethod
    def at(cls, location: str) -> Archive:
        uri = pyarrow_uri(location)
        if "://" not in uri:
            from pathlib import Path

            uri = str(Path(uri).resolve())
        fs, root = pafs.FileSystem.from_uri(uri)
        return cls(location, fs, root.rstrip("/"))

    @classmethod
    def of(cls, settings: Settings) -> Archive:
        return cls.at(settings.archive_location)

    def day_dir(self, day: date) -> str:
        return f"{self.root}/{DAY_PREFIX}{day.isoformat()}"

    def spark_path(self, path: str) -> str:
        """A pyarrow path under the root as Spark names it."""
        relative = path[len(self.root):].lstrip("/")
        return f"{spark_uri(self.location).rstrip('/')}/{relative}"

    def days(self) -> list[date]:
        """The UTC days that have a directory, oldest first."""
        infos = self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))
        found = [_DAY_DIR.match(info.base_name) for info in infos if info.type == pafs.FileType.Directory]
        return sorted(date.fromisoformat(m.group(1)) for m in found if m)

    def files(self, day: date) -> list[str]:
        """A day's Parquet files (pyarrow paths), in name order; temporary names are not listed."""
        infos = self.fs.get_file_info(pafs.FileSelector(self.day_dir(day), allow_not_found=True))
        return sorted(info.path for info in infos if info.type == pafs.FileType.File
                      and info.base_name.endswith(".parquet") and not info.base_name.startswith((".", "_")))

    def write(self, path: str, table: pa.Table) -> None:
        """Write `table` at `path` whole or not at all: under a dot name, then renamed over `path`."""
        folder, _, name = path.rpartition("/")
        self.fs.create_dir(folder, recursive=True)
        temporary = f"{folder}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
        pq.write_table(table, temporary, filesystem=self.fs, compression="zstd")
        self.fs.move(temporary, path)

    def read_day(self, day: date) -> pa.Table:
        """Every row archived for a day (unresolved), in pyarrow: small days, checks and tests."""
        files = self.files(day)
        if not files:
            return SCHEMA.empty_table()
        return pa.concat_tables(pq.read_table(f, filesystem=self.fs, schema=SCHEMA) for f in files)


# --------------------------------------------------------------------------- the stream's writer
def batch_file_name(query_id: str, batch_id: int) -> str:
    return f"{BATCH_PREFIX}{query_id}-{batch_id:012d}.parquet"


def batch_rows(readings: pa.Table, ingested_at: datetime) -> pa.Table:
    """A batch's accepted readings (the stream's judged table: the contract's fields with the time as
    epoch µs, `partition`, `offset`) as archive rows."""
    micros = int((ingested_at.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
    times = pc.divide(readings.column(TIME_MICROS).cast(pa.int64()), _MS)
    return pa.table([
        readings.column(PANEL_ID).cast(pa.string()), readings.column(POWER).cast(pa.float64()),
        readings.column(STATUS).cast(pa.int8()), times.cast(pa.timestamp("ms", tz="UTC")),
        pa.array(np.full(readings.num_rows, micros, dtype=np.int64), pa.timestamp("us", tz="UTC")),
        readings.column("partition").cast(pa.int32()), readings.column("offset").cast(pa.int64()),
    ], schema=SCHEMA)


def write_batch(archive: Archive, query_id: str, batch_id: int, ingested_at: datetime, readings: pa.Table) -> int:
    """Archive one stream batch's accepted readings, a file per UTC day at a path named by the query
    and batch id (a replay rewrites the same files); returns the files written."""
    if readings.num_rows == 0:
        return 0
    rows = batch_rows(readings, ingested_at)
    day_number = np.asarray(pc.divide(rows.column(TIME).cast(pa.int64()), _DAY_MS), dtype=np.int64)
    name = batch_file_name(query_id, batch_id)
    written = 0
    for number in np.unique(day_number):
        day = date(1970, 1, 1) + timedelta(days=int(number))
        archive.write(f"{archive.day_dir(day)}/{name}", rows.filter(pa.array(day_number == number)))
        written += 1
    return written


# --------------------------------------------------------------------------- resolution and retention
def resolve(rows: pa.Table) -> pa.Table:
    """The rows panelData keeps (`INGEST_ORDER`), sorted by KEY: for small tables (checks, tests);
    Spark applies the same order in `history.archive_reads`."""
    if rows.num_rows == 0:
        return rows
    order = rows.sort_by([(name, "ascending") for name in (*KEY, *INGEST_ORDER)])
    panel = order.column(PANEL_ID).to_numpy(zero_copy_only=False)
    time = order.column(TIME).cast(pa.int64()).to_numpy()
    last = np.append((panel[1:] != panel[:-1]) | (time[1:] != time[:-1]), True)
    return order.filter(pa.array(last))


def drop_expired_days(settings: Settings, *, today: date | None = None) -> list[date]:
    """Delete the archive's days older than `archive_retention_days` (0, the default: keep all)."""
    if not settings.archive_retention_days:
        return []
    today = today or datetime.now(UTC).date()
    keep_from = today - timedelta(days=settings.archive_retention_days)
    archive = Archive.of(settings)
    expired = [day for day in archive.days() if day < keep_from]
    for day in expired:
        archive.fs.delete_dir(archive.day_dir(day))
    return expired
