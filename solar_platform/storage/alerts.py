"""Fault detection against the live tables: read the bucket summaries, judge, keep `panel_alerts`.

One evaluation (the Dagster `panel_health` sensor, or `solar-platform health check`):

1. `now` = the platform's clock (injectable for tests), never the newest event time.
2. The window = the last `lookback` whole buckets ending `settle` seconds before now (the stream's
   lag), read from panelData by its time index and summarised in SQL: one row per panel and bucket.
3. Active panels = registered and not retired, plus any panel that reported in the window.
   Last seen comes from `panel_latest` (kept by the stream), so a long silence costs no scan.
4. The stream's heartbeat (`stream_progress`) older than `stream_stale_after_seconds` (the limit the
   heartbeat sensor and the API use too): silence is not judged (the heartbeat sensor raises the
   one pipeline alarm), and no silent alert opens or resolves.
5. `faults.evaluate` + `faults.decide`, then one transaction opens, confirms and resolves alerts.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import Connection, Engine, text

from solar_platform.settings import Settings
from solar_platform.storage import faults as fault_rules
from solar_platform.storage import notifications, pipeline_status
from solar_platform.storage.db import PANEL_ALERTS, PANELS
from solar_platform.storage.registry import has_table


@dataclass(frozen=True)
class AlertChanges:
    opened: int
    confirmed: int
    resolved: int
    open_now: int
    open_by_kind: dict[str, int]


@dataclass(frozen=True)
class HealthRun:
    evaluation: fault_rules.Evaluation
    changes: AlertChanges
    window_start: datetime
    window_end: datetime


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _epoch(value: object) -> float:
    return float("nan") if value is None else float(value)


def stream_alive(conn: Connection, now: datetime, limit_seconds: float) -> bool:
    age = pipeline_status.heartbeat_age_seconds(pipeline_status.last_heartbeat(conn), now)
    return not pipeline_status.heartbeat_is_stale(age, limit_seconds)


def open_alert_keys(conn: Connection) -> set[tuple[str, str]]:
    return {(pid, kind) for pid, kind in conn.execute(text(
        f"SELECT panel_id, kind FROM {PANEL_ALERTS} WHERE state = 'open'"))}


def load_features(conn: Connection, th: fault_rules.FaultThresholds, *, now: datetime, settle_seconds: float
                  ) -> fault_rules.BucketFeatures:
    """Bucket summaries of the window before `now` for every active panel (see the module docstring)."""
    step = th.step_seconds
    until_s = math.floor((now.timestamp() - settle_seconds) / step) * step
    m = th.lookback_buckets
    origin_s = until_s - m * step
    since, until = (datetime.fromtimestamp(t, UTC).replace(tzinfo=None) for t in (origin_s, until_s))
    registry = conn.execute(text("SELECT panel_id, pmax_w, UNIX_TIMESTAMP(last_seen), retired_at IS NOT NULL "
                                 f"FROM {PANELS}")).all()
    retired = {pid for pid, _, _, gone in registry if gone}
    rows = conn.execute(text(
        "SELECT Panel_id, FLOOR((UNIX_TIMESTAMP(time_data) - :origin) / :step) AS b, COUNT(*), "
        "SUM(current_status = 1), AVG(IF(current_status = 1, power_panel, NULL)), "
        "MIN(IF(current_status = 1, power_panel, NULL)), MAX(IF(current_status = 1, power_panel, NULL)), "
        "MIN(power_panel), MAX(power_panel), "
        "UNIX_TIMESTAMP(MAX(IF(current_status = 1, time_data, NULL))), "
        "UNIX_TIMESTAMP(MAX(IF(current_status = 0, time_data, NULL))), UNIX_TIMESTAMP(MIN(time_data)) "
        "FROM panelData WHERE time_data >= :since AND time_data < :until GROUP BY Panel_id, b"),
        {"origin": origin_s, "step": step, "since": since, "until": until}).all()
    ids = sorted(({pid for pid, *_ in registry} | {r[0] for r in rows}) - retired)
    index = {pid: i for i, pid in enumerate(ids)}
    pmax = {pid: w for pid, w, _, _ in registry}
    feats = fault_rules.BucketFeatures.empty(
        ids, np.array([np.nan if pmax.get(pid) is None else float(pmax[pid]) for pid in ids]),
        origin_s + step * np.arange(m))
    for r in rows:
        i = index.get(r[0])
        b = int(r[1])
        if i is None or not 0 <= b < m:
            continue
        feats.count[b, i], feats.count_on[b, i] = int(r[2]), int(r[3] or 0)
        for array, value in zip((feats.mean_on, feats.min_on, feats.max_on, feats.min_power, feats.max_power,
                                 feats.last_on, feats.last_off, feats.first_time), r[4:], strict=True):
            array[b, i] = _epoch(value)
    last_seen = {pid: seen for pid, _, seen, _ in registry}
    if has_table(conn, "panel_latest"):
        last_seen.update(conn.execute(text("SELECT panel_id, UNIX_TIMESTAMP(last_seen) FROM panel_latest")).all())
    feats.last_seen = np.array([_epoch(last_seen.get(pid)) for pid in ids])
    return feats


def apply_decisions(conn: Connection, decisions: list[fault_rules.Decision], now: datetime) -> tuple[int, int, int]:
    """Open, confirm and resolve, in the caller's transaction; returns (opened, confirmed, resolved).

    The unique `open_key` keeps one open alert per (panel, kind) even if two evaluations race:
    inserting an already-open one just confirms it.
    """
    moment = _naive(now)

    def row(d: fault_rules.Decision) -> dict[str, object]:
        since = None if d.since is None else datetime.fromtimestamp(d.since, UTC).replace(tzinfo=None)
        return {"p": d.panel_id, "k": d.kind, "now": moment, "detail": fault_rules.describe(d)[:255], "sev": d.severity,
                "metric": d.metric, "ev": json.dumps(d.evidence, separators=(",", ":"))[:1024], "since": since}

    by_action: dict[str, list[dict[str, object]]] = {"open": [], "keep": [], "resolve": []}
    for d in decisions:
        by_action[d.action].append(row(d))
    if by_action["open"]:
        conn.execute(text(
            f"INSERT INTO {PANEL_ALERTS} (panel_id, kind, state, opened_at, last_checked, detail, severity, metric, "
            "evidence, fault_since) VALUES (:p, :k, 'open', :now, :now, :detail, :sev, :metric, :ev, :since) "
            "ON DUPLICATE KEY UPDATE last_checked = VALUES(last_checked)"), by_action["open"])
    if by_action["keep"]:
        conn.execute(text(
            f"UPDATE {PANEL_ALERTS} SET last_checked = :now, detail = :detail, metric = :metric, evidence = :ev "
            "WHERE panel_id = :p AND kind = :k AND state = 'open'"), by_action["keep"])
    if by_action["resolve"]:
        conn.execute(text(
            f"UPDATE {PANEL_ALERTS} SET state = 'resolved', resolved_at = :now, last_checked = :now "
            "WHERE panel_id = :p AND kind = :k AND state = 'open'"), by_action["resolve"])
    # The outbox of notifications: the events commit (or roll back) with the changes themselves.
    notifications.record_alert_events(conn, now=moment, opened=[(r["p"], r["k"]) for r in by_action["open"]],
                                      resolved=[(r["p"], r["k"]) for r in by_action["resolve"]])
    return len(by_action["open"]), len(by_action["keep"]), len(by_action["resolve"])


def run_health(engine: Engine, settings: Settings, *, now: datetime | None = None,
               thresholds: fault_rules.FaultThresholds | None = None) -> HealthRun:
    """One evaluation of every active panel, written to `panel_alerts` (see the module docstring)."""
    now = now or datetime.now(UTC)
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    th = thresholds or fault_rules.FaultThresholds.from_settings(settings)
    with engine.begin() as conn:
        open_keys = open_alert_keys(conn)
        alive = stream_alive(conn, now, settings.stream_stale_after_seconds)
        feats = load_features(conn, th, now=now, settle_seconds=settings.health_settle_seconds)
        evaluation = fault_rules.evaluate(feats, th, now=now.timestamp(), open_alerts=open_keys, stream_alive=alive)
        decisions = fault_rules.decide(evaluation, open_keys)
        opened, confirmed, resolved = apply_decisions(conn, decisions, now)
        by_kind = Counter(kind for (kind,) in conn.execute(text(
            f"SELECT kind FROM {PANEL_ALERTS} WHERE state = 'open'")))
    starts = feats.bucket_start
    return HealthRun(
        evaluation,
        AlertChanges(opened, confirmed, resolved, sum(by_kind.values()),
                     {kind: by_kind.get(kind, 0) for kind in fault_rules.ALERT_KINDS}),
        datetime.fromtimestamp(float(starts[0]), UTC) if len(starts) else now,
        datetime.fromtimestamp(float(starts[-1]) + th.step_seconds, UTC) if len(starts) else now,
    )
