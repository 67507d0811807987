"""Read queries shared by the REST API and (later) Dagster: one place that knows how to ask the tables.

Every function takes an open SQLAlchemy `Connection` (the API uses the read-only user) and only
bound parameters; no value is ever formatted into SQL text. Times in and out are naive UTC
datetimes, which is what the DATETIME(3) columns hold (the engines set the session zone to UTC).

Energy has one definition everywhere, the one the daily rollups use (`storage.rollups`): the
trapezoid integral of a panel's readings between its first and last reading inside the period,
W x h = Wh, summed over panels. Days that have rollup rows are read from the rollups; the others
are integrated from `panelData` on the fly, so a rolled-up day and a recomputed one agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, bindparam, text

from solar_platform.storage.health import ALERT_KINDS, OFFLINE, REPORTING, SILENT, UNDERPERFORMING

# Health shown for a panel: the most severe open alert wins; no alert and a reading = reporting.
HEALTH_PRECEDENCE = (SILENT, OFFLINE, UNDERPERFORMING)
UNKNOWN = "unknown"  # registered, never seen


class EnergyUnit(StrEnum):
    """SolarEdge's time units for energy buckets."""

    QUARTER_OF_AN_HOUR = "QUARTER_OF_AN_HOUR"
    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    YEAR = "YEAR"


SUB_DAY_SECONDS = {EnergyUnit.QUARTER_OF_AN_HOUR: 900, EnergyUnit.HOUR: 3600}


@dataclass(frozen=True, slots=True)
class ReadingRow:
    panel_id: str
    power_w: float
    status: int
    time_utc: datetime


@dataclass(frozen=True, slots=True)
class WindowRow:
    panel_id: str
    mean_power_w: float
    window_start: datetime
    window_end: datetime
    reading_count: int


@dataclass(frozen=True, slots=True)
class PanelSummary:
    panel_id: str
    pmax_w: float | None
    first_seen: datetime | None
    last_seen: datetime | None
    current_status: int | None
    health: str
    latest: ReadingRow | None


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    panel_id: str
    kind: str
    state: str
    opened_at: datetime
    resolved_at: datetime | None
    last_checked: datetime
    detail: str | None


@dataclass(frozen=True, slots=True)
class FleetNow:
    current_power_w: float
    panels_reporting: int
    panels_expected: int
    newest_reading: datetime | None


@dataclass(frozen=True, slots=True)
class StreamHealth:
    last_heartbeat: datetime | None
    newest_event_time: datetime | None
    dead_letters_total: int
    dead_letters_last_24h: int


# ---------------------------------------------------------------- panels
def panel_exists(conn: Connection, panel_id: str) -> bool:
    """Known = registered in `panels` or has sent at least one reading (both are key lookups)."""
    return bool(
        conn.execute(
            text(
                "SELECT EXISTS(SELECT 1 FROM panels WHERE panel_id = :p) "
                "OR EXISTS(SELECT 1 FROM panelData WHERE Panel_id = :p)"
            ),
            {"p": panel_id},
        ).scalar()
    )


def latest_readings(conn: Connection, panel_ids: Sequence[str], since: datetime | None = None) -> dict[str, ReadingRow]:
    """Each panel's newest reading (optionally only if at or after `since`), via the (panel, time) key."""
    if not panel_ids:
        return {}
    since_filter = "AND time_data >= :since" if since is not None else ""
    stmt = text(
        "SELECT d.Panel_id, d.power_panel, d.current_status, d.time_data FROM panelData d "
        "JOIN (SELECT Panel_id, MAX(time_data) AS newest FROM panelData "
        f"      WHERE Panel_id IN :ids {since_filter} GROUP BY Panel_id) m "
        "ON d.Panel_id = m.Panel_id AND d.time_data = m.newest"
    ).bindparams(bindparam("ids", expanding=True))
    params: dict[str, object] = {"ids": list(panel_ids)}
    if since is not None:
        params["since"] = since
    return {row[0]: ReadingRow(row[0], float(row[1]), int(row[2]), row[3]) for row in conn.execute(stmt, params)}


def _open_alert_health(conn: Connection, panel_ids: Sequence[str]) -> dict[str, str]:
    if not panel_ids:
        return {}
    stmt = text("SELECT panel_id, kind FROM panel_alerts WHERE state = 'open' AND panel_id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    kinds: dict[str, set[str]] = {}
    for panel_id, kind in conn.execute(stmt, {"ids": list(panel_ids)}):
        kinds.setdefault(panel_id, set()).add(kind)
    return {pid: next(k for k in (*HEALTH_PRECEDENCE, *sorted(ks)) if k in ks) for pid, ks in kinds.items()}


def _summaries(conn: Connection, registry: Sequence[tuple[str, float | None, datetime | None]]) -> list[PanelSummary]:
    ids = [pid for pid, _, _ in registry]
    latest = latest_readings(conn, ids)
    health = _open_alert_health(conn, ids)
    firsts = _first_seen(conn, [pid for pid, _, first in registry if first is None and pid in latest])
    result = []
    for pid, pmax, first_seen in registry:
        reading = latest.get(pid)
        result.append(
            PanelSummary(
                panel_id=pid,
                pmax_w=pmax,
                first_seen=first_seen or firsts.get(pid),
                last_seen=reading.time_utc if reading else None,
                current_status=reading.status if reading else None,
                health=health.get(pid, REPORTING if reading else UNKNOWN),
                latest=reading,
            )
        )
    return result


def _first_seen(conn: Connection, panel_ids: Sequence[str]) -> dict[str, datetime]:
    if not panel_ids:
        return {}
    stmt = text("SELECT Panel_id, MIN(time_data) FROM panelData WHERE Panel_id IN :ids GROUP BY Panel_id").bindparams(
        bindparam("ids", expanding=True)
    )
    return dict(conn.execute(stmt, {"ids": list(panel_ids)}).all())  # type: ignore[arg-type]


def list_panels(conn: Connection, *, limit: int, after: str | None = None) -> list[PanelSummary]:
    """Panels in id order, keyset-paged: the registry plus any panel the stream saw but nobody registered."""
    rows = conn.execute(
        text(
            "SELECT ids.panel_id, p.pmax_w, p.first_seen FROM ("
            "  SELECT panel_id FROM panels WHERE (:after IS NULL OR panel_id > :after)"
            "  UNION SELECT Panel_id FROM panelData WHERE (:after IS NULL OR Panel_id > :after) GROUP BY Panel_id"
            ") ids LEFT JOIN panels p ON p.panel_id = ids.panel_id "
            "ORDER BY ids.panel_id LIMIT :limit"
        ),
        {"after": after, "limit": limit},
    ).all()
    return _summaries(conn, [(pid, None if pmax is None else float(pmax), first) for pid, pmax, first in rows])


def panel_summary(conn: Connection, panel_id: str) -> PanelSummary | None:
    """One panel's registry entry, latest reading and health; None when the panel is unknown."""
    if not panel_exists(conn, panel_id):
        return None
    row = conn.execute(text("SELECT pmax_w, first_seen FROM panels WHERE panel_id = :p"), {"p": panel_id}).first()
    pmax = None if row is None or row[0] is None else float(row[0])
    return _summaries(conn, [(panel_id, pmax, None if row is None else row[1])])[0]


# ---------------------------------------------------------------- readings and windows
def readings(
    conn: Connection,
    panel_id: str,
    *,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    after: datetime | None = None,
    newest_first: bool = False,
) -> list[ReadingRow]:
    """A panel's readings in `[start, end)`, time-ordered, keyset-paged after `after` (never OFFSET).

    One range scan of the (Panel_id, time_data) primary key.
    """
    order = "DESC" if newest_first else "ASC"
    stmt = text(
        "SELECT Panel_id, power_panel, current_status, time_data FROM panelData "
        "WHERE Panel_id = :p AND (:start IS NULL OR time_data >= :start) AND (:end IS NULL OR time_data < :end) "
        f"AND (:after IS NULL OR time_data {'<' if newest_first else '>'} :after) "
        f"ORDER BY time_data {order} LIMIT :limit"
    )
    rows = conn.execute(stmt, {"p": panel_id, "start": start, "end": end, "after": after, "limit": limit})
    return [ReadingRow(r[0], float(r[1]), int(r[2]), r[3]) for r in rows]


def windows(
    conn: Connection, panel_id: str, *, start: datetime, end: datetime, limit: int, after: datetime | None = None
) -> list[WindowRow]:
    """A panel's 30-s window means (`panelDataAgg`) starting in `[start, end)`, keyset-paged on window_start."""
    rows = conn.execute(
        text(
            "SELECT Panel_id, total_power, window_start, window_end, reading_count FROM panelDataAgg "
            "WHERE Panel_id = :p AND window_start >= :start AND window_start < :end "
            "AND (:after IS NULL OR window_start > :after) ORDER BY window_start LIMIT :limit"
        ),
        {"p": panel_id, "start": start, "end": end, "after": after, "limit": limit},
    )
    return [WindowRow(r[0], float(r[1]), r[2], r[3], int(r[4])) for r in rows]


# ---------------------------------------------------------------- energy
def bucket_start(moment: datetime | date, unit: EnergyUnit) -> datetime:
    """The start of the bucket holding `moment`: UTC, weeks start on Monday (as SolarEdge's do)."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    if unit in SUB_DAY_SECONDS:
        step = SUB_DAY_SECONDS[unit]
        seconds = (moment - datetime(1970, 1, 1)).total_seconds()
        return datetime(1970, 1, 1) + timedelta(seconds=seconds // step * step)
    day = datetime(moment.year, moment.month, moment.day)
    if unit is EnergyUnit.DAY:
        return day
    if unit is EnergyUnit.WEEK:
        return day - timedelta(days=day.weekday())
    if unit is EnergyUnit.MONTH:
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def next_bucket(start: datetime, unit: EnergyUnit) -> datetime:
    if unit in SUB_DAY_SECONDS:
        return start + timedelta(seconds=SUB_DAY_SECONDS[unit])
    if unit is EnergyUnit.DAY:
        return start + timedelta(days=1)
    if unit is EnergyUnit.WEEK:
        return start + timedelta(days=7)
    if unit is EnergyUnit.MONTH:
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start.replace(year=start.year + 1)


def _integrated(
    conn: Connection, panel_id: str | None, start: datetime, end: datetime, bucket_seconds: int | None
) -> dict[datetime, float]:
    """Trapezoid energy (Wh) from panelData per bucket: sub-day buckets of `bucket_seconds`, or UTC days.

    Pairs of consecutive readings of one panel count only when both fall in the same bucket,
    exactly as the daily rollup integrates between a day's first and last reading.
    """
    if bucket_seconds is None:
        bucket = "CAST(DATE(time_data) AS DATETIME)"
    else:
        # FROM_UNIXTIME/UNIX_TIMESTAMP are exact here: the session time zone is UTC.
        bucket = f"FROM_UNIXTIME(FLOOR(UNIX_TIMESTAMP(time_data) / {int(bucket_seconds)}) * {int(bucket_seconds)})"
    panel_filter = "Panel_id = :p AND" if panel_id is not None else ""
    stmt = text(
        "SELECT bucket, SUM(energy_wh) FROM ("
        f"  SELECT {bucket} AS bucket,"
        "    (power_panel + LAG(power_panel) OVER w) / 2"
        "      * TIMESTAMPDIFF(MICROSECOND, LAG(time_data) OVER w, time_data) / 3600000000 AS energy_wh"
        f"  FROM panelData WHERE {panel_filter} time_data >= :start AND time_data < :end"
        f"  WINDOW w AS (PARTITION BY Panel_id, {bucket} ORDER BY time_data)"
        ") pairs GROUP BY bucket"
    )
    params: dict[str, object] = {"start": start, "end": end}
    if panel_id is not None:
        params["p"] = panel_id
    return {
        (b if isinstance(b, datetime) else datetime(b.year, b.month, b.day)): float(e or 0.0)
        for b, e in conn.execute(stmt, params)
    }


def _data_extent(conn: Connection, panel_id: str | None) -> tuple[datetime, datetime] | None:
    """First and last reading time (index ends only, so cheap at any table size)."""
    if panel_id is None:
        row = conn.execute(text("SELECT MIN(time_data), MAX(time_data) FROM panelData")).one()
    else:
        row = conn.execute(
            text("SELECT MIN(time_data), MAX(time_data) FROM panelData WHERE Panel_id = :p"), {"p": panel_id}
        ).one()
    return None if row[0] is None else (row[0], row[1])


def daily_energy(conn: Connection, panel_id: str | None, first: date, last: date) -> dict[date, float]:
    """Energy (Wh) per UTC day `first..last`: rollup rows where they exist, panelData integrated elsewhere.

    `panel_id=None` means the fleet (`fleet_daily_energy`). Days with neither rollups nor readings
    are absent from the result.
    """
    if panel_id is None:
        rolled = conn.execute(
            text("SELECT day, energy_wh FROM fleet_daily_energy WHERE day BETWEEN :a AND :b"), {"a": first, "b": last}
        ).all()
    else:
        rolled = conn.execute(
            text("SELECT day, energy_wh FROM panel_daily_energy WHERE panel_id = :p AND day BETWEEN :a AND :b"),
            {"p": panel_id, "a": first, "b": last},
        ).all()
    result: dict[date, float] = {day: float(energy) for day, energy in rolled}

    extent = _data_extent(conn, panel_id)
    if extent is None:
        return result
    scan_first, scan_last = max(first, extent[0].date()), min(last, extent[1].date())
    # Only the span between the first and the last day that lacks a rollup needs the raw table
    # (usually just today's partial day).
    while scan_first <= scan_last and scan_first in result:
        scan_first += timedelta(days=1)
    while scan_last >= scan_first and scan_last in result:
        scan_last -= timedelta(days=1)
    if scan_first <= scan_last:
        start = datetime.combine(scan_first, datetime.min.time())
        end = datetime.combine(scan_last + timedelta(days=1), datetime.min.time())
        for day_start, energy in _integrated(conn, panel_id, start, end, None).items():
            result.setdefault(day_start.date(), energy)
    return result


def energy_buckets(
    conn: Connection, panel_id: str | None, start: datetime, end: datetime, unit: EnergyUnit
) -> dict[datetime, float]:
    """Energy (Wh) per bucket of `unit` over `[start, end)`; buckets without data are absent.

    QUARTER_OF_AN_HOUR and HOUR integrate readings in `[start, end)`. DAY and coarser count
    whole UTC days, from the day of `start` to the day holding the last instant before `end`.
    """
    if unit in SUB_DAY_SECONDS:
        return _integrated(conn, panel_id, start, end, SUB_DAY_SECONDS[unit])
    last_day = (end - timedelta(microseconds=1)).date()
    result: dict[datetime, float] = {}
    for day, energy in daily_energy(conn, panel_id, start.date(), last_day).items():
        key = bucket_start(day, unit)
        result[key] = result.get(key, 0.0) + energy
    return result


def lifetime_energy(conn: Connection, panel_id: str | None = None) -> float:
    """All energy ever recorded (Wh), rollups plus integrated days without rollups."""
    extent = _data_extent(conn, panel_id)
    if panel_id is None:
        first_rolled = conn.execute(text("SELECT MIN(day), MAX(day) FROM fleet_daily_energy")).one()
    else:
        first_rolled = conn.execute(
            text("SELECT MIN(day), MAX(day) FROM panel_daily_energy WHERE panel_id = :p"), {"p": panel_id}
        ).one()
    firsts = [d for d in (first_rolled[0], extent[0].date() if extent else None) if d is not None]
    lasts = [d for d in (first_rolled[1], extent[1].date() if extent else None) if d is not None]
    if not firsts:
        return 0.0
    return sum(daily_energy(conn, panel_id, min(firsts), max(lasts)).values())


# ---------------------------------------------------------------- fleet, alerts, health
def fleet_now(conn: Connection, since: datetime) -> FleetNow:
    """Current fleet power: the sum of each panel's latest reading at or after `since`."""
    power, reporting, newest = conn.execute(
        text(
            "SELECT COALESCE(SUM(d.power_panel), 0), COUNT(*), MAX(d.time_data) FROM panelData d "
            "JOIN (SELECT Panel_id, MAX(time_data) AS newest FROM panelData WHERE time_data >= :since "
            "      GROUP BY Panel_id) m ON d.Panel_id = m.Panel_id AND d.time_data = m.newest"
        ),
        {"since": since},
    ).one()
    expected = conn.execute(text("SELECT COUNT(*) FROM panels")).scalar()
    return FleetNow(float(power), int(reporting), int(expected or 0), newest)


def alerts(
    conn: Connection,
    *,
    state: str | None,
    since: datetime | None,
    kinds: Iterable[str] = ALERT_KINDS,
    panel_id: str | None = None,
    limit: int,
    before_id: int | None = None,
) -> list[AlertRow]:
    """Alerts newest first, keyset-paged on id. `since`: alerts still open or resolved at/after it."""
    stmt = text(
        "SELECT id, panel_id, kind, state, opened_at, resolved_at, last_checked, detail FROM panel_alerts "
        "WHERE (:state IS NULL OR state = :state) AND kind IN :kinds "
        "AND (:panel IS NULL OR panel_id = :panel) "
        "AND (:since IS NULL OR state = 'open' OR resolved_at >= :since OR opened_at >= :since) "
        "AND (:before IS NULL OR id < :before) ORDER BY id DESC LIMIT :limit"
    ).bindparams(bindparam("kinds", expanding=True))
    rows = conn.execute(
        stmt,
        {"state": state, "kinds": list(kinds), "panel": panel_id, "since": since, "before": before_id, "limit": limit},
    )
    return [AlertRow(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows]


def stream_health(conn: Connection, now: datetime) -> StreamHealth:
    """The stream's heartbeat (newest progress row) and the dead-letter counts."""
    heartbeat, event_time = conn.execute(
        text("SELECT MAX(recorded_at), MAX(max_event_time) FROM stream_progress")
    ).one()
    total, recent = conn.execute(
        text("SELECT COUNT(*), COALESCE(SUM(recorded_at >= :since), 0) FROM dead_letters"),
        {"since": now - timedelta(days=1)},
    ).one()
    return StreamHealth(heartbeat, event_time, int(total), int(recent))
