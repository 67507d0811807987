"""Rebuild every derived table from panelData over a time range: after a bulk import (`LOAD DATA`),
a restore or a repair.

For `[from, to)` widened to whole 15-minute buckets, in chunks (each its own transaction):

1. the 30-second windows (`panelDataAgg`) and the panel and fleet energy buckets, with
   `storage/energy.py`'s `recompute_windows` / `recompute_buckets` (the same model the stream keeps);
2. then `panel_latest` and the registry's first/last seen (`panels`);
3. then the daily rollups of every site-time-zone day the range touches, staged, checked and
   swapped in like the Dagster rollup (`storage/rollups.py`).

Idempotent: each step deletes and rewrites its range, so a second run gives the same rows. The
result equals what the stream keeps on the same raw rows (the tests compare the two).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from solar_platform.settings import Settings
from solar_platform.storage import db, energy, windows
from solar_platform.storage import rollups as daily_rollups

BUCKET = timedelta(seconds=energy.BUCKET_SECONDS)


class RebuildError(RuntimeError):
    """A rebuild that cannot run (bad range) or whose rollup checks failed."""


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


@dataclass
class RebuildReport:
    start: datetime
    end: datetime
    chunks: int = 0
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
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "chunks": self.chunks,
                "readings": self.readings, "windows": self.windows, "panel_buckets": self.panel_buckets,
                "panels_latest": self.panels_latest, "days": self.days, "panel_days": self.panel_days,
                "seconds": round(self.seconds, 3), "readings_per_second": round(self.readings_per_second)}


Progress = Callable[[str, int, int], None]  # (phase, done, total)


def rebuild(settings: Settings, start: datetime, end: datetime, *, chunk: timedelta = timedelta(hours=1),
            progress: Progress | None = None, rollups: bool = True) -> RebuildReport:
    """Recompute windows, energy buckets, panel_latest, registry first/last seen and the daily
    rollups of the days touched, from panelData over `[start, end)` (see the module docstring).

    Raises `RebuildError` when a blocking rollup check fails (the served rollups stay unchanged;
    the windows and buckets are rebuilt already and the rollups can be retried).
    """
    a, b = align(start, end)
    pieces = chunks(a, b, chunk)
    report = RebuildReport(a, b, chunks=len(pieces))
    engine = db.engine(settings)
    notify = progress or (lambda _phase, _done, _total: None)
    began = time.perf_counter()
    gap = settings.energy_max_gap_seconds
    for i, (ca, cb) in enumerate(pieces):
        with engine.begin() as conn:
            report.windows += windows.recompute_windows(conn, ca, cb)
            report.panel_buckets += energy.recompute_buckets(conn, ca, cb, gap)
            report.readings += int(conn.execute(text(
                "SELECT COALESCE(SUM(readings), 0) FROM fleet_energy_15min WHERE bucket_start >= :a "
                "AND bucket_start < :b"), {"a": ca, "b": cb}).scalar())
        notify("windows and buckets", i + 1, len(pieces))
    with engine.begin() as conn:
        report.panels_latest = energy.recompute_latest(conn)
        conn.execute(text(
            f"INSERT INTO {db.PANELS} (panel_id, pmax_w, first_seen, last_seen, updated_at) "
            "SELECT panel_id, NULL, first_seen, last_seen, UTC_TIMESTAMP(3) FROM panel_latest "
            f"ON DUPLICATE KEY UPDATE first_seen = LEAST(COALESCE({db.PANELS}.first_seen, VALUES(first_seen)), "
            f"VALUES(first_seen)), last_seen = GREATEST(COALESCE({db.PANELS}.last_seen, VALUES(last_seen)), "
            "VALUES(last_seen))"))
    notify("panel_latest and registry", 1, 1)
    report.derived_seconds = time.perf_counter() - began
    if rollups:
        days = daily_rollups.days_touching(a, b, settings.site_timezone)
        report.days = [d.isoformat() for d in days]
        run = daily_rollups.roll_up_days(engine, settings, f"rebuild-{uuid.uuid4().hex[:20]}", days)
        report.rollup = run
        notify("daily rollups", 1, 1)
        if run.served is None:
            report.seconds = time.perf_counter() - began
            raise RebuildError(f"daily rollups of {days[0]}..{days[-1]} not served: blocking check(s) "
                               f"{', '.join(run.failures())} failed: "
                               f"{[run.checks[n].metadata for n in run.failures()]}")
        report.panel_days = run.served[0]
    report.seconds = time.perf_counter() - began
    return report
