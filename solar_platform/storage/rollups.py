"""Daily rollups: per-panel and fleet energy per UTC day, and an independent recompute to check them.

Definitions (one place, used by the Spark job, the numpy recompute and the checks):

- a **day** is a UTC calendar day, readings with `day <= time_data < day + 1`;
- **energy_wh**: the trapezoid integral of the day's readings over time (W x h), between the
  day's first and last reading of that panel (no extrapolation to midnight, no cut at gaps);
- **peak_w**: the highest reading; **uptime_share**: the share of readings with status 1;
- **readings_expected** = `floor(86400 / interval_seconds)`: the fleet sends one reading per panel
  per interval all day long (power ~0 outside the production window), so a complete day has that
  many; a day the panel only partly covered (fleet started mid-day, today's partial partition)
  shows up as received < expected, which is the point of the figure.

Only panels with at least one reading on a day get a row for that day.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
from sqlalchemy import Engine, bindparam, text

from solar_platform.settings import Settings

DAY_SECONDS = 86_400


def expected_readings_per_day(interval_seconds: float) -> int:
    """Readings one panel sends in a full UTC day at the configured cadence."""
    return int(math.floor(DAY_SECONDS / interval_seconds + 1e-9))


def day_range(first: date, last: date) -> tuple[datetime, datetime]:
    """`[first 00:00, last+1 00:00)` as naive UTC datetimes (what DATETIME columns hold)."""
    return datetime.combine(first, time()), datetime.combine(last + timedelta(days=1), time())


def jdbc_url(settings: Settings) -> str:
    """The MariaDB JDBC URL Spark reads and writes with (MariaDB driver, MySQL quoting, batched writes)."""
    return (f"jdbc:mysql://{settings.mysql_host}:{settings.mysql_port}/{settings.mysql_database}"
            "?permitMysqlScheme&rewriteBatchedStatements=true")


def jdbc_properties(settings: Settings) -> dict[str, str]:
    return {"user": settings.mysql_writer_user, "password": settings.mysql_writer_password,
            "driver": "org.mariadb.jdbc.Driver"}


# ---------------------------------------------------------------- writing
def swap_in_panel_days(engine: Engine, run_key: str, first: date, last: date, interval_seconds: float) -> int:
    """Replace panel_daily_energy for days first..last with the staged rows of `run_key`, atomically.

    One transaction: delete the days, insert the staged rows (adding readings_expected), delete the
    stage rows. Running it again for the same days gives the same table (idempotent per day).
    Raises if the stage holds two rows for one (day, panel): the rollup must not silently pick one.
    """
    with engine.begin() as conn:
        dup = conn.execute(text(
            "SELECT COUNT(*) FROM (SELECT 1 FROM stage_panel_daily_energy WHERE run_key = :k "
            "GROUP BY day, panel_id HAVING COUNT(*) > 1) d"), {"k": run_key}).scalar()
        if dup:
            conn.execute(text("DELETE FROM stage_panel_daily_energy WHERE run_key = :k"), {"k": run_key})
            raise RuntimeError(f"rollup staged {dup} duplicate (day, panel) keys; nothing was replaced")
        conn.execute(text("DELETE FROM panel_daily_energy WHERE day BETWEEN :a AND :b"), {"a": first, "b": last})
        inserted = conn.execute(text(
            "INSERT INTO panel_daily_energy (day, panel_id, energy_wh, peak_w, uptime_share, readings_received, "
            "readings_expected, computed_at) "
            "SELECT day, panel_id, energy_wh, peak_w, uptime_share, readings_received, :expected, UTC_TIMESTAMP(3) "
            "FROM stage_panel_daily_energy WHERE run_key = :k AND day BETWEEN :a AND :b"),
            {"k": run_key, "a": first, "b": last, "expected": expected_readings_per_day(interval_seconds)}).rowcount
        conn.execute(text("DELETE FROM stage_panel_daily_energy WHERE run_key = :k"), {"k": run_key})
    return int(inserted)


def clear_stage(engine: Engine, run_key: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM stage_panel_daily_energy WHERE run_key = :k"), {"k": run_key})


def rollup_fleet_days(engine: Engine, first: date, last: date) -> int:
    """Replace fleet_daily_energy for days first..last from panel_daily_energy, in one transaction."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM fleet_daily_energy WHERE day BETWEEN :a AND :b"), {"a": first, "b": last})
        return int(conn.execute(text(
            "INSERT INTO fleet_daily_energy (day, energy_wh, peak_panel_w, panels_reporting, readings_received, "
            "readings_expected, mean_uptime_share, computed_at) "
            "SELECT day, SUM(energy_wh), MAX(peak_w), COUNT(*), SUM(readings_received), SUM(readings_expected), "
            "AVG(uptime_share), UTC_TIMESTAMP(3) FROM panel_daily_energy WHERE day BETWEEN :a AND :b GROUP BY day"),
            {"a": first, "b": last}).rowcount)


# ---------------------------------------------------------------- reading / verifying
@dataclass(frozen=True)
class PanelDay:
    energy_wh: float
    peak_w: float
    uptime_share: float
    readings_received: int


def recompute_panel_days(engine: Engine, day: date, panel_ids: Sequence[str]) -> dict[str, PanelDay]:
    """numpy recompute of one day for some panels, straight from panelData (independent of Spark)."""
    if not panel_ids:
        return {}
    start, end = day_range(day, day)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT Panel_id, UNIX_TIMESTAMP(time_data), power_panel, current_status FROM panelData "
            "WHERE Panel_id IN :ids AND time_data >= :a AND time_data < :b ORDER BY Panel_id, time_data"
        ).bindparams(bindparam("ids", expanding=True)), {"ids": list(panel_ids), "a": start, "b": end}).all()
    by_panel: dict[str, list[tuple[float, float, int]]] = {}
    for pid, epoch, power, status in rows:
        by_panel.setdefault(pid, []).append((float(epoch), float(power), int(status)))
    result = {}
    for pid, readings in by_panel.items():
        arr = np.array(readings)
        result[pid] = PanelDay(
            energy_wh=float(np.trapezoid(arr[:, 1], arr[:, 0]) / 3600.0) if len(arr) > 1 else 0.0,
            peak_w=float(arr[:, 1].max()),
            uptime_share=float(np.mean(arr[:, 2] == 1)),
            readings_received=len(arr),
        )
    return result


def stored_panel_days(engine: Engine, day: date, panel_ids: Iterable[str] | None = None) -> dict[str, PanelDay]:
    query = ("SELECT panel_id, energy_wh, peak_w, uptime_share, readings_received FROM panel_daily_energy "
             "WHERE day = :d")
    params: dict[str, object] = {"d": day}
    stmt = text(query)
    if panel_ids is not None:
        stmt = text(query + " AND panel_id IN :ids").bindparams(bindparam("ids", expanding=True))
        params["ids"] = list(panel_ids)
    with engine.connect() as conn:
        rows = conn.execute(stmt, params).all()
    return {pid: PanelDay(float(e), float(p), float(u), int(n)) for pid, e, p, u, n in rows}


def sample_panels(engine: Engine, day: date, size: int, seed: int = 0) -> list[str]:
    """A reproducible random sample of the panels rolled up for `day`."""
    with engine.connect() as conn:
        ids = sorted(pid for (pid,) in conn.execute(
            text("SELECT panel_id FROM panel_daily_energy WHERE day = :d"), {"d": day}))
    if len(ids) <= size:
        return ids
    rng = np.random.default_rng(seed + day.toordinal())
    return sorted(rng.choice(ids, size=size, replace=False).tolist())


def compare_with_recompute(engine: Engine, days: Iterable[date], sample_size: int, rel_tol: float = 1e-3
                           ) -> dict[str, object]:
    """Stored rollup vs the numpy recompute on a sample of panels per day; the worst deviations found."""
    checked = mismatched = 0
    worst = 0.0
    examples: list[str] = []
    for day in days:
        sample = sample_panels(engine, day, sample_size)
        stored = stored_panel_days(engine, day, sample)
        fresh = recompute_panel_days(engine, day, sample)
        for pid in sample:
            checked += 1
            a, b = stored.get(pid), fresh.get(pid)
            if a is None or b is None:
                mismatched += 1
                examples.append(f"{day} {pid}: missing in {'rollup' if a is None else 'panelData'}")
                continue
            rel = abs(a.energy_wh - b.energy_wh) / max(abs(b.energy_wh), 1e-9)
            if abs(a.energy_wh - b.energy_wh) < 1e-6:
                rel = 0.0
            worst = max(worst, rel)
            bad = (rel > rel_tol or a.readings_received != b.readings_received
                   or abs(a.peak_w - b.peak_w) > 1e-6 * max(1.0, b.peak_w)
                   or abs(a.uptime_share - b.uptime_share) > 1e-9)
            if bad:
                mismatched += 1
                if len(examples) < 5:
                    examples.append(f"{day} {pid}: rollup {a.energy_wh:.3f} Wh vs recompute {b.energy_wh:.3f} Wh")
    return {"panels_checked": checked, "mismatched": mismatched, "worst_relative_error": worst,
            "examples": examples}


def peak_vs_pmax(engine: Engine, first: date, last: date, tolerance: float) -> dict[str, object]:
    """Rollup rows whose peak exceeds tolerance x the registered Pmax, or is negative."""
    with engine.connect() as conn:
        rows, bad, example = conn.execute(text(
            "SELECT COUNT(*), COALESCE(SUM(e.peak_w < 0 OR e.peak_w > :tol * p.pmax_w), 0), "
            "MIN(IF(e.peak_w < 0 OR e.peak_w > :tol * p.pmax_w, e.panel_id, NULL)) "
            "FROM panel_daily_energy e LEFT JOIN panels p ON p.panel_id = e.panel_id "
            "WHERE e.day BETWEEN :a AND :b"), {"tol": tolerance, "a": first, "b": last}).one()
    return {"rows": int(rows), "out_of_bounds": int(bad), "example_panel": example or ""}


def completeness_of_days(engine: Engine, first: date, last: date) -> dict[str, float]:
    with engine.connect() as conn:
        rows, received, expected, low = conn.execute(text(
            "SELECT COUNT(*), COALESCE(SUM(readings_received), 0), COALESCE(SUM(readings_expected), 0), "
            "COALESCE(SUM(readings_received < 0.9 * readings_expected), 0) "
            "FROM panel_daily_energy WHERE day BETWEEN :a AND :b"), {"a": first, "b": last}).one()
    return {"panel_days": int(rows), "received": int(received), "expected": int(expected),
            "share": float(received) / float(expected) if expected else 0.0, "panel_days_below_90pct": int(low)}


def fleet_days(engine: Engine, first: date, last: date) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT day, energy_wh, panels_reporting, readings_received, readings_expected FROM fleet_daily_energy "
            "WHERE day BETWEEN :a AND :b ORDER BY day"), {"a": first, "b": last}).mappings().all()
    return [dict(row) for row in rows]
