"""Change marks: which 15-minute buckets changed, so that daily figures follow late data.

The stream marks, in each batch's own transaction, every bucket whose panel (and so fleet) figures
that batch changed: one row per bucket, its `version` bumped on every change. A daily rollup reads
the marks of its days *before* it stages them and, once its rows are served, deletes each mark only
if its version is still the one it read (`consume`). So a mark exists exactly while its bucket holds
a change that no served rollup has seen: a change committed during a rollup keeps its mark (its
version moved), and the next rollup of that day picks it up.

A quarter-hour belongs to one local day in every real time zone (offsets are multiples of 15
minutes), so each mark names one day of whatever zone the site uses, now or later.

Cost on the live path: one statement per batch, a row or two (the live buckets).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, bindparam, text

from solar_platform.storage.db import ENERGY_CHANGES, FLEET_DAILY_ENERGY
from solar_platform.storage.periods import local_day, zone

_EPOCH = datetime(1970, 1, 1)
_BUMP = (f"ON DUPLICATE KEY UPDATE {ENERGY_CHANGES}.version = {ENERGY_CHANGES}.version + 1, "
         f"{ENERGY_CHANGES}.changed_at = VALUES(changed_at)")
# The exact path's per-bucket deltas (storage/stream/corrections.py) live in this scratch table.
_MARK_EXACT = text(f"INSERT INTO {ENERGY_CHANGES} (bucket_start, version, changed_at) "
                   f"SELECT DISTINCT bucket_start, 1, UTC_TIMESTAMP(3) FROM tmp_bucket_delta {_BUMP}")


def mark_changed_buckets(conn: Connection, appended_bucket_starts_s: npt.NDArray[np.int64] | None, *,
                         exact_path_changed: bool) -> None:
    """Mark the buckets a batch changed, in its transaction: those of its appends (epoch seconds,
    from the append plan) and, when the exact path changed anything, those of its deltas."""
    if appended_bucket_starts_s is not None and appended_bucket_starts_s.size:
        starts = np.unique(appended_bucket_starts_s)
        values = ", ".join(f"(:b{i}, 1, UTC_TIMESTAMP(3))" for i in range(starts.size))
        conn.execute(text(f"INSERT INTO {ENERGY_CHANGES} (bucket_start, version, changed_at) VALUES {values} {_BUMP}"),
                     {f"b{i}": _EPOCH + timedelta(seconds=int(s)) for i, s in enumerate(starts)})
    if exact_path_changed:
        conn.execute(_MARK_EXACT)


@dataclass(frozen=True, order=True)
class Mark:
    bucket_start: datetime  # naive UTC
    version: int
    changed_at: datetime


def marks(conn: Connection, start: datetime | None = None, end: datetime | None = None) -> list[Mark]:
    """The marks of buckets in `[start, end)` (all when unbounded), oldest bucket first."""
    rows = conn.execute(text(
        f"SELECT bucket_start, version, changed_at FROM {ENERGY_CHANGES} "
        "WHERE (:a IS NULL OR bucket_start >= :a) AND (:b IS NULL OR bucket_start < :b) ORDER BY bucket_start"),
        {"a": start, "b": end}).all()
    return [Mark(b, int(v), c) for b, v, c in rows]


def consume(conn: Connection, seen: Sequence[Mark]) -> int:
    """Delete the marks a served rollup has seen, each only if its version did not move since."""
    if not seen:
        return 0
    result = conn.execute(text(f"DELETE FROM {ENERGY_CHANGES} WHERE bucket_start = :b AND version = :v"),
                          [{"b": m.bucket_start, "v": m.version} for m in seen])
    return int(result.rowcount)


def days_of(seen: Iterable[Mark], tz: str) -> dict[date, datetime]:
    """The local days of `tz` the marks fall in, each with its newest change."""
    zone_info = zone(tz)
    days: dict[date, datetime] = {}
    for mark in seen:
        day = local_day(mark.bucket_start, zone_info)
        days[day] = max(days.get(day, mark.changed_at), mark.changed_at)
    return days


def rolled_days_with_changes(conn: Connection, tz: str, today: date) -> dict[date, datetime]:
    """Days before `today` that have a served rollup and a change it has not seen: the days to roll
    up again, each with its newest change. Reads the marks (a row per changed bucket not yet rolled)
    and the daily rollups' keys; never a bucket or a reading."""
    changed = {day: at for day, at in days_of(marks(conn), tz).items() if day < today}
    if not changed:
        return {}
    rolled = {d for (d,) in conn.execute(text(f"SELECT day FROM {FLEET_DAILY_ENERGY} WHERE day IN :days").bindparams(
        bindparam("days", expanding=True)), {"days": sorted(changed)})}
    return {day: at for day, at in changed.items() if day in rolled}
