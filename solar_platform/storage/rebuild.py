"""Rebuild every derived table over a time range: what both engines share, and the SQL engine.

`solar-platform rebuild` (and Dagster's rebuild job) recompute, for `[from, to)` widened to whole
15-minute buckets: the 30-second windows and the panel and fleet energy buckets, then
`panel_latest` and the registry's first/last seen of the panels the range holds, then the daily
rollups of every site day it touches (staged, checked and swapped in like the Dagster rollup).

**Beside the live stream.** Chunks of `chunk` (an hour by default) and of `panels_per_chunk`
panels, each its own short READ COMMITTED transaction: a read takes no shared locks the stream's
batch would wait on (REPEATABLE READ's `INSERT ... SELECT` did), and the stream's deltas that land
on a chunk before or after its transaction add up right (a statement reads what is committed; a
bucket the rebuild rewrites is locked until it commits, and the stream's delta then adds to it).

**Summaries apart.** The stream writes a batch's summaries a few seconds after its raw rows
(`storage.stream.summaries`): a rebuild would count those waiting twice, so while it runs the stream
writes them in every batch again, and it starts once none wait (`stream_summaries_in_every_batch`).

**Sources, planned before anything changes** (`plan`): panelData while it holds the chunk (the
retention horizon, `storage.history.sources`), the raw archive before that. A chunk with neither
stops the rebuild with one line and nothing changed: a rebuild never deletes figures it cannot
recompute. This SQL engine reads panelData only; the Spark engine (`history.rebuild`) reads both.
Windows follow raw retention (`panelDataAgg` is partitioned like `panelData`): a chunk read from
the archive gets its buckets only.

**Folded days** (`storage.history.folding`) come back whole: their buckets are recomputed for the
whole day in the transaction that unmarks their rollup, so lifetime energy never counts a day twice.

Idempotent: each step deletes and rewrites its range. The result equals what the stream keeps on
the same rows (tested), whichever engine ran it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, Engine, text

from solar_platform.settings import Settings
from solar_platform.storage import db, energy, windows
from solar_platform.storage import rollups as daily_rollups
from solar_platform.storage.energy import ALL_PANELS, PanelRange
from solar_platform.storage.history import folding, sources
from solar_platform.storage.history.archive import Archive
from solar_platform.storage.stream import progress, summaries

BUCKET = timedelta(seconds=energy.BUCKET_SECONDS)
# panel_latest is recomputed for this many panels per transaction (each an index seek or two).
LATEST_PANELS_PER_TRANSACTION = 5000
PANDATA, ARCHIVE = "panelData", "archive"


class RebuildError(RuntimeError):
    """A rebuild that cannot run (bad range, no source for part of it) or whose rollup checks failed."""


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def align(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """`[start, end)` widened to whole 15-minute UTC buckets (naive UTC)."""
    start, end = _naive_utc(start), _naive_utc(end)
    if not start < end:
        raise RebuildError(f"need from < to, got {start} .. {end}")
    epoch = datetime(1970, 1, 1)
    s = (start - epoch) // BUCKET * BUCKET + epoch
    e = -((epoch - end) // BUCKET) * BUCKET + epoch
    return s, e


def chunks(start: datetime, end: datetime, size: timedelta) -> list[tuple[datetime, datetime]]:
    if size < BUCKET or size % BUCKET:
        raise RebuildError(f"chunk must be a whole number of 15 minutes, got {size}")
    out, a = [], start
    while a < end:
        out.append((a, min(a + size, end)))
        a += size
    return out


@dataclass(frozen=True)
class Chunk:
    start: datetime
    end: datetime
    source: str  # PANDATA or ARCHIVE
    folded_day: date | None = None  # a folded day, whole: its buckets come back with its rollup unmarked

    @property
    def windows(self) -> bool:
        """Windows are kept as long as raw readings are: only a chunk read from panelData gets them."""
        return self.source == PANDATA


def _fmt(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}"


def plan(conn: Connection, settings: Settings, start: datetime, end: datetime, size: timedelta) -> list[Chunk]:
    """The chunks of `[start, end)` with their source; folded days it touches become one whole-day
    chunk each. Raises `RebuildError` (one line, nothing changed) when part of it has no source."""
    gap = timedelta(seconds=settings.energy_max_gap_seconds)
    days = daily_rollups.days_touching(start, end, settings.site_timezone)
    folded = folding.folded_days(conn, days) if days else {}
    spans = sorted((*daily_rollups.local_day_bounds(day, tz), day) for day, tz in folded.items())
    pieces: list[tuple[datetime, datetime, date | None]] = []
    cursor = start
    for a, b, day in spans:
        pieces += [(x, y, None) for x, y in chunks(cursor, a, size)] if cursor < a else []
        pieces.append((a, b, day))
        cursor = max(cursor, b)
    pieces += [(x, y, None) for x, y in chunks(cursor, end, size)] if cursor < end else []

    dropped = sources.raw_dropped_before(conn)
    archived = Archive.of(settings).days()
    first_archived = archived[0] if archived else None
    planned, missing = [], []
    for a, b, day in pieces:
        if dropped is None or a - gap >= dropped:
            planned.append(Chunk(a, b, PANDATA, day))
        elif first_archived is not None and a.date() >= first_archived:
            planned.append(Chunk(a, b, ARCHIVE, day))
        else:
            missing.append((a, b))
    if missing:
        archive = f"the archive starts on {first_archived}" if first_archived else "the archive is empty"
        raise RebuildError(
            f"no source for {_fmt(missing[0][0])} .. {_fmt(missing[-1][1])} UTC: retention dropped panelData's "
            f"readings before {_fmt(dropped) if dropped else '?'} and {archive}; nothing was changed")
    return planned


def panel_ranges(conn: Connection, per_range: int) -> list[PanelRange]:
    """Contiguous ranges of panel ids, about `per_range` known panels each (`panel_latest`), covering
    every id (the first and last are open), so a panel nobody saw yet still falls in one."""
    if per_range <= 0:
        return [ALL_PANELS]
    ids = [p for (p,) in conn.execute(text(f"SELECT panel_id FROM {db.PANEL_LATEST} ORDER BY panel_id"))]
    edges = ids[per_range::per_range]
    bounds: list[str | None] = [None, *edges, None]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


@dataclass
class RebuildReport:
    start: datetime
    end: datetime
    engine: str = "sql"
    chunks: int = 0
    chunks_from_archive: int = 0
    chunks_recomputed_in_sql: int = 0  # Spark chunks the stream changed meanwhile, redone exactly in MariaDB
    readings: int = 0
    windows: int = 0
    panel_buckets: int = 0
    panels_latest: int = 0
    days: list[str] = field(default_factory=list)
    panel_days: int = 0
    seconds: float = 0.0
    derived_seconds: float = 0.0
    rollup: daily_rollups.RollupRun | None = None

    @property
    def readings_per_second(self) -> float:
        return self.readings / self.derived_seconds if self.derived_seconds else 0.0

    def metadata(self) -> dict[str, object]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "engine": self.engine,
                "chunks": self.chunks, "chunks_from_archive": self.chunks_from_archive,
                "chunks_recomputed_in_sql": self.chunks_recomputed_in_sql, "readings": self.readings,
                "windows": self.windows, "panel_buckets": self.panel_buckets, "panels_latest": self.panels_latest,
                "days": self.days, "panel_days": self.panel_days, "seconds": round(self.seconds, 3),
                "readings_per_second": round(self.readings_per_second)}


Progress = Callable[[str, int, int], None]  # (phase, done, total)


def bucket_readings(conn: Connection, start: datetime, end: datetime) -> int:
    """Readings the fleet buckets of `[start, end)` count (what a chunk rebuilt)."""
    return int(conn.execute(text(f"SELECT COALESCE(SUM(readings), 0) FROM {db.FLEET_BUCKETS} "
                                 "WHERE bucket_start >= :a AND bucket_start < :b"), {"a": start, "b": end}).scalar())


def recompute_chunk_in_sql(conn: Connection, chunk: Chunk, panels: PanelRange, max_gap_s: float) -> tuple[int, int]:
    """One chunk's windows and panel buckets of a panel range, from panelData, in the caller's
    transaction; returns (windows, panel buckets) written."""
    written_windows = windows.recompute_windows(conn, chunk.start, chunk.end, panels) if chunk.windows else 0
    return written_windows, energy.recompute_panel_buckets(conn, chunk.start, chunk.end, max_gap_s, panels)


def touched_panels(conn: Connection, start: datetime, end: datetime) -> list[str]:
    """Panels with a bucket in `[start, end)`: those whose latest reading a rebuild may have moved."""
    return [p for (p,) in conn.execute(text(
        f"SELECT DISTINCT panel_id FROM {db.PANEL_BUCKETS} WHERE bucket_start >= :a AND bucket_start < :b"),
        {"a": start, "b": end})]


@contextmanager
def stream_summaries_in_every_batch(settings: Settings) -> Iterator[Callable[[], None]]:
    """While a rebuild recomputes summaries from panelData, none may wait in the stream's memory
    (`storage.stream.summaries`): it would count twice. Yields the hold's renewal, for between chunks."""
    try:
        with summaries.in_every_batch(db.engine(settings, bulk_load=True), progress.stage_lock_name(
                settings.mysql_database), settings.energy_max_gap_seconds) as renew:
            yield renew
    except TimeoutError as error:
        raise RebuildError(f"{error}: is the stream stuck? nothing was changed") from None


def finish(eng: Engine, settings: Settings, report: RebuildReport, raw_chunks: Sequence[Chunk], began: float,
           notify: Progress, rollups: bool) -> RebuildReport:
    """What follows the chunks, for both engines: `panel_latest` and the registry's first/last seen of
    the panels the raw chunks hold, then the daily rollups of the days touched."""
    with db.read_committed(eng) as conn:
        panels = sorted({p for chunk in raw_chunks for p in touched_panels(conn, chunk.start, chunk.end)})
        for first in range(0, len(panels), LATEST_PANELS_PER_TRANSACTION):
            report.panels_latest += energy.recompute_latest(conn, panels[first:first + LATEST_PANELS_PER_TRANSACTION])
            conn.commit()
        conn.execute(text(
            f"INSERT INTO {db.PANELS} (panel_id, pmax_w, first_seen, last_seen, updated_at) "
            "SELECT panel_id, NULL, first_seen, last_seen, UTC_TIMESTAMP(3) FROM panel_latest "
            f"ON DUPLICATE KEY UPDATE first_seen = LEAST(COALESCE({db.PANELS}.first_seen, VALUES(first_seen)), "
            f"VALUES(first_seen)), last_seen = GREATEST(COALESCE({db.PANELS}.last_seen, VALUES(last_seen)), "
            "VALUES(last_seen))"))
        conn.commit()
    notify("panel_latest and registry", 1, 1)
    report.derived_seconds = time.perf_counter() - began
    if rollups:
        days = daily_rollups.days_touching(report.start, report.end, settings.site_timezone)
        report.days = [d.isoformat() for d in days]
        run = daily_rollups.roll_up_days(eng, settings, f"rebuild-{uuid.uuid4().hex[:20]}", days)
        report.rollup = run
        notify("daily rollups", 1, 1)
        if run.served is None and not run.changed_meanwhile:
            report.seconds = time.perf_counter() - began
            raise RebuildError(f"daily rollups of {days[0]}..{days[-1]} not served: blocking check(s) "
                               f"{', '.join(run.failures())} failed: "
                               f"{[run.checks[n].metadata for n in run.failures()]}")
        # Days the stream changed while they were rolled up keep their marks: the sensor rolls them up again.
        report.panel_days = run.served[0] if run.served else 0
    report.seconds = time.perf_counter() - began
    return report


def rebuild(settings: Settings, start: datetime, end: datetime, *, chunk: timedelta = timedelta(hours=1),
            panels_per_chunk: int = 0, progress: Progress | None = None, rollups: bool = True) -> RebuildReport:
    """The SQL engine: recompute from panelData inside MariaDB (see the module docstring). A range
    whose readings retention dropped needs the Spark engine (`history.rebuild`), which reads the
    archive: this one refuses it with one line, before any change.

    Raises `RebuildError` when a blocking rollup check fails (the served rollups stay unchanged;
    the windows and buckets are rebuilt already and the rollups can be retried).
    """
    a, b = align(start, end)
    eng = db.engine(settings)
    gap = settings.energy_max_gap_seconds
    with db.read_committed(eng) as conn:
        planned = plan(conn, settings, a, b, chunk)
        panel_sets = panel_ranges(conn, panels_per_chunk)
        conn.commit()
    if any(c.source == ARCHIVE for c in planned):
        first = next(c for c in planned if c.source == ARCHIVE)
        raise RebuildError(f"{_fmt(first.start)} UTC onwards of the range is only in the archive (panelData's "
                           "readings expired): rebuild it with the Spark engine (--engine spark); nothing was changed")
    report = RebuildReport(a, b, engine="sql", chunks=len(planned))
    notify = progress or (lambda _phase, _done, _total: None)
    began = time.perf_counter()
    with stream_summaries_in_every_batch(settings) as renew, db.read_committed(eng) as conn:
        for i, piece in enumerate(planned):
            for panels in ([ALL_PANELS] if piece.folded_day else panel_sets):
                w, p = recompute_chunk_in_sql(conn, piece, panels, gap)
                report.windows += w
                report.panel_buckets += p
                if not piece.folded_day:
                    conn.commit()
            energy.recompute_fleet_buckets(conn, piece.start, piece.end)
            if piece.folded_day:  # in the same transaction as its buckets: lifetime never counts it twice
                folding.unfold(conn, piece.folded_day)
            report.readings += bucket_readings(conn, piece.start, piece.end)
            conn.commit()
            renew()
            notify("windows and buckets", i + 1, len(planned))
        return finish(eng, settings, report, [c for c in planned if c.source == PANDATA], began, notify, rollups)
