"""Fault detection against the stream's summaries: judge every active panel, keep `panel_alerts`, and
raise one pipeline alarm (`platform_alerts`) when the stream itself falls behind.

One evaluation (the Dagster `panel_health` sensor, or `solar-platform health check`):

1. The pipeline's frontier: how far the stream has committed the fleet's readings (the newest
   batch frontier, `pipeline_status.frontier`). One wrong clock cannot move it.
2. The minutes judged end at the frontier's minute (or `settle` seconds before `now`, whichever is
   earlier), and their features come from the window summaries, each minute read once
   (`features`): about one row per panel per evaluation.
3. `faults.evaluate` + `faults.decide`: silence is measured against the frontier, so a slow stream
   makes nobody silent. Without a frontier (nothing committed lately) silence is not judged.
4. One transaction writes the decisions as sets (a scratch table joined to `panel_alerts`, never an
   UPDATE per panel), the notification outbox, and the pipeline alarm: open while the frontier is
   more than `SOLAR_HEALTH_PIPELINE_LAG_SECONDS` behind the platform's clock, or while nothing was
   committed lately although the platform has readings. While the `disk_full` alarm is open (the
   stream holds a batch until MariaDB has space: Dagster's heartbeat sensor), it is left as it is.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, text

from solar_platform.settings import Settings
from solar_platform.storage import notifications, pipeline_status
from solar_platform.storage.db import PANEL_ALERTS, PANEL_LATEST, PLATFORM_ALERTS
from solar_platform.storage.health import faults as fault_rules
from solar_platform.storage.health import features
from solar_platform.storage.health.expected import SiteExpectation
from solar_platform.storage.sites import site_places

PIPELINE_LAG = "pipeline_lag"
# The stream holds a batch because MariaDB's disk is full (written by Dagster's heartbeat sensor).
DISK_FULL = "disk_full"


@dataclass(frozen=True)
class AlertChanges:
    opened: int
    confirmed: int
    resolved: int
    open_now: int
    open_by_kind: dict[str, int]


@dataclass(frozen=True)
class PipelineAlarm:
    open: bool
    lag_seconds: float | None  # the platform's clock minus the frontier; None: nothing committed lately
    detail: str


@dataclass(frozen=True)
class HealthRun:
    evaluation: fault_rules.Evaluation
    changes: AlertChanges
    window_start: datetime
    window_end: datetime
    frontier: datetime | None
    pipeline: PipelineAlarm


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def open_alert_keys(conn: Connection) -> set[tuple[str, str]]:
    return {(pid, kind) for pid, kind in conn.execute(text(
        f"SELECT panel_id, kind FROM {PANEL_ALERTS} WHERE state = 'open'"))}


_DECISIONS = """CREATE TEMPORARY TABLE IF NOT EXISTS tmp_alert_decisions (
    open_key VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, action VARCHAR(8) NOT NULL,
    detail VARCHAR(255) NULL, metric DOUBLE NULL, evidence VARCHAR(1024) NULL,
    PRIMARY KEY (open_key)) ENGINE=InnoDB"""


def apply_decisions(conn: Connection, decisions: list[fault_rules.Decision], now: datetime) -> tuple[int, int, int]:
    """Open, confirm and resolve, in the caller's transaction; returns (opened, confirmed, resolved).

    Written as sets: opens in one multi-row insert, confirmations and resolutions through a scratch
    table joined to the open alerts by their unique `open_key` (one statement each, however many
    panels). The unique key keeps one open alert per (panel, kind) even if two evaluations race:
    inserting an already-open one just confirms it.
    """
    moment = _naive(now)

    def row(d: fault_rules.Decision) -> dict[str, object]:
        since = None if d.since is None else datetime.fromtimestamp(d.since, UTC).replace(tzinfo=None)
        return {"p": d.panel_id, "k": d.kind, "key": f"{d.panel_id}|{d.kind}", "a": d.action, "now": moment,
                "detail": fault_rules.describe(d)[:255], "sev": d.severity, "metric": d.metric,
                "ev": json.dumps(d.evidence, separators=(",", ":"))[:1024], "since": since}

    by_action: dict[str, list[dict[str, object]]] = {"open": [], "keep": [], "resolve": []}
    for d in decisions:
        by_action[d.action].append(row(d))
    if by_action["open"]:
        conn.execute(text(
            f"INSERT INTO {PANEL_ALERTS} (panel_id, kind, state, opened_at, last_checked, detail, severity, metric, "
            "evidence, fault_since) VALUES (:p, :k, 'open', :now, :now, :detail, :sev, :metric, :ev, :since) "
            "ON DUPLICATE KEY UPDATE last_checked = VALUES(last_checked)"), by_action["open"])
    if by_action["keep"] or by_action["resolve"]:
        conn.execute(text(_DECISIONS))
        conn.execute(text("DELETE FROM tmp_alert_decisions"))
        conn.execute(text("INSERT INTO tmp_alert_decisions (open_key, action, detail, metric, evidence) "
                          "VALUES (:key, :a, :detail, :metric, :ev)"), by_action["keep"] + by_action["resolve"])
        conn.execute(text(
            f"UPDATE tmp_alert_decisions t STRAIGHT_JOIN {PANEL_ALERTS} a ON a.open_key = t.open_key "
            "SET a.last_checked = :now, a.detail = IF(t.action = 'keep', t.detail, a.detail), "
            "a.metric = IF(t.action = 'keep', t.metric, a.metric), "
            "a.evidence = IF(t.action = 'keep', t.evidence, a.evidence), "
            "a.resolved_at = IF(t.action = 'resolve', :now, a.resolved_at), "
            "a.state = IF(t.action = 'resolve', 'resolved', a.state)"), {"now": moment})
    # The outbox of notifications: the events commit (or roll back) with the changes themselves.
    notifications.record_alert_events(conn, now=moment, opened=[(r["p"], r["k"]) for r in by_action["open"]],
                                      resolved=[(r["p"], r["k"]) for r in by_action["resolve"]])
    return len(by_action["open"]), len(by_action["keep"]), len(by_action["resolve"])


def judge_pipeline(conn: Connection, frontier: datetime | None, now: datetime, limit_seconds: float,
                   horizon: timedelta) -> PipelineAlarm:
    """The pipeline alarm's verdict: the frontier more than `limit_seconds` behind the clock, or no
    batch committed readings within `horizon` while the platform holds readings."""
    if frontier is None:
        seen = conn.execute(text(f"SELECT 1 FROM {PANEL_LATEST} LIMIT 1")).first() is not None
        return PipelineAlarm(seen, None, f"no readings committed by the stream in the last "
                                         f"{horizon.total_seconds() / 60:.0f} min" if seen else "no readings yet")
    lag = (now - frontier.replace(tzinfo=UTC)).total_seconds()
    return PipelineAlarm(lag > limit_seconds, lag,
                         f"readings committed up to {frontier:%Y-%m-%d %H:%M:%S} UTC, {lag:.0f} s behind the "
                         f"platform's clock (limit {limit_seconds:.0f} s)")


def apply_pipeline_alarm(conn: Connection, alarm: PipelineAlarm, now: datetime) -> None:
    """Open, confirm or resolve the one `pipeline_lag` row of `platform_alerts`."""
    apply_platform_alarm(conn, PIPELINE_LAG, alarm.open, alarm.detail, alarm.lag_seconds, now)


def apply_platform_alarm(conn: Connection, kind: str, is_open: bool, detail: str, metric: float | None,
                         now: datetime) -> None:
    """Open or confirm (`is_open`), else resolve, the one row of `kind` in `platform_alerts`."""
    params = {"k": kind, "now": _naive(now), "detail": detail[:255], "metric": metric}
    if is_open:
        conn.execute(text(
            f"INSERT INTO {PLATFORM_ALERTS} (kind, state, severity, opened_at, last_checked, detail, metric) "
            "VALUES (:k, 'open', 'critical', :now, :now, :detail, :metric) ON DUPLICATE KEY UPDATE "
            "last_checked = VALUES(last_checked), detail = VALUES(detail), metric = VALUES(metric)"), params)
    else:
        conn.execute(text(
            f"UPDATE {PLATFORM_ALERTS} SET state = 'resolved', resolved_at = :now, last_checked = :now, "
            "detail = :detail, metric = :metric WHERE open_key = :k"), params)


def run_health(engine: Engine, settings: Settings, *, now: datetime | None = None,
               thresholds: fault_rules.FaultThresholds | None = None,
               cache: features.FeatureCache | None = None) -> HealthRun:
    """One evaluation of every active panel and of the pipeline (see the module docstring).

    `cache` keeps the minutes already read between evaluations; by default the process's own for
    this database and rule set.
    """
    now = now or datetime.now(UTC)
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    th = thresholds or fault_rules.FaultThresholds.from_settings(settings)
    if cache is None:
        cache = features.cache_for((settings.mysql_host, settings.mysql_port, settings.mysql_database, th))
    horizon = timedelta(minutes=th.lookback_minutes)
    with engine.connect() as conn:
        frontier = pipeline_status.frontier(conn, now, horizon)
        until_s = features.judged_until(now, settings.health_settle_seconds, frontier, th.step_seconds)
        expected = SiteExpectation(settings, site_places(conn)) if th.expected_fallback == "model" else None
        feats = features.load_features(conn, th, until_s=until_s, cache=cache, expected=expected)
        open_keys = open_alert_keys(conn)
        pipeline = judge_pipeline(conn, frontier, now, settings.health_pipeline_lag_seconds, horizon)
        # While MariaDB's disk is full, that is the one alarm: the lag it causes is not a second one.
        disk_full = conn.execute(text(f"SELECT 1 FROM {PLATFORM_ALERTS} WHERE open_key = :k"),
                                 {"k": DISK_FULL}).first() is not None
        conn.rollback()  # reads only: end the snapshot, hold nothing
    frontier_s = None if frontier is None else frontier.replace(tzinfo=UTC).timestamp()
    evaluation = fault_rules.evaluate(feats, th, now=now.timestamp(), open_alerts=open_keys, pipeline_time=frontier_s)
    decisions = fault_rules.decide(evaluation, open_keys)
    with engine.begin() as conn:
        opened, confirmed, resolved = apply_decisions(conn, decisions, now)
        if not disk_full:
            apply_pipeline_alarm(conn, pipeline, now)
        by_kind = Counter(dict(conn.execute(text(  # the (state, kind) index
            f"SELECT kind, COUNT(*) FROM {PANEL_ALERTS} WHERE state = 'open' GROUP BY kind")).all()))
    starts = feats.bucket_start
    return HealthRun(
        evaluation,
        AlertChanges(opened, confirmed, resolved, sum(by_kind.values()),
                     {kind: by_kind.get(kind, 0) for kind in fault_rules.ALERT_KINDS}),
        datetime.fromtimestamp(float(starts[0]), UTC) if len(starts) else now,
        datetime.fromtimestamp(float(starts[-1]) + th.step_seconds, UTC) if len(starts) else now,
        frontier, pipeline,
    )
