"""Retention of the growing tables: 15-min buckets folded into daily figures, dead letters pruned.

**Folding.** A site day older than `SOLAR_BUCKET_RETENTION_DAYS` keeps its daily rollup and loses its
panel and fleet buckets, so `panel_energy_15min` grows with the fleet, not with its history. A day
is folded only when:

- it has a served rollup and no change mark (`changes`): the rollup has seen every change;
- in the folding transaction itself, its fleet row equals the sum of the buckets about to go, and
  every panel row equals its panel's buckets (energy, coverage, readings), so a folded rollup sums
  exactly the buckets it replaces. A day that fails this is left as it is, and reported.

Lifetime energy is then the folded rollups plus every bucket kept (`queries.lifetime_energy`),
exact whichever days are folded, in whichever zone they were rolled up. A change that lands on a
folded day (a reading weeks late) adds its delta to new buckets and marks them; the day is rolled up
again (the rollups' sensor), which first restores its buckets from its readings (`restore_folded`,
from panelData while retained; from the archive on Spark otherwise, `history.rebuild`).

Each day folds in one READ COMMITTED transaction: the stream only waits if it writes that very day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, Engine, text

from solar_platform.settings import Settings
from solar_platform.storage.db import (
    DEAD_LETTERS,
    FLEET_BUCKETS,
    FLEET_DAILY_ENERGY,
    PANEL_BUCKETS,
    PANEL_DAILY_ENERGY,
    engine,
    read_committed,
)
from solar_platform.storage.energy import recompute_buckets
from solar_platform.storage.history import changes, sources
from solar_platform.storage.periods import local_day, zone
from solar_platform.storage.periods import local_day_span as local_day_bounds

# Relative tolerance between a rollup and the sum of its buckets (the same doubles, summed in
# another order).
_TOLERANCE = 1e-9


@dataclass
class FoldReport:
    folded: list[str] = field(default_factory=list)
    buckets_deleted: int = 0
    waiting_for_rollup: list[str] = field(default_factory=list)  # a change mark the rollup has not seen
    mismatched: list[str] = field(default_factory=list)  # rollup != its buckets: left unfolded


_MISMATCHED_PANELS = f"""
    SELECT COUNT(*) FROM (
        SELECT panel_id, SUM(energy_wh) AS e, SUM(covered_seconds) AS c, SUM(readings) AS n
        FROM {PANEL_BUCKETS} WHERE bucket_start >= :a AND bucket_start < :b GROUP BY panel_id
    ) k LEFT JOIN {PANEL_DAILY_ENERGY} r ON r.day = :d AND r.panel_id = k.panel_id
    WHERE r.panel_id IS NULL OR r.readings_received <> k.n
       OR ABS(r.energy_wh - k.e) > :tol * GREATEST(1, ABS(k.e))
       OR ABS(r.covered_seconds - k.c) > :tol * GREATEST(1, ABS(k.c))"""


def _fold_day(conn: Connection, day: date, tz: str) -> int | None:
    """Fold one day in the caller's transaction; None (nothing done) when its rollup is not exactly
    its buckets. Returns the panel buckets deleted."""
    a, b = local_day_bounds(day, tz)
    row = conn.execute(text(
        f"SELECT energy_wh, readings_received FROM {FLEET_DAILY_ENERGY} WHERE day = :d "
        "AND buckets_folded_at IS NULL FOR UPDATE"), {"d": day}).first()
    if row is None:
        return None
    params = {"a": a, "b": b, "d": day, "tol": _TOLERANCE}
    energy, readings = conn.execute(text(
        f"SELECT COALESCE(SUM(energy_wh), 0), COALESCE(SUM(readings), 0) FROM {FLEET_BUCKETS} "
        "WHERE bucket_start >= :a AND bucket_start < :b"), params).one()
    if int(readings) != int(row[1]) or abs(float(energy) - float(row[0])) > _TOLERANCE * max(1.0, abs(float(energy))):
        return None
    if int(conn.execute(text(_MISMATCHED_PANELS), params).scalar() or 0):
        return None
    deleted = conn.execute(text(f"DELETE FROM {PANEL_BUCKETS} WHERE bucket_start >= :a AND bucket_start < :b"),
                           params).rowcount
    conn.execute(text(f"DELETE FROM {FLEET_BUCKETS} WHERE bucket_start >= :a AND bucket_start < :b"), params)
    # A change committed while this ran (the delete waited for it): the caller keeps the day as it was.
    if changes.marks(conn, a, b):
        return None
    for table in (PANEL_DAILY_ENERGY, FLEET_DAILY_ENERGY):
        conn.execute(text(f"UPDATE {table} SET buckets_folded_at = UTC_TIMESTAMP(3) WHERE day = :d"), params)
    return int(deleted)


def fold_buckets(settings: Settings, *, now: datetime | None = None) -> FoldReport:
    """Fold the rolled-up site days older than `bucket_retention_days` (see the module docstring)."""
    now = now or datetime.now(UTC)
    today = local_day(now.astimezone(UTC).replace(tzinfo=None), zone(settings.site_timezone))
    before = today - timedelta(days=settings.bucket_retention_days)
    report = FoldReport()
    with read_committed(engine(settings)) as conn:
        candidates = conn.execute(text(
            f"SELECT day, time_zone FROM {FLEET_DAILY_ENERGY} WHERE day < :before AND buckets_folded_at IS NULL "
            "ORDER BY day"), {"before": before}).all()
        conn.commit()
        for day, tz in candidates:
            # Each day in the zone it was rolled up in: its rollup sums exactly those buckets.
            a, b = local_day_bounds(day, tz)
            if changes.marks(conn, a, b):
                report.waiting_for_rollup.append(day.isoformat())
                conn.commit()
                continue
            deleted = _fold_day(conn, day, tz)
            if deleted is None:
                conn.rollback()
                report.mismatched.append(day.isoformat())
            else:
                conn.commit()
                report.folded.append(day.isoformat())
                report.buckets_deleted += deleted
    return report


def folded_days(conn: Connection, days: Sequence[date]) -> dict[date, str]:
    """Which of `days` are folded, each with the zone its rollup was made in."""
    if not days:
        return {}
    rows = conn.execute(text(
        f"SELECT day, time_zone FROM {FLEET_DAILY_ENERGY} WHERE buckets_folded_at IS NOT NULL "
        "AND day >= :a AND day <= :b"), {"a": min(days), "b": max(days)}).all()
    wanted = set(days)
    return {day: tz for day, tz in rows if day in wanted}


def restore_folded(eng: Engine, settings: Settings, days: Sequence[date]) -> list[date]:
    """Give folded `days` their buckets back from panelData, each in one transaction with its rows
    unmarked as folded (lifetime energy stays exact throughout). Returns the folded days whose
    readings retention dropped: they need the archive (`history.rebuild`)."""
    with read_committed(eng) as conn:
        folded = folded_days(conn, days)
        need_archive = []
        gap = timedelta(seconds=settings.energy_max_gap_seconds)
        for day, tz in sorted(folded.items()):
            a, b = local_day_bounds(day, tz)
            if not sources.raw_retained(conn, a - gap):
                need_archive.append(day)
                continue
            recompute_buckets(conn, a, b, settings.energy_max_gap_seconds)
            unfold(conn, day)
            conn.commit()
        conn.commit()
    return need_archive


def unfold(conn: Connection, day: date) -> None:
    """The day's rollup rows no longer stand for folded buckets (call with the buckets restored)."""
    for table in (PANEL_DAILY_ENERGY, FLEET_DAILY_ENERGY):
        conn.execute(text(f"UPDATE {table} SET buckets_folded_at = NULL WHERE day = :d"), {"d": day})


def prune_dead_letters(settings: Settings, *, now: datetime | None = None, chunk: int = 10_000) -> int:
    """Delete dead letters recorded more than `dead_letter_retention_days` ago, in short chunks along
    their `recorded_at` index; returns the rows deleted."""
    now = now or datetime.now(UTC)
    cutoff = now.astimezone(UTC).replace(tzinfo=None) - timedelta(days=settings.dead_letter_retention_days)
    deleted = 0
    while True:
        with engine(settings).begin() as conn:
            n = int(conn.execute(text(f"DELETE FROM {DEAD_LETTERS} WHERE recorded_at < :c ORDER BY recorded_at "
                                      "LIMIT :n"), {"c": cutoff, "n": chunk}).rowcount)
        deleted += n
        if n < chunk:
            return deleted
