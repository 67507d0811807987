"""Panel health and live-data quality: pure classification (numpy) and the queries around it.

Two halves:

- `classify_panels` is pure: arrays in, one class per panel out. Unit-testable without a database.
- The rest reads the live tables (`panelData`, `stream_progress`, `dead_letters`, `panels`) and
  writes `panel_alerts`, through SQLAlchemy Core on the engines of `storage.db`.

Classes, in order of precedence (a panel gets the first that holds):

- **silent**: no reading for more than `silent_after_intervals` x the fleet's interval, measured
  against the fleet's newest reading (not the wall clock: when the whole stream stops, that is
  the heartbeat's alarm, not a thousand silent-panel alerts; a replayed past day judges alike);
- **offline**: its latest reading has status 0;
- **underperforming**: over the lookback, in at least `sustained_share` of the time buckets where
  the fleet produces (fleet median of P/Pmax >= `min_fleet_level`), its P/Pmax was below
  `underperforming_ratio` x the fleet's median P/Pmax in that bucket;
- **reporting**: everything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import Connection, Engine, text

REPORTING = "reporting"
OFFLINE = "offline"
SILENT = "silent"
UNDERPERFORMING = "underperforming"
ALERT_KINDS = (OFFLINE, SILENT, UNDERPERFORMING)

# Power above this multiple of a panel's rated Pmax is physically implausible.
PMAX_TOLERANCE = 1.25


@dataclass(frozen=True)
class HealthThresholds:
    """The knobs of `classify_panels`; every one is configurable from Dagster."""

    interval_seconds: float
    silent_after_intervals: float = 6.0
    underperforming_ratio: float = 0.6
    sustained_share: float = 0.8
    min_buckets: int = 5
    min_fleet_level: float = 0.05
    min_fleet_panels: int = 3


@dataclass
class FleetSnapshot:
    """What the classifier needs, as arrays aligned on `panel_ids` (n panels, m time buckets)."""

    panel_ids: np.ndarray  # (n,) str
    pmax_w: np.ndarray  # (n,) float, NaN when unknown
    last_seen: np.ndarray  # (n,) float epoch seconds, NaN when never seen
    last_status: np.ndarray  # (n,) int, -1 when never seen
    bucket_power_w: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))  # (m, n) mean W, NaN = none
    bucket_status: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))  # (m, n) min status, NaN = none


@dataclass(frozen=True)
class Classification:
    panel_ids: np.ndarray
    kinds: np.ndarray  # (n,) str: reporting | offline | silent | underperforming
    details: list[str]
    reference_time: float | None  # epoch seconds the silence was measured against

    def findings(self) -> dict[tuple[str, str], str]:
        """`{(panel_id, kind): detail}` for every panel that is not simply reporting."""
        return {
            (str(pid), str(kind)): detail
            for pid, kind, detail in zip(self.panel_ids, self.kinds, self.details, strict=True)
            if kind != REPORTING
        }

    def counts(self) -> dict[str, int]:
        return {kind: int(np.sum(self.kinds == kind)) for kind in (REPORTING, *ALERT_KINDS)}


def classify_panels(snapshot: FleetSnapshot, thresholds: HealthThresholds) -> Classification:
    """Classify every panel of the snapshot (pure; see the module docstring for the rules)."""
    n = len(snapshot.panel_ids)
    kinds = np.full(n, REPORTING, dtype=object)
    details = [""] * n
    seen = np.isfinite(snapshot.last_seen)
    reference = float(np.nanmax(snapshot.last_seen)) if seen.any() else None

    # underperforming first, so that silent/offline (which take precedence) overwrite it
    power, status = snapshot.bucket_power_w, snapshot.bucket_status
    if power.size and n:
        with np.errstate(invalid="ignore", divide="ignore"):
            norm = power / snapshot.pmax_w[np.newaxis, :]
        usable = np.isfinite(norm) & (status >= 1)
        norm = np.where(usable, norm, np.nan)
        counts = usable.sum(axis=1)
        judged_rows = counts >= thresholds.min_fleet_panels
        median = np.full(norm.shape[0], np.nan)
        if judged_rows.any():
            median[judged_rows] = np.nanmedian(norm[judged_rows], axis=1)
        producing = np.isfinite(median) & (median >= thresholds.min_fleet_level)
        judged = usable & producing[:, np.newaxis]
        below = judged & (norm < thresholds.underperforming_ratio * median[:, np.newaxis])
        judged_n = judged.sum(axis=0)
        below_n = below.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(judged_n > 0, below_n / np.maximum(judged_n, 1), 0.0)
            ratio = np.nanmedian(np.where(judged, norm / median[:, np.newaxis], np.nan), axis=0) if judged.any() \
                else np.full(n, np.nan)
        under = (judged_n >= thresholds.min_buckets) & (share >= thresholds.sustained_share)
        for i in np.flatnonzero(under):
            kinds[i] = UNDERPERFORMING
            details[i] = (f"P/Pmax at {ratio[i]:.0%} of the fleet median in {below_n[i]}/{judged_n[i]} "
                          f"producing buckets")

    offline = seen & (snapshot.last_status == 0)
    for i in np.flatnonzero(offline):
        kinds[i] = OFFLINE
        details[i] = "latest reading has status 0"

    limit = thresholds.silent_after_intervals * thresholds.interval_seconds
    if reference is not None:
        silent = ~seen | (reference - np.where(seen, snapshot.last_seen, -np.inf) > limit)
    else:
        silent = np.zeros(n, dtype=bool)  # nothing seen at all: the fleet, not a panel, is down
    for i in np.flatnonzero(silent):
        kinds[i] = SILENT
        if seen[i]:
            details[i] = f"no reading for {reference - snapshot.last_seen[i]:.0f} s (limit {limit:.0f} s)"
        else:
            details[i] = "never reported"
    return Classification(snapshot.panel_ids, kinds, details, reference)


# ---------------------------------------------------------------- reading the live tables
def _epoch(moment: datetime | None) -> float:
    if moment is None:
        return float("nan")
    return moment.replace(tzinfo=UTC).timestamp() if moment.tzinfo is None else moment.timestamp()


def load_snapshot(engine: Engine, *, lookback: timedelta, bucket_seconds: float) -> FleetSnapshot:
    """Registered panels plus every panel panelData has seen, with their recent bucketed readings.

    The buckets (`bucket_seconds` wide) cover `lookback` before the fleet's newest reading; each holds a
    panel's mean power and its lowest status in that bucket.
    """
    with engine.connect() as conn:
        latest = conn.execute(text(
            "SELECT d.Panel_id, d.current_status, d.time_data FROM panelData d JOIN "
            "(SELECT Panel_id, MAX(time_data) AS t FROM panelData GROUP BY Panel_id) m "
            "ON d.Panel_id = m.Panel_id AND d.time_data = m.t")).all()
        registry = dict(conn.execute(text("SELECT panel_id, pmax_w FROM panels")).all())
        ids = sorted(set(registry) | {row[0] for row in latest})
        index = {pid: i for i, pid in enumerate(ids)}
        n = len(ids)
        pmax = np.array([np.nan if registry.get(pid) is None else float(registry[pid]) for pid in ids])
        last_seen = np.full(n, np.nan)
        last_status = np.full(n, -1, dtype=int)
        for pid, status, moment in latest:
            last_seen[index[pid]] = _epoch(moment)
            last_status[index[pid]] = int(status)
        snapshot = FleetSnapshot(np.array(ids, dtype=object), pmax, last_seen, last_status)
        if not latest:
            return snapshot
        newest = max(row[2] for row in latest)
        since = newest - lookback
        rows = conn.execute(text(
            "SELECT Panel_id, FLOOR(UNIX_TIMESTAMP(time_data) / :b) AS bucket, AVG(power_panel), "
            "MIN(current_status) FROM panelData WHERE time_data > :since AND time_data <= :newest "
            "GROUP BY Panel_id, bucket"), {"b": bucket_seconds, "since": since, "newest": newest}).all()
    if rows:
        buckets = np.array([int(r[1]) for r in rows])
        first = buckets.min()
        m = int(buckets.max() - first + 1)
        power = np.full((m, n), np.nan)
        status = np.full((m, n), np.nan)
        cols = np.array([index[r[0]] for r in rows])
        power[buckets - first, cols] = [float(r[2]) for r in rows]
        status[buckets - first, cols] = [float(r[3]) for r in rows]
        snapshot.bucket_power_w, snapshot.bucket_status = power, status
    return snapshot


# ---------------------------------------------------------------- panel_alerts
@dataclass(frozen=True)
class AlertChanges:
    opened: int
    confirmed: int
    resolved: int
    open_now: int


def sync_alerts(engine: Engine, findings: Mapping[tuple[str, str], str], now: datetime | None = None) -> AlertChanges:
    """Make `panel_alerts` say exactly `findings`: open new ones, confirm kept ones, resolve the rest.

    At most one open alert per (panel, kind) holds by the table's unique `open_key`; inserting an
    already-open one (a concurrent evaluation) just confirms it.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        open_rows = conn.execute(text("SELECT id, panel_id, kind FROM panel_alerts WHERE state = 'open'")).all()
        open_by_key = {(pid, kind): alert_id for alert_id, pid, kind in open_rows}
        new = [key for key in findings if key not in open_by_key]
        kept = [key for key in findings if key in open_by_key]
        gone = [alert_id for key, alert_id in open_by_key.items() if key not in findings]
        if new:
            conn.execute(text(
                "INSERT INTO panel_alerts (panel_id, kind, state, opened_at, last_checked, detail) "
                "VALUES (:panel_id, :kind, 'open', :now, :now, :detail) "
                "ON DUPLICATE KEY UPDATE last_checked = VALUES(last_checked), detail = VALUES(detail)"),
                [{"panel_id": pid, "kind": kind, "now": now, "detail": findings[(pid, kind)][:255]}
                 for pid, kind in new])
        if kept:
            conn.execute(text("UPDATE panel_alerts SET last_checked = :now, detail = :detail WHERE id = :id"),
                         [{"id": open_by_key[key], "now": now, "detail": findings[key][:255]} for key in kept])
        for chunk in _chunks(gone, 1000):
            conn.execute(text("UPDATE panel_alerts SET state = 'resolved', resolved_at = :now, last_checked = :now "
                              "WHERE id IN :ids").bindparams(_expanding("ids")), {"now": now, "ids": chunk})
    return AlertChanges(len(new), len(kept), len(gone), len(findings))


def open_alerts(engine: Engine) -> dict[tuple[str, str], str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT panel_id, kind, detail FROM panel_alerts WHERE state = 'open'")).all()
    return {(pid, kind): detail or "" for pid, kind, detail in rows}


def _expanding(name: str):  # noqa: ANN202 - a SQLAlchemy bindparam
    from sqlalchemy import bindparam

    return bindparam(name, expanding=True)


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# ---------------------------------------------------------------- panel registry
def sync_panel_registry(engine: Engine, configured_pmax: Mapping[str, float]) -> dict[str, int]:
    """Upsert the configured panels' Pmax, then first/last seen of every panel panelData has seen.

    A panel seen in panelData but not configured gets a row with `pmax_w` NULL. Configured panels
    keep their rows; panels no longer configured keep theirs too (history), with their Pmax.
    """
    with engine.begin() as conn:
        for chunk in _chunks(list(configured_pmax.items()), 5000):
            conn.execute(text(
                "INSERT INTO panels (panel_id, pmax_w, updated_at) VALUES (:pid, :pmax, UTC_TIMESTAMP(3)) "
                "ON DUPLICATE KEY UPDATE "
                "updated_at = IF(pmax_w <=> VALUES(pmax_w), updated_at, UTC_TIMESTAMP(3)), "
                "pmax_w = VALUES(pmax_w)"),
                [{"pid": pid, "pmax": float(pmax)} for pid, pmax in chunk])
        seen = conn.execute(text(
            "INSERT INTO panels (panel_id, pmax_w, first_seen, last_seen, updated_at) "
            "SELECT Panel_id, NULL, MIN(time_data), MAX(time_data), UTC_TIMESTAMP(3) FROM panelData GROUP BY Panel_id "
            "ON DUPLICATE KEY UPDATE first_seen = LEAST(COALESCE(first_seen, VALUES(first_seen)), VALUES(first_seen)), "
            "last_seen = GREATEST(COALESCE(last_seen, VALUES(last_seen)), VALUES(last_seen))")).rowcount
        total, configured, reporting = conn.execute(text(
            "SELECT COUNT(*), COUNT(pmax_w), COUNT(last_seen) FROM panels")).one()
    return {"panels": int(total), "configured": int(configured), "seen": int(reporting),
            "seen_rows_touched": int(seen)}


# ---------------------------------------------------------------- live-table quality figures
@dataclass(frozen=True)
class TableStats:
    rows: int
    newest: datetime | None  # newest event time (UTC, naive as stored)
    lag_seconds: float | None  # wall clock minus newest event time

    @property
    def newest_epoch(self) -> float | None:
        return None if self.newest is None else _epoch(self.newest)


def table_stats(conn: Connection, table: str, time_column: str, now: datetime | None = None) -> TableStats:
    """Row count, newest event time and its lag behind `now` for one live table."""
    if table not in ("panelData", "panelDataAgg") or time_column not in ("time_data", "window_end"):
        raise ValueError(f"not a live table: {table}.{time_column}")
    rows, newest = conn.execute(text(f"SELECT COUNT(*), MAX({time_column}) FROM {table}")).one()
    now = now or datetime.now(UTC)
    lag = None if newest is None else now.timestamp() - _epoch(newest)
    return TableStats(int(rows), newest, lag)


def completeness(conn: Connection, *, window: timedelta, interval_seconds: float) -> dict[str, float]:
    """Readings per registered-or-seen panel in the `window` ending at the newest reading, vs the cadence."""
    newest = conn.execute(text("SELECT MAX(time_data) FROM panelData")).scalar()
    expected = window.total_seconds() / interval_seconds
    if newest is None:
        return {"panels": 0, "expected_per_panel": expected, "median_share": 0.0, "min_share": 0.0,
                "panels_below_90pct": 0}
    counts = dict(conn.execute(text(
        "SELECT Panel_id, COUNT(*) FROM panelData WHERE time_data > :since AND time_data <= :newest "
        "GROUP BY Panel_id"), {"since": newest - window, "newest": newest}).all())
    panels = {pid for (pid,) in conn.execute(text("SELECT panel_id FROM panels WHERE pmax_w IS NOT NULL"))}
    panels |= set(counts)
    shares = np.array([min(counts.get(pid, 0) / expected, 1.0) for pid in panels]) if panels else np.zeros(0)
    return {
        "panels": len(panels),
        "expected_per_panel": round(expected, 2),
        "median_share": float(np.median(shares)) if shares.size else 0.0,
        "min_share": float(shares.min()) if shares.size else 0.0,
        "panels_below_90pct": int(np.sum(shares < 0.9)),
    }


def power_out_of_bounds(conn: Connection, *, since: datetime | None, tolerance: float = PMAX_TOLERANCE
                        ) -> dict[str, object]:
    """Readings with P < 0 or P > tolerance x the panel's registered Pmax (since `since`, or all)."""
    where = "d.time_data >= :since AND " if since is not None else ""
    checked, negative, above, sample = conn.execute(text(
        "SELECT COUNT(*), COALESCE(SUM(d.power_panel < 0), 0), "
        "COALESCE(SUM(p.pmax_w IS NOT NULL AND d.power_panel > :tol * p.pmax_w), 0), "
        "MIN(IF(d.power_panel < 0 OR d.power_panel > :tol * p.pmax_w, d.Panel_id, NULL)) "
        f"FROM panelData d LEFT JOIN panels p ON p.panel_id = d.Panel_id WHERE {where}1=1"),
        {"tol": tolerance, "since": since}).one()
    return {"readings_checked": int(checked), "negative": int(negative), "above_limit": int(above),
            "example_panel": sample or ""}


def duplicate_keys(conn: Connection, relation: str, key_exprs: Iterable[str], params: Mapping | None = None
                   ) -> dict[str, object]:
    """Groups of `relation` (a table name or a parenthesised query with alias) sharing a key.

    `relation` and `key_exprs` are SQL written by this package, never user input.
    """
    keys = ", ".join(key_exprs)
    groups, extra = conn.execute(text(
        f"SELECT COUNT(*), COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) AS n FROM {relation} "
        f"GROUP BY {keys} HAVING COUNT(*) > 1) dup"), dict(params or {})).one()
    return {"duplicate_groups": int(groups), "extra_rows": int(extra)}


def readings_per_tick_duplicates(conn: Connection, *, since: datetime | None, interval_seconds: float
                                 ) -> dict[str, object]:
    """Panels with more than one reading in the same `interval_seconds` tick.

    panelData's key (panel, time) stops exact replays; this catches what the key cannot: the same
    reading delivered twice with a re-stamped time (e.g. a naive local time read in another zone).
    """
    where = "WHERE time_data >= :since" if since is not None else ""
    return duplicate_keys(
        conn, f"(SELECT Panel_id, time_data FROM panelData {where}) r",
        ["Panel_id", "FLOOR(UNIX_TIMESTAMP(time_data) / :interval)"],
        {"since": since, "interval": interval_seconds})


def dead_letter_rate(conn: Connection, *, since: datetime) -> dict[str, float]:
    """Dead letters / messages read by the stream since `since`, from stream_progress."""
    rows_in, dead = conn.execute(text(
        "SELECT COALESCE(SUM(rows_in), 0), COALESCE(SUM(dead_letters), 0) FROM stream_progress "
        "WHERE query_name = 'readings' AND recorded_at >= :since"), {"since": since}).one()
    table_dead = conn.execute(text("SELECT COUNT(*) FROM dead_letters WHERE recorded_at >= :since"),
                              {"since": since}).scalar()
    rows_in, dead = int(rows_in), max(int(dead), int(table_dead or 0))
    return {"messages": rows_in, "dead_letters": dead, "rate": dead / rows_in if rows_in else 0.0}


def last_heartbeat(conn: Connection) -> tuple[datetime | None, int]:
    """When the stream last recorded a micro-batch (UTC, aware) and how many batches it recorded."""
    newest, batches = conn.execute(text("SELECT MAX(recorded_at), COUNT(*) FROM stream_progress")).one()
    return (None if newest is None else newest.replace(tzinfo=UTC)), int(batches)
