"""Read queries shared by the REST API and (later) Dagster: one place that knows how to ask the tables.

Every function takes an open SQLAlchemy `Connection` (the API uses the read-only user) and only
bound parameters; no value is ever formatted into SQL text. Times in and out are naive UTC
datetimes, which is what the DATETIME(3) columns hold (the engines set the session zone to UTC).

Cost follows the result: raw readings (`panelData`) are read only for one panel's requested
range. Everything else comes from what the stream and Dagster keep:

- energy from the 15-minute buckets (`panel_energy_15min`, `fleet_energy_15min`; the model is in
  `storage.energy`) and, for whole past days in the site's time zone, the daily rollups;
- "now": each panel's latest reading and first/last seen from `panel_latest`, the fleet's power
  and panels reporting from the counters the stream writes after each batch (`fleet_now`);
- the stream's heartbeat from the newest `stream_progress` row, via its `recorded_at` index.

Every energy figure carries its coverage: covered seconds (the span the credited trapezoid
segments cover) over expected seconds (the period up to now, times the panels registered for the
fleet).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, text

from solar_platform.storage.db import (
    DEAD_LETTERS,
    FLEET_BUCKETS,
    FLEET_DAILY_ENERGY,
    FLEET_NOW,
    PANEL_ALERTS,
    PANEL_BUCKETS,
    PANEL_DAILY_ENERGY,
    PANEL_LATEST,
    PANELS,
    PLATFORM_ALERTS,
    READINGS,
    REGISTRY_COUNTS,
    SITE_DAILY_ENERGY,
    STREAM_PROGRESS,
    STREAM_UNSUMMARIZED,
    WINDOWS,
)
from solar_platform.storage.health.faults import (
    ALERT_KINDS,
    OFFLINE,
    OVER_RANGE,
    SILENT,
    STUCK,
    UNDERPERFORMING,
    ZERO_PRODUCTION,
)
from solar_platform.storage.periods import EnergyUnit, Period, local_day, local_midnight, periods, to_grid
from solar_platform.storage.pipeline_status import last_heartbeat

__all__ = ["EnergyUnit", "Period", "periods"]

# Health shown for a panel: the most severe open alert wins; no alert and a reading = reporting.
HEALTH_PRECEDENCE = (SILENT, OFFLINE, ZERO_PRODUCTION, OVER_RANGE, STUCK, UNDERPERFORMING)
REPORTING = "reporting"
RETIRED = "retired"  # out of the fleet ((storage.health.registry)): no longer judged
UNKNOWN = "unknown"  # registered, never seen

# Each panel's latest reading, the one definition every "now" query reads: the row per panel that
# the stream keeps in `panel_latest` with its summaries, a round behind panelData at most
# (storage.stream.summaries), so it never scans panelData. A plain derived table: MariaDB merges
# it, key lookups stay key lookups.
LATEST_READINGS = f"SELECT panel_id, power_panel, current_status, first_seen, last_seen FROM {PANEL_LATEST}"

# Dead letters are counted up to this many (an index range bounded by LIMIT): the health route
# must stay cheap however many hostile messages arrive. The cap itself means "at least".
DEAD_LETTER_COUNT_CAP = 10_000


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
    severity: str | None = None
    metric: float | None = None
    evidence: str | None = None  # JSON object of the figures behind the alert
    fault_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class FleetNow:
    current_power_w: float
    panels_reporting: int
    panels_online: int
    panels_expected: int
    newest_reading: datetime | None


@dataclass(frozen=True, slots=True)
class PlatformAlertRow:
    kind: str
    severity: str
    opened_at: datetime
    last_checked: datetime
    detail: str | None
    metric: float | None


@dataclass(frozen=True, slots=True)
class StreamHealth:
    last_heartbeat: datetime | None
    newest_event_time: datetime | None
    dead_letters_total: int
    dead_letters_last_24h: int
    summaries_waiting: int = 0  # batches whose summaries wait for the stream's next round
    oldest_waiting_since: datetime | None = None  # when the oldest of them committed


# ---------------------------------------------------------------- panels
def panel_exists(conn: Connection, panel_id: str) -> bool:
    """Known = registered in `panels` or has sent at least one reading (two key lookups)."""
    return bool(
        conn.execute(
            text(
                f"SELECT EXISTS(SELECT 1 FROM {PANELS} WHERE panel_id = :p) "
                f"OR EXISTS(SELECT 1 FROM {PANEL_LATEST} WHERE panel_id = :p)"
            ),
            {"p": panel_id},
        ).scalar()
    )


def latest_readings(conn: Connection, panel_ids: Sequence[str]) -> dict[str, ReadingRow]:
    """Each panel's latest reading (`LATEST_READINGS`, key lookups); panels never seen are absent."""
    if not panel_ids:
        return {}
    stmt = text(
        f"SELECT l.panel_id, l.power_panel, l.current_status, l.last_seen FROM ({LATEST_READINGS}) l "
        "WHERE l.panel_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    rows = conn.execute(stmt, {"ids": list(panel_ids)})
    return {r[0]: latest for r in rows if (latest := _latest_reading(*r)) is not None}


def _latest_reading(panel_id: str, power: float | None, status: int | None,
                    last_seen: datetime | None) -> ReadingRow | None:
    """A `LATEST_READINGS` row as a reading; None for a panel never seen (an outer join's nulls)."""
    if last_seen is None or power is None or status is None:
        return None
    return ReadingRow(panel_id, float(power), int(status), last_seen)


def _open_alert_health(conn: Connection, panel_ids: Sequence[str]) -> dict[str, str]:
    if not panel_ids:
        return {}
    stmt = text(f"SELECT panel_id, kind FROM {PANEL_ALERTS} WHERE state = 'open' AND panel_id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    kinds: dict[str, set[str]] = {}
    for panel_id, kind in conn.execute(stmt, {"ids": list(panel_ids)}):
        kinds.setdefault(panel_id, set()).add(kind)
    return {pid: next(k for k in (*HEALTH_PRECEDENCE, *sorted(ks)) if k in ks) for pid, ks in kinds.items()}


def _summaries(conn: Connection, ids_sql: str, params: dict[str, object]) -> list[PanelSummary]:
    """Registry and latest reading of the panels `ids_sql` selects (a `panel_id` column), in id order."""
    rows = conn.execute(
        text(
            "SELECT ids.panel_id, p.pmax_w, "
            "       COALESCE(LEAST(p.first_seen, l.first_seen), p.first_seen, l.first_seen), "
            "       l.last_seen, l.power_panel, l.current_status, p.retired_at "
            f"FROM ({ids_sql}) ids "
            f"LEFT JOIN {PANELS} p ON p.panel_id = ids.panel_id "
            f"LEFT JOIN ({LATEST_READINGS}) l ON l.panel_id = ids.panel_id "
            "ORDER BY ids.panel_id"
        ),
        params,
    ).all()
    health = _open_alert_health(conn, [r[0] for r in rows])
    result = []
    for pid, pmax, first_seen, last_seen, power, status, retired_at in rows:
        latest = _latest_reading(pid, power, status, last_seen)
        result.append(
            PanelSummary(
                panel_id=pid,
                pmax_w=None if pmax is None else float(pmax),
                first_seen=first_seen,
                last_seen=last_seen,
                current_status=None if latest is None else latest.status,
                health=RETIRED if retired_at is not None else health.get(pid, REPORTING if latest else UNKNOWN),
                latest=latest,
            )
        )
    return result


def list_panels(conn: Connection, *, limit: int, after: str | None = None) -> list[PanelSummary]:
    """Panels in id order, keyset-paged: the registry plus any panel the stream saw but nobody registered.

    Each side reads at most `limit` ids from its primary key; the first `limit` of their union
    are the page.
    """
    where = "WHERE panel_id > :after" if after is not None else ""
    ids = (
        f"SELECT panel_id FROM ((SELECT panel_id FROM {PANELS} {where} ORDER BY panel_id LIMIT :limit) "
        f"UNION (SELECT panel_id FROM {PANEL_LATEST} {where} ORDER BY panel_id LIMIT :limit)) u "
        "ORDER BY panel_id LIMIT :limit"
    )
    return _summaries(conn, ids, {"after": after, "limit": limit})


def panel_summary(conn: Connection, panel_id: str) -> PanelSummary | None:
    """One panel's registry entry, latest reading and health; None when the panel is unknown."""
    ids = (f"SELECT panel_id FROM {PANELS} WHERE panel_id = :p "
           f"UNION SELECT panel_id FROM {PANEL_LATEST} WHERE panel_id = :p")
    found = _summaries(conn, ids, {"p": panel_id})
    return found[0] if found else None


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
        f"SELECT Panel_id, power_panel, current_status, time_data FROM {READINGS} "
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
            f"SELECT Panel_id, total_power, window_start, window_end, reading_count FROM {WINDOWS} "
            "WHERE Panel_id = :p AND window_start >= :start AND window_start < :end "
            "AND (:after IS NULL OR window_start > :after) ORDER BY window_start LIMIT :limit"
        ),
        {"p": panel_id, "start": start, "end": end, "after": after, "limit": limit},
    )
    return [WindowRow(r[0], float(r[1]), r[2], r[3], int(r[4])) for r in rows]


# ---------------------------------------------------------------- energy
@dataclass(frozen=True, slots=True)
class EnergyFigure:
    """Energy of one period and how much of it the data covers."""

    period: Period
    energy_wh: float | None  # None: no bucket (and no rollup) in the period
    covered_seconds: float  # panel-seconds for the fleet
    expected_seconds: float  # the period's seconds up to now; x panels registered for the fleet

    @property
    def coverage(self) -> float | None:
        """covered / expected; None for a period wholly in the future. Can pass 1 for the fleet
        when panels nobody registered report."""
        return None if self.expected_seconds <= 0 else self.covered_seconds / self.expected_seconds


def _day_number(day: date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day


def _datetime_number(moment: datetime) -> int:
    """What MariaDB's `datetime_column + 0` gives for a whole-second DATETIME: YYYYMMDDhhmmss."""
    return _day_number(moment.date()) * 1_000_000 + moment.hour * 10_000 + moment.minute * 100 + moment.second


def _runs(days: Sequence[date]) -> list[tuple[date, date]]:
    """Sorted days -> maximal runs of consecutive days, as (first, last)."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _grouped(
    conn: Connection,
    source: str,
    key: str,
    edges: Sequence[int],
    ranges: Sequence[tuple[object, object]],
    sums: str,
    panel_id: str | None,
    zone_name: str | None = None,
    site_id: str | None = None,
) -> dict[int, tuple[float, float]]:
    """Rows of `source` (one panel's, one site's panels', or all) with `key` in any of `ranges`,
    summed per period.

    INTERVAL() finds each row's period among the sorted `edges` by binary search, so one index
    range scan serves any calendar, DST days included.
    """
    if not ranges:
        return {}
    where = " OR ".join(f"({key} >= :lo{i} AND {key} < :hi{i})" for i in range(len(ranges)))
    params: dict[str, object] = {"p": panel_id, "tz": zone_name, "site": site_id}
    for i, (lo, hi) in enumerate(ranges):
        params[f"lo{i}"], params[f"hi{i}"] = lo, hi
    for i, edge in enumerate(edges):
        params[f"e{i}"] = edge
    edge_list = ", ".join(f":e{i}" for i in range(len(edges)))
    panel_filter = "panel_id = :p AND " if panel_id is not None else ""
    if site_id is not None and source == SITE_DAILY_ENERGY:
        panel_filter += "site_id = :site AND "
    elif site_id is not None:  # a semi-join driven by the panels' (site_id, ...) index
        panel_filter += f"panel_id IN (SELECT panel_id FROM {PANELS} WHERE site_id = :site) AND "
    if zone_name is not None:
        panel_filter += "time_zone = :tz AND "
    stmt = text(
        f"SELECT INTERVAL({key} + 0, {edge_list}) - 1 AS k, {sums} FROM {source} "
        f"WHERE {panel_filter}({where}) GROUP BY k"
    )
    return {int(k): (float(e or 0.0), float(c or 0.0)) for k, e, c in conn.execute(stmt, params)}


def registered_panels(conn: Connection, site_id: str | None = None) -> int:
    """Panels in the registry: the fleet's, or one site's (from `registry_counts`, which triggers on
    the registry keep: one row a site, not a count over 200k panels a request)."""
    site_filter = "" if site_id is None else " WHERE site_id = :s"
    return int(conn.execute(text(f"SELECT COALESCE(SUM(panels), 0) FROM {REGISTRY_COUNTS}{site_filter}"),
                            {"s": site_id}).scalar())


def energy_series(
    conn: Connection, panel_id: str | None, spans: Sequence[Period], *, now: datetime, tz: ZoneInfo,
    site_id: str | None = None,
) -> list[EnergyFigure]:
    """Energy per period of `spans` (contiguous, from `periods()`), for one panel, one site's panels
    (`site_id`) or the fleet (both None).

    A site's energy sums its panels' 15-minute buckets (the panels come from the registry's site
    index), and for whole past days its site daily rollup (`site_daily_energy`) in the same zone;
    coverage is over the seconds times the site's panels.

    Sums 15-minute buckets. For DAY and coarser, whole days before today that the daily rollups
    hold in the same zone (`fleet_daily_energy` has the day, `time_zone` = `tz`) come from the
    rollups instead: the same figures, 96 times fewer rows. One index range per source; never
    raw readings.
    """
    if not spans:
        return []
    energy: dict[int, float] = {}
    covered: dict[int, float] = {}
    present: set[int] = set()

    def add(parts: dict[int, tuple[float, float]]) -> None:
        for k, (e, c) in parts.items():
            energy[k] = energy.get(k, 0.0) + e
            covered[k] = covered.get(k, 0.0) + c
            present.add(k)

    first_day, last_day = spans[0].first_day, spans[-1].last_day
    zone_name = getattr(tz, "key", "UTC")
    rolled: list[date] = []
    day_table = SITE_DAILY_ENERGY if site_id is not None else FLEET_DAILY_ENERGY
    if first_day is not None and last_day is not None:
        rolled = [
            d
            for (d,) in conn.execute(
                text(
                    f"SELECT day FROM {day_table} WHERE day >= :a AND day <= :b AND day < :today "
                    f"AND time_zone = :tz {'AND site_id = :site ' if site_id is not None else ''}ORDER BY day"
                ),
                {"a": first_day, "b": last_day, "today": local_day(now, tz), "tz": zone_name, "site": site_id},
            )
        ]
    if rolled:
        table = day_table if panel_id is None else PANEL_DAILY_ENERGY
        day_edges = [_day_number(p.first_day) for p in spans if p.first_day is not None]
        day_edges.append(_day_number(last_day + timedelta(days=1)))  # type: ignore[operator]
        ranges = [(a, b + timedelta(days=1)) for a, b in _runs(rolled)]
        add(
            _grouped(conn, table, "day", day_edges, ranges, "SUM(energy_wh), SUM(covered_seconds)", panel_id, zone_name,
                     site_id=site_id)
        )

    # Buckets for everything the rollups did not give: UTC spans of the remaining local days.
    if rolled:
        rolled_set = set(rolled)
        remaining = [d for d in _days(first_day, last_day) if d not in rolled_set]  # type: ignore[arg-type]
        bucket_ranges = [
            (to_grid(local_midnight(a, tz)), to_grid(local_midnight(b + timedelta(days=1), tz)))
            for a, b in _runs(remaining)
        ]
    else:
        bucket_ranges = [(spans[0].start, spans[-1].end)]
    edges = [_datetime_number(p.start) for p in spans] + [_datetime_number(spans[-1].end)]
    source = FLEET_BUCKETS if panel_id is None and site_id is None else PANEL_BUCKETS
    add(_grouped(conn, source, "bucket_start", edges, bucket_ranges, "SUM(energy_wh), SUM(covered_seconds)", panel_id,
                 site_id=site_id))

    panels = 1 if panel_id is not None else registered_panels(conn, site_id)
    figures = []
    for k, period in enumerate(spans):
        elapsed = max(0.0, (min(period.end, now) - period.start).total_seconds())
        figures.append(
            EnergyFigure(period, energy.get(k) if k in present else None, covered.get(k, 0.0), elapsed * panels)
        )
    return figures


def bucket_energy(conn: Connection, panel_id: str | None, start: datetime, end: datetime | None = None) -> float:
    """Energy (Wh) of the buckets starting in `[start, end)` (end None = all after start)."""
    table = FLEET_BUCKETS if panel_id is None else PANEL_BUCKETS
    panel_filter = "panel_id = :p AND " if panel_id is not None else ""
    upper = "AND bucket_start < :b" if end is not None else ""
    value = conn.execute(
        text(f"SELECT SUM(energy_wh) FROM {table} WHERE {panel_filter}bucket_start >= :a {upper}"),
        {"p": panel_id, "a": start, "b": end},
    ).scalar()
    return float(value or 0.0)


def lifetime_energy(conn: Connection, panel_id: str | None, *, now: datetime | None = None,
                    site_tz: ZoneInfo | None = None) -> float:
    """All energy recorded (Wh): every 15-minute bucket kept, plus the daily rollups whose buckets
    were folded into them (`storage/history/folding.py` deletes exactly the buckets a folded rollup
    sums). Exact whichever days are rolled up or folded, in whichever zone; no rollup of a day whose
    buckets are kept counts. `now` and `site_tz` do not change the answer (kept for callers).

    Cost: the kept buckets (one index range, `SOLAR_BUCKET_RETENTION_DAYS` x 96 rows) and the
    folded days' rows.
    """
    del now, site_tz
    table = FLEET_DAILY_ENERGY if panel_id is None else PANEL_DAILY_ENERGY
    panel_filter = "" if panel_id is None else "panel_id = :p AND "
    folded = conn.execute(
        text(f"SELECT SUM(energy_wh) FROM {table} WHERE {panel_filter}buckets_folded_at IS NOT NULL"),
        {"p": panel_id},
    ).scalar()
    return float(folded or 0.0) + bucket_energy(conn, panel_id, datetime(1970, 1, 1))


# ---------------------------------------------------------------- fleet, alerts, health
def fleet_now(conn: Connection, now: datetime) -> FleetNow:
    """Current fleet power and panels reporting, as the stream counted them after its newest batch
    (`fleet_now`, one row: the cost follows nothing). Counters older than their horizon say nobody
    reports: the stream has not written anything lately."""
    row = conn.execute(text(
        f"SELECT as_of, horizon_seconds, power_w, panels_reporting, panels_online, newest_reading FROM {FLEET_NOW} "
        "WHERE id = 1")).first()
    if row is None:
        return FleetNow(0.0, 0, 0, registered_panels(conn), None)
    as_of, horizon, power, reporting, online, newest = row
    if (now - as_of).total_seconds() > horizon:
        return FleetNow(0.0, 0, 0, registered_panels(conn), newest)
    return FleetNow(float(power), int(reporting), int(online), registered_panels(conn), newest)


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
        "SELECT id, panel_id, kind, state, opened_at, resolved_at, last_checked, detail, severity, metric, evidence, "
        f"fault_since FROM {PANEL_ALERTS} "
        "WHERE (:state IS NULL OR state = :state) AND kind IN :kinds "
        "AND (:panel IS NULL OR panel_id = :panel) "
        "AND (:since IS NULL OR state = 'open' OR resolved_at >= :since OR opened_at >= :since) "
        "AND (:before IS NULL OR id < :before) ORDER BY id DESC LIMIT :limit"
    ).bindparams(bindparam("kinds", expanding=True))
    rows = conn.execute(
        stmt,
        {"state": state, "kinds": list(kinds), "panel": panel_id, "since": since, "before": before_id, "limit": limit},
    )
    return [AlertRow(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11]) for r in rows]


def open_alert_counts(conn: Connection) -> dict[str, int]:
    """Open alerts per kind (every kind, 0 included), from the (state, kind) index."""
    rows = conn.execute(text(f"SELECT kind, COUNT(*) FROM {PANEL_ALERTS} WHERE state = 'open' GROUP BY kind")).all()
    counts = dict(rows)  # type: ignore[arg-type]
    return {kind: int(counts.get(kind, 0)) for kind in ALERT_KINDS}


def open_platform_alerts(conn: Connection) -> list[PlatformAlertRow]:
    """The platform's open alarms (one per kind at most: its unique open key)."""
    rows = conn.execute(text(
        f"SELECT kind, severity, opened_at, last_checked, detail, metric FROM {PLATFORM_ALERTS} "
        "WHERE open_key IS NOT NULL ORDER BY opened_at")).all()
    return [PlatformAlertRow(*row) for row in rows]


def stream_health(conn: Connection, now: datetime) -> StreamHealth:
    """The stream's heartbeat and dead-letter counts, each an index-bounded read.

    Heartbeat: the newest `stream_progress` row (the end of its `recorded_at` index). Newest event
    time: that of the newest batch in the last day that wrote any reading. Dead letters: counted
    up to `DEAD_LETTER_COUNT_CAP`.
    """
    since = now - timedelta(days=1)
    heartbeat = last_heartbeat(conn)
    event_time = conn.execute(
        text(
            f"SELECT max_event_time FROM {STREAM_PROGRESS} WHERE recorded_at >= :since AND max_event_time IS NOT NULL "
            "ORDER BY recorded_at DESC LIMIT 1"
        ),
        {"since": since},
    ).scalar()
    total, recent = conn.execute(
        text(
            f"SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM {DEAD_LETTERS} LIMIT :cap) a), "
            f"(SELECT COUNT(*) FROM (SELECT 1 FROM {DEAD_LETTERS} WHERE recorded_at >= :since LIMIT :cap) b)"
        ),
        {"since": since, "cap": DEAD_LETTER_COUNT_CAP},
    ).one()
    # A handful of rows: the batches since the stream's last summary round (storage.stream.summaries).
    waiting, oldest = conn.execute(text(f"SELECT COUNT(*), MIN(recorded_at) FROM {STREAM_UNSUMMARIZED}")).one()
    return StreamHealth(heartbeat, event_time, int(total), int(recent), int(waiting), oldest)
