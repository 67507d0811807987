"""Daily rollups: per-panel and fleet energy per site-time-zone day, built from the 15-min buckets.

Definitions (the energy model itself lives once, in `storage/energy.py`):

- a **day** is a calendar day in `settings.site_timezone`: the UTC 15-minute buckets whose start
  lies in `[local midnight, next local midnight)`, so a DST day holds 92 or 100 of them
  (`day_seconds` = 82 800 or 90 000);
- **energy_wh** / **covered_seconds**: sums of the day's panel buckets (`panel_energy_15min`); the
  coverage is `covered_seconds / day_seconds`;
- **peak_w**: the highest reading stamped that day (0 if none); **pmax_w**: the panel's registered
  Pmax when the day is rolled up (NULL without one), so a day's panels rank by energy per rated
  watt through an index (`wh_per_rated_w`); **uptime_share**: the share of the day's readings with
  status 1; **readings_received** vs **readings_expected** =
  `floor(day_seconds / interval_seconds)`;
- fleet rows sum the day's panel rows (panels reporting = panels with a reading that day).

Only panels with a bucket on a day get a row for that day. Nothing here reads raw readings except
the checks' sampled recompute.

**Stage -> check -> swap.** A run (`run_key`) writes its rows to `stage_panel_daily_energy` and
`stage_fleet_daily_energy` (`stage_days`), the checks read the stage (`check_staged`), and only
then one transaction replaces the days in the served tables (`swap_in`). When a blocking check
fails the stage is cleared and the served rows stay exactly as they were.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Engine, bindparam, text

from solar_platform.settings import Settings
from solar_platform.storage.db import (
    FLEET_DAILY_ENERGY,
    PANEL_DAILY_ENERGY,
    PANELS,
    STAGE_FLEET_DAILY_ENERGY,
    STAGE_PANEL_DAILY_ENERGY,
)
from solar_platform.storage.energy import BUCKET_SECONDS, trapezoid_buckets
from solar_platform.storage.history import changes, folding, sources
from solar_platform.storage.periods import local_day_span

DAY_SECONDS = 86_400


def expected_readings(day_seconds: float, interval_seconds: float) -> int:
    """Readings one panel sends over a day of `day_seconds` at the configured cadence."""
    return int(math.floor(day_seconds / interval_seconds + 1e-9))


def expected_readings_per_day(interval_seconds: float) -> int:
    """Readings one panel sends in a 24-hour day."""
    return expected_readings(DAY_SECONDS, interval_seconds)


def local_day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """`[local midnight of day, next local midnight)` as naive UTC datetimes (what the tables hold)."""
    return local_day_span(day, tz)


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def days_touching(start: datetime, end: datetime, tz: str) -> list[date]:
    """The local days of `tz` that overlap the UTC range `[start, end)` (naive = UTC)."""
    zone = ZoneInfo(tz)

    def local(moment: datetime) -> date:
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return aware.astimezone(zone).date()

    if end <= start:
        return []
    return days_between(local(start), local(end - timedelta(microseconds=1)))


# ---------------------------------------------------------------- stage
_STAGE_PANEL = f"""
    INSERT INTO {STAGE_PANEL_DAILY_ENERGY} (run_key, day, panel_id, energy_wh, covered_seconds, peak_w, pmax_w,
        uptime_share, readings_received, readings_expected, day_seconds, time_zone, computed_at)
    SELECT :k, :d, b.panel_id, SUM(b.energy_wh), SUM(b.covered_seconds), COALESCE(MAX(b.peak_w), 0),
           (SELECT p.pmax_w FROM {PANELS} p WHERE p.panel_id = b.panel_id),
           COALESCE(SUM(b.readings_on) * 1e0 / NULLIF(SUM(b.readings), 0), 0), SUM(b.readings), :expected, :secs,
           :tz, UTC_TIMESTAMP(3)
    FROM panel_energy_15min b WHERE b.bucket_start >= :a AND b.bucket_start < :b GROUP BY b.panel_id"""

_STAGE_FLEET = f"""
    INSERT INTO {STAGE_FLEET_DAILY_ENERGY} (run_key, day, energy_wh, covered_seconds, peak_panel_w, panels_reporting,
        readings_received, readings_expected, mean_uptime_share, day_seconds, time_zone, computed_at)
    SELECT run_key, day, SUM(energy_wh), SUM(covered_seconds), MAX(peak_w), SUM(readings_received > 0),
           SUM(readings_received), SUM(IF(readings_received > 0, readings_expected, 0)),
           COALESCE(AVG(IF(readings_received > 0, uptime_share, NULL)), 0), MAX(day_seconds), MAX(time_zone),
           UTC_TIMESTAMP(3)
    FROM {STAGE_PANEL_DAILY_ENERGY} WHERE run_key = :k AND day = :d GROUP BY run_key, day"""


def stage_days(engine: Engine, settings: Settings, run_key: str, days: Sequence[date]) -> int:
    """Write the panel and fleet rows of `days` to the stages under `run_key`; returns the panel rows."""
    tz = settings.site_timezone
    staged = 0
    clear_stage(engine, run_key)
    with engine.begin() as conn:
        for day in days:
            a, b = local_day_bounds(day, tz)
            seconds = int((b - a).total_seconds())
            params = {"k": run_key, "d": day, "a": a, "b": b, "secs": seconds, "tz": tz,
                      "expected": expected_readings(seconds, settings.interval_seconds)}
            staged += int(conn.execute(text(_STAGE_PANEL), params).rowcount)
            conn.execute(text(_STAGE_FLEET), params)
    return staged


def clear_stage(engine: Engine, run_key: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {STAGE_PANEL_DAILY_ENERGY} WHERE run_key = :k"), {"k": run_key})
        conn.execute(text(f"DELETE FROM {STAGE_FLEET_DAILY_ENERGY} WHERE run_key = :k"), {"k": run_key})


_PANEL_COLUMNS = ("day, panel_id, energy_wh, covered_seconds, peak_w, pmax_w, uptime_share, readings_received, "
                  "readings_expected, day_seconds, time_zone, computed_at")
_FLEET_COLUMNS = ("day, energy_wh, covered_seconds, peak_panel_w, panels_reporting, readings_received, "
                  "readings_expected, mean_uptime_share, day_seconds, time_zone, computed_at")


def swap_in(engine: Engine, run_key: str, days: Sequence[date],
            seen: Sequence[changes.Mark] = ()) -> tuple[int, int]:
    """Replace `days` in both served tables with the staged rows, in one transaction; clears the stage
    and consumes the change marks `seen` (read before staging) that did not move since.

    Returns (panel rows, fleet rows) served. A day the stage has no rows for is emptied (its
    buckets are gone, so are its rollups). Re-running gives the same rows (idempotent per day).
    """
    with engine.begin() as conn:
        changes.consume(conn, seen)
        params = {"k": run_key, "days": list(days)}
        for served in (PANEL_DAILY_ENERGY, FLEET_DAILY_ENERGY):
            conn.execute(text(f"DELETE FROM {served} WHERE day IN :days").bindparams(
                bindparam("days", expanding=True)), params)
        panels = conn.execute(text(
            f"INSERT INTO {PANEL_DAILY_ENERGY} ({_PANEL_COLUMNS}) SELECT {_PANEL_COLUMNS} "
            f"FROM {STAGE_PANEL_DAILY_ENERGY} WHERE run_key = :k"), params).rowcount
        fleet = conn.execute(text(
            f"INSERT INTO {FLEET_DAILY_ENERGY} ({_FLEET_COLUMNS}) SELECT {_FLEET_COLUMNS} "
            f"FROM {STAGE_FLEET_DAILY_ENERGY} WHERE run_key = :k"), params).rowcount
        conn.execute(text(f"DELETE FROM {STAGE_PANEL_DAILY_ENERGY} WHERE run_key = :k"), params)
        conn.execute(text(f"DELETE FROM {STAGE_FLEET_DAILY_ENERGY} WHERE run_key = :k"), params)
    return int(panels), int(fleet)


# ---------------------------------------------------------------- checks on the stage
@dataclass(frozen=True)
class PanelDay:
    energy_wh: float
    covered_seconds: float
    peak_w: float
    uptime_share: float
    readings_received: int


@dataclass
class CheckOutcome:
    passed: bool
    metadata: dict[str, object] = field(default_factory=dict)


def _close(a: float, b: float, rel: float, abs_tol: float = 1e-6) -> bool:
    return abs(a - b) <= max(abs_tol, rel * max(abs(a), abs(b)))


def staged_panel_days(engine: Engine, run_key: str, day: date, panel_ids: Iterable[str] | None = None
                      ) -> dict[str, PanelDay]:
    query = ("SELECT panel_id, energy_wh, covered_seconds, peak_w, uptime_share, readings_received "
             f"FROM {STAGE_PANEL_DAILY_ENERGY} WHERE run_key = :k AND day = :d")
    params: dict[str, object] = {"k": run_key, "d": day}
    stmt = text(query)
    if panel_ids is not None:
        stmt = text(query + " AND panel_id IN :ids").bindparams(bindparam("ids", expanding=True))
        params["ids"] = list(panel_ids) or [""]
    with engine.connect() as conn:
        rows = conn.execute(stmt, params).all()
    return {pid: PanelDay(float(e), float(c), float(p), float(u), int(n)) for pid, e, c, p, u, n in rows}


def recompute_panel_days(engine: Engine, settings: Settings, day: date, panel_ids: Sequence[str]
                         ) -> dict[str, PanelDay]:
    """The day's figures for some panels straight from panelData with the numpy oracle
    (`energy.trapezoid_buckets`): independent of the SQL that kept the buckets."""
    if not panel_ids:
        return {}
    a, b = local_day_bounds(day, settings.site_timezone)
    gap = settings.energy_max_gap_seconds
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT Panel_id, TIMESTAMPDIFF(MICROSECOND, TIMESTAMP'1970-01-01 00:00:00', time_data) / 1e6, "
            "power_panel, current_status FROM panelData "
            "WHERE Panel_id IN :ids AND time_data >= :a AND time_data < :b ORDER BY Panel_id, time_data"
        ).bindparams(bindparam("ids", expanding=True)),
            {"ids": list(panel_ids), "a": a - timedelta(seconds=gap + 1), "b": b + timedelta(seconds=gap + 1)}).all()
    a_s, b_s = a.replace(tzinfo=UTC).timestamp(), b.replace(tzinfo=UTC).timestamp()
    by_panel: dict[str, list[tuple[float, float, int]]] = {}
    for pid, epoch, power, status in rows:
        by_panel.setdefault(pid, []).append((float(epoch), float(power), int(status)))
    result = {}
    for pid, readings in by_panel.items():
        arr = np.array(readings)
        buckets = trapezoid_buckets(arr[:, 0], arr[:, 1], gap)
        inside = [v for start, v in buckets.items() if a_s <= start < b_s]
        own = arr[(arr[:, 0] >= a_s) & (arr[:, 0] < b_s)]
        if not inside and not len(own):
            continue
        result[pid] = PanelDay(
            energy_wh=float(sum(e for e, _ in inside)),
            covered_seconds=float(sum(c for _, c in inside)),
            peak_w=float(own[:, 1].max()) if len(own) else 0.0,
            uptime_share=float(np.mean(own[:, 2] == 1)) if len(own) else 0.0,
            readings_received=len(own),
        )
    return result


def sample_panels(ids: Sequence[str], size: int, seed: int) -> list[str]:
    """A reproducible random sample of `ids`."""
    ids = sorted(ids)
    if len(ids) <= size:
        return ids
    return sorted(np.random.default_rng(seed).choice(ids, size=size, replace=False).tolist())


def check_against_raw(engine: Engine, settings: Settings, run_key: str, days: Sequence[date], sample_size: int,
                      rel_tol: float) -> CheckOutcome:
    """Staged panel rows vs the numpy recompute from panelData on a sample of panels per day.

    Days whose raw readings retention dropped (`storage.history.sources`) cannot be recomputed and
    are listed apart.
    """
    checked = mismatched = 0
    worst = 0.0
    examples: list[str] = []
    expired: list[str] = []
    with engine.connect() as conn:
        dropped_before = sources.raw_dropped_before(conn)
    for day in days:
        if dropped_before is not None and local_day_bounds(day, settings.site_timezone)[0] < dropped_before:
            expired.append(day.isoformat())
            continue
        staged_ids = list(staged_panel_days(engine, run_key, day))
        sample = sample_panels(staged_ids, sample_size, seed=day.toordinal())
        stored = staged_panel_days(engine, run_key, day, sample)
        fresh = recompute_panel_days(engine, settings, day, sample)
        for pid in sorted(set(sample) | set(fresh)):
            checked += 1
            a, b = stored.get(pid), fresh.get(pid)
            if a is None or b is None:
                mismatched += 1
                examples.append(f"{day} {pid}: missing in {'the rollup' if a is None else 'panelData'}")
                continue
            rel = abs(a.energy_wh - b.energy_wh) / max(abs(b.energy_wh), 1e-9) \
                if abs(a.energy_wh - b.energy_wh) > 1e-6 else 0.0
            worst = max(worst, rel)
            good = (_close(a.energy_wh, b.energy_wh, rel_tol)
                    and _close(a.covered_seconds, b.covered_seconds, 1e-9, 1e-3)
                    and a.readings_received == b.readings_received and _close(a.peak_w, b.peak_w, 1e-9)
                    and _close(a.uptime_share, b.uptime_share, 1e-9, 1e-12))
            if not good:
                mismatched += 1
                if len(examples) < 5:
                    examples.append(f"{day} {pid}: rollup {a.energy_wh:.6f} Wh / {a.covered_seconds:.1f} s / "
                                    f"{a.readings_received} readings vs recompute {b.energy_wh:.6f} Wh / "
                                    f"{b.covered_seconds:.1f} s / {b.readings_received}")
    return CheckOutcome(passed=mismatched == 0, metadata={
        "panels_checked": checked, "mismatched": mismatched, "worst_relative_error": worst, "tolerance": rel_tol,
        "days_raw_expired": expired, "examples": examples})


def check_fleet(engine: Engine, settings: Settings, run_key: str, days: Sequence[date]) -> CheckOutcome:
    """Per day: staged fleet row = sum of the staged panel rows = sum of the day's fleet buckets
    (`fleet_energy_15min`, which the stream keeps apart from the panel buckets)."""
    problems: list[str] = []
    with engine.connect() as conn:
        for day in days:
            a, b = local_day_bounds(day, settings.site_timezone)
            fleet = conn.execute(text(
                f"SELECT energy_wh, covered_seconds, readings_received FROM {STAGE_FLEET_DAILY_ENERGY} "
                "WHERE run_key = :k AND day = :d"), {"k": run_key, "d": day}).one_or_none()
            panels = conn.execute(text(
                "SELECT COUNT(*), COALESCE(SUM(energy_wh), 0), COALESCE(SUM(covered_seconds), 0), "
                f"COALESCE(SUM(readings_received), 0) FROM {STAGE_PANEL_DAILY_ENERGY} WHERE run_key = :k AND day = :d"),
                {"k": run_key, "d": day}).one()
            buckets = conn.execute(text(
                "SELECT COUNT(*), COALESCE(SUM(energy_wh), 0), COALESCE(SUM(covered_seconds), 0), "
                "COALESCE(SUM(readings), 0) FROM fleet_energy_15min WHERE bucket_start >= :a AND bucket_start < :b"),
                {"a": a, "b": b}).one()
            if fleet is None:
                if panels[0] or buckets[0]:
                    problems.append(f"{day}: no fleet row staged for {panels[0]} panel rows / {buckets[0]} buckets")
                continue
            energy, covered, readings = float(fleet[0]), float(fleet[1]), int(fleet[2])
            if not _close(energy, float(panels[1]), 1e-9) or readings != int(panels[3]):
                problems.append(f"{day}: fleet {energy:.6f} Wh / {readings} readings vs panel rows "
                                f"{float(panels[1]):.6f} Wh / {int(panels[3])}")
            if (not _close(energy, float(buckets[1]), 1e-9) or not _close(covered, float(buckets[2]), 1e-9, 1e-3)
                    or readings != int(buckets[3])):
                problems.append(f"{day}: fleet {energy:.6f} Wh / {readings} readings vs fleet buckets "
                                f"{float(buckets[1]):.6f} Wh / {int(buckets[3])}")
    return CheckOutcome(passed=not problems, metadata={"days_checked": len(days), "problems": problems[:10]})


def check_peaks(engine: Engine, run_key: str, tolerance: float) -> CheckOutcome:
    """Staged rows whose peak exceeds tolerance x the registered Pmax, or is negative."""
    with engine.connect() as conn:
        rows, bad, example = conn.execute(text(
            "SELECT COUNT(*), COALESCE(SUM(e.peak_w < 0 OR e.peak_w > :tol * p.pmax_w), 0), "
            "MIN(IF(e.peak_w < 0 OR e.peak_w > :tol * p.pmax_w, e.panel_id, NULL)) "
            f"FROM {STAGE_PANEL_DAILY_ENERGY} e LEFT JOIN {PANELS} p ON p.panel_id = e.panel_id "
            "WHERE e.run_key = :k"), {"tol": tolerance, "k": run_key}).one()
    return CheckOutcome(passed=int(bad) == 0, metadata={
        "rows": int(rows), "out_of_bounds": int(bad), "example_panel": example or "", "tolerance_x_pmax": tolerance})


def check_completeness(engine: Engine, run_key: str, min_share: float) -> CheckOutcome:
    """Readings received vs expected over the staged panel-days (a warning, not a blocker); `min_share`
    is `settings.check_completeness_min_share`, as for the live completeness check."""
    with engine.connect() as conn:
        rows, received, expected, low, covered, seconds = conn.execute(text(
            "SELECT COUNT(*), COALESCE(SUM(readings_received), 0), COALESCE(SUM(readings_expected), 0), "
            "COALESCE(SUM(readings_received < :m * readings_expected), 0), COALESCE(SUM(covered_seconds), 0), "
            f"COALESCE(SUM(day_seconds), 0) FROM {STAGE_PANEL_DAILY_ENERGY} WHERE run_key = :k"),
            {"k": run_key, "m": min_share}).one()
    share = float(received) / float(expected) if expected else 0.0
    return CheckOutcome(passed=int(rows) == 0 or share >= min_share, metadata={
        "panel_days": int(rows), "received": int(received), "expected": int(expected), "share": share,
        "panel_days_below_min": int(low), "coverage": float(covered) / float(seconds) if seconds else 0.0})


# ---------------------------------------------------------------- one whole run
@dataclass
class RollupRun:
    days: list[date]
    staged: int
    checks: dict[str, CheckOutcome]
    blocking: tuple[str, ...]
    served: tuple[int, int] | None = None  # (panel rows, fleet rows), None when not swapped
    # A blocking check failed while the stream changed these days (a late reading between the stage
    # and the check): nothing is served, and their marks make the sensor roll them up again.
    changed_meanwhile: list[date] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(self.checks[name].passed for name in self.blocking)

    def failures(self) -> list[str]:
        return [name for name in self.blocking if not self.checks[name].passed]


RECOMPUTE_CHECK = "matches_raw_recompute"
FLEET_CHECK = "matches_fleet_buckets"
PEAK_CHECK = "peak_within_pmax"
COMPLETENESS_CHECK = "readings_complete"
BLOCKING = (RECOMPUTE_CHECK, FLEET_CHECK, PEAK_CHECK)


class FoldedDaysNeedTheArchive(RuntimeError):
    """Folded days whose raw readings retention dropped: their buckets come back from the archive."""

    def __init__(self, days: Sequence[date]) -> None:
        self.days = list(days)
        super().__init__(f"the buckets of {', '.join(d.isoformat() for d in self.days)} were folded and their raw "
                         "readings have expired: rebuild them from the archive first (solar-platform rebuild)")


def _marks_of(engine: Engine, tz: str, days: Sequence[date]) -> list[changes.Mark]:
    """The change marks of buckets inside `days` (local days of `tz`)."""
    if not days:
        return []
    with engine.connect() as conn:
        a, b = local_day_bounds(min(days), tz)[0], local_day_bounds(max(days), tz)[1]
        wanted = set(days)
        return [m for m in changes.marks(conn, a, b) if m.bucket_start < b and _day_of(m, tz) in wanted]


def _day_of(mark: changes.Mark, tz: str) -> date:
    return mark.bucket_start.replace(tzinfo=UTC).astimezone(ZoneInfo(tz)).date()


def roll_up_days(engine: Engine, settings: Settings, run_key: str, days: Sequence[date]) -> RollupRun:
    """Stage `days`, run the checks on the stage, and swap in only if every blocking check passed.

    When one fails the stage is cleared and the served tables are left untouched; when the stream
    changed some of the days meanwhile (`changed_meanwhile`), that is no fault of the rollup: their
    change marks remain and the sensor rolls them up again. The checks' limits
    are settings: `rollup_check_sample_panels`, `rollup_check_relative_tolerance`, and the over_range
    rule's `health_over_range_factor` for the peaks.
    """
    days = list(days)
    # Folded days get their buckets back first (from panelData; the archive is the caller's).
    expired = folding.restore_folded(engine, settings, days)
    if expired:
        raise FoldedDaysNeedTheArchive(expired)
    seen = _marks_of(engine, settings.site_timezone, days)  # before staging: see `changes`
    try:
        staged = stage_days(engine, settings, run_key, days)
        checks = {
            RECOMPUTE_CHECK: check_against_raw(engine, settings, run_key, days, settings.rollup_check_sample_panels,
                                               settings.rollup_check_relative_tolerance),
            FLEET_CHECK: check_fleet(engine, settings, run_key, days),
            PEAK_CHECK: check_peaks(engine, run_key, settings.health_over_range_factor),
            COMPLETENESS_CHECK: check_completeness(engine, run_key, settings.check_completeness_min_share),
        }
        run = RollupRun(days, staged, checks, BLOCKING)
        if run.passed:
            run.served = swap_in(engine, run_key, days, seen)
        else:
            tz, before = settings.site_timezone, {(m.bucket_start, m.version) for m in seen}
            run.changed_meanwhile = sorted({_day_of(m, tz) for m in _marks_of(engine, tz, days)
                                            if (m.bucket_start, m.version) not in before})
        return run
    finally:
        clear_stage(engine, run_key)


# ---------------------------------------------------------------- reading the served rows
def fleet_days(engine: Engine, first: date, last: date) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT day, energy_wh, covered_seconds, day_seconds, panels_reporting, readings_received, "
            f"readings_expected FROM {FLEET_DAILY_ENERGY} WHERE day BETWEEN :a AND :b ORDER BY day"),
            {"a": first, "b": last}).mappings().all()
    return [dict(row) for row in rows]


__all__ = ["BUCKET_SECONDS", "DAY_SECONDS", "RollupRun", "days_touching", "expected_readings_per_day",
           "local_day_bounds", "roll_up_days"]
