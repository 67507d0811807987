"""Retention of the raw tables: day partitions made ahead, expired ones dropped; table sizes cheaply.

`panelData` and `panelDataAgg` are partitioned `BY RANGE (TO_DAYS(<time>))` (sql/0005): `p_start`
(before 2000, always empty), one partition per UTC day named `pYYYYMMDD`, and `p_future`
(MAXVALUE) for days not created yet.

- `ensure_day_partitions` splits `p_future` with `REORGANIZE PARTITION` into the missing days
  from the last day partition (or, on a table without any, from the oldest row already in
  `p_future`, or today) through today + `raw_partition_days_ahead`. Rows already in `p_future`
  move into their day (MariaDB copies them; on an empty `p_future` it is a metadata change).
- `drop_expired_partitions` drops the day partitions wholly older than `raw_retention_days`: a
  metadata operation, not a `DELETE` of billions of rows.
- `prune_stream_progress` deletes heartbeat rows older than `stream_progress_retention_hours`, in
  bounded chunks along its `recorded_at` index.

`run_retention` also keeps every other growing table bounded (`storage/history/folding.py`): old
energy buckets fold into their daily rollups (which are kept forever), dead letters are pruned, and
the raw archive's old days go when `SOLAR_ARCHIVE_RETENTION_DAYS` is set (never by default).

Periodic paths never `COUNT(*)` a large table: `estimated_rows` reads the storage engine's own
estimate from `information_schema`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, text

from solar_platform.settings import Settings
from solar_platform.storage.db import READINGS, RETENTION_HORIZONS, WINDOWS, engine
from solar_platform.storage.history import archive, folding

# partitioned raw table -> the column its partitions are by (also its indexed time column)
PARTITIONED = {READINGS: "time_data", WINDOWS: "window_start"}
FUTURE = "p_future"
START = "p_start"
# MySQL's TO_DAYS(d) is Python's d.toordinal() + 365.
_TO_DAYS_OFFSET = 365
_LOCK = "solar_platform.partitions"


def partition_name(day: date) -> str:
    return f"p{day:%Y%m%d}"


def to_days(day: date) -> int:
    return day.toordinal() + _TO_DAYS_OFFSET


def from_days(value: int) -> date:
    return date.fromordinal(value - _TO_DAYS_OFFSET)


@dataclass(frozen=True)
class Partition:
    name: str
    upper: date | None  # exclusive upper bound (a day); None for MAXVALUE
    rows_estimate: int


def partitions(conn: Connection, table: str) -> list[Partition]:
    """The table's range partitions in order, with the engine's row estimates (no scan)."""
    rows = conn.execute(text(
        "SELECT PARTITION_NAME, PARTITION_DESCRIPTION, TABLE_ROWS FROM information_schema.PARTITIONS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t AND PARTITION_NAME IS NOT NULL "
        "ORDER BY PARTITION_ORDINAL_POSITION"), {"t": table}).all()
    return [Partition(name, None if desc == "MAXVALUE" else from_days(int(desc)), int(n or 0))
            for name, desc, n in rows]


def estimated_rows(conn: Connection, table: str) -> int:
    """InnoDB's row estimate for a table (all partitions), from `information_schema`: no scan."""
    value = conn.execute(text(
        "SELECT SUM(TABLE_ROWS) FROM information_schema.PARTITIONS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"), {"t": table}).scalar()
    return int(value or 0)


@contextmanager
def _partition_lock(conn: Connection, timeout_s: int = 120) -> Iterator[None]:
    """One partition maintainer at a time per database (migrate, the retention job, a rebuild)."""
    name = f"{_LOCK}.{conn.execute(text('SELECT DATABASE()')).scalar()}"
    if not conn.execute(text("SELECT GET_LOCK(:n, :t)"), {"n": name, "t": timeout_s}).scalar():
        raise TimeoutError(f"another process holds the partition lock {name!r}")
    try:
        yield
    finally:
        conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _ensure_table(conn: Connection, table: str, through: date, first_day: date | None, today: date) -> list[str]:
    column = PARTITIONED[table]
    parts = partitions(conn, table)
    if not parts or parts[-1].name != FUTURE:
        raise RuntimeError(f"{table} is not range-partitioned with {FUTURE}; run the migrations")
    day_parts = [p for p in parts if p.upper is not None and p.name != START]
    if day_parts:
        start = day_parts[-1].upper  # the day after the last one made
    else:
        oldest = conn.execute(text(
            f"SELECT DATE(MIN({column})) FROM `{table}` PARTITION ({FUTURE})")).scalar()  # index: one seek
        start = min(d for d in (today, oldest, first_day) if d is not None)
    assert start is not None
    days = _days(start, through) if start <= through else []
    if not days:
        return []
    specs = ", ".join(f"PARTITION {partition_name(d)} VALUES LESS THAN ({to_days(d + timedelta(days=1))})"
                      for d in days)
    conn.execute(text(f"ALTER TABLE `{table}` REORGANIZE PARTITION {FUTURE} INTO "
                      f"({specs}, PARTITION {FUTURE} VALUES LESS THAN MAXVALUE)"))
    return [partition_name(d) for d in days]


def ensure_day_partitions(settings: Settings, *, today: date | None = None, first_day: date | None = None,
                          through: date | None = None) -> dict[str, list[str]]:
    """Create the missing day partitions of the raw tables; returns `{table: [created names]}`.

    Days run from the day after the last day partition (a table without any starts at the oldest
    row in `p_future`, `first_day` or today, whichever is earliest) through `through` (default
    today + `raw_partition_days_ahead`, UTC). Idempotent.
    """
    today = today or datetime.now(UTC).date()
    through = through or today + timedelta(days=settings.raw_partition_days_ahead)
    created: dict[str, list[str]] = {}
    with engine(settings).connect() as conn, _partition_lock(conn):
        conn.execute(text("SET SESSION lock_wait_timeout = 120"))
        for table in PARTITIONED:
            created[table] = _ensure_table(conn, table, through, first_day, today)
        conn.commit()
    return created


@dataclass
class DropReport:
    dropped: dict[str, list[str]] = field(default_factory=dict)
    rows_estimate: dict[str, int] = field(default_factory=dict)


def drop_expired_partitions(settings: Settings, *, today: date | None = None) -> DropReport:
    """Drop the day partitions whose whole day is older than `raw_retention_days` (UTC days).

    A partition holding days before `today - raw_retention_days` only is dropped; the newest
    `raw_retention_days` days (and today) stay. `p_start` and `p_future` always stay.
    """
    today = today or datetime.now(UTC).date()
    keep_from = today - timedelta(days=settings.raw_retention_days)
    report = DropReport()
    with engine(settings).connect() as conn, _partition_lock(conn):
        conn.execute(text("SET SESSION lock_wait_timeout = 120"))
        for table in PARTITIONED:
            expired = [p for p in partitions(conn, table)
                       if p.name not in (START, FUTURE) and p.upper is not None and p.upper <= keep_from]
            report.dropped[table] = [p.name for p in expired]
            report.rows_estimate[table] = sum(p.rows_estimate for p in expired)
            if expired:
                conn.execute(text(f"ALTER TABLE `{table}` DROP PARTITION {', '.join(p.name for p in expired)}"))
                # Readings before the newest dropped day's end are gone: a rebuild reads the archive there.
                record_dropped_before(conn, table, max(p.upper for p in expired if p.upper is not None))
        conn.commit()
    return report


def record_dropped_before(conn: Connection, table: str, day: date) -> None:
    """Note that `table` holds nothing before `day` (UTC midnight) any more; the horizon only moves on."""
    conn.execute(text(
        f"INSERT INTO {RETENTION_HORIZONS} (table_name, dropped_before, changed_at) VALUES (:t, :d, UTC_TIMESTAMP(3)) "
        f"ON DUPLICATE KEY UPDATE dropped_before = GREATEST(dropped_before, VALUES(dropped_before)), "
        "changed_at = VALUES(changed_at)"), {"t": table, "d": datetime.combine(day, datetime.min.time())})


def prune_stream_progress(settings: Settings, *, now: datetime | None = None, chunk: int = 10_000) -> int:
    """Delete stream_progress rows older than `stream_progress_retention_hours`; returns the rows deleted.

    In chunks of `chunk` rows (each its own short transaction along the `recorded_at` index), so
    the stream's own inserts never wait long.
    """
    now = now or datetime.now(UTC)
    cutoff = now.astimezone(UTC).replace(tzinfo=None) - timedelta(hours=settings.stream_progress_retention_hours)
    deleted = 0
    while True:
        with engine(settings).begin() as conn:
            n = conn.execute(text("DELETE FROM stream_progress WHERE recorded_at < :c ORDER BY recorded_at LIMIT :n"),
                             {"c": cutoff, "n": chunk}).rowcount
        deleted += int(n)
        if n < chunk:
            return deleted


@dataclass
class RetentionReport:
    created: dict[str, list[str]]
    dropped: DropReport
    stream_progress_pruned: int
    folded: folding.FoldReport
    dead_letters_pruned: int
    archive_days_dropped: list[str]

    def metadata(self) -> dict[str, object]:
        return {
            "partitions_created": sum(len(v) for v in self.created.values()),
            "partitions_dropped": sum(len(v) for v in self.dropped.dropped.values()),
            "rows_dropped_estimate": sum(self.dropped.rows_estimate.values()),
            "stream_progress_rows_pruned": self.stream_progress_pruned,
            "created": {t: v for t, v in self.created.items() if v},
            "dropped": {t: v for t, v in self.dropped.dropped.items() if v},
            "days_folded": self.folded.folded,
            "panel_buckets_folded": self.folded.buckets_deleted,
            "days_waiting_for_rollup": self.folded.waiting_for_rollup,
            "days_not_folded_rollup_differs": self.folded.mismatched,
            "dead_letters_pruned": self.dead_letters_pruned,
            "archive_days_dropped": self.archive_days_dropped,
        }


def run_retention(settings: Settings, *, now: datetime | None = None) -> RetentionReport:
    """The daily upkeep of every growing table: make the raw days ahead, drop expired raw days, prune
    the heartbeat table and the dead letters, fold old buckets into their daily rollups, and drop
    the archive's days past its retention (none by default)."""
    now = now or datetime.now(UTC)
    today = now.astimezone(UTC).date()
    created = ensure_day_partitions(settings, today=today)
    dropped = drop_expired_partitions(settings, today=today)
    pruned = prune_stream_progress(settings, now=now)
    folded = folding.fold_buckets(settings, now=now)
    letters = folding.prune_dead_letters(settings, now=now)
    archived = archive.drop_expired_days(settings, today=today)
    return RetentionReport(created, dropped, pruned, folded, letters, [d.isoformat() for d in archived])
