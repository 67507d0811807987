"""Alert notifications' SQL: the outbox of alert events, and each message's delivery per channel.

- **Recording** (`record_alert_events`, `record_retired_panels`): in the very transaction that opens
  or resolves alerts, one `alert_events` row per change, copied from `panel_alerts` by its keys. An
  event exists exactly when its change committed; nothing is sent from inside that transaction.
- **Planning** (the delivery step, `notifications/delivery.py`): the pending events of one
  evaluation become one message each, or one digest; each message gets a delivery row per channel,
  its payload fixed once so every attempt sends the same bytes under the same key.
- **Delivering**: claim one due delivery (a lease, so a crashed sender's message is tried again:
  at least once), then mark it delivered, failed with its next attempt, or abandoned.
- **Status** (`delivery_status`): what `/api/v1/health` and Dagster show.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, text

from solar_platform.storage.db import ALERT_EVENTS, NOTIFICATION_DELIVERIES, PANEL_ALERTS

OPENED, RESOLVED = "opened", "resolved"
PENDING, DELIVERED, ABANDONED = "pending", "delivered", "abandoned"
ALERT, DIGEST = "alert", "digest"  # a delivery's shape: one event, or a digest of one evaluation's
# A digest counts events by these columns. Sites will add "site" here (and the column to alert_events).
DIGEST_DIMENSIONS = ("event", "kind")
# Health's counts stop here, like the dead letters': "10000" means at least that many.
COUNT_CAP = 10_000
_CHUNK = 1000
_EVENT_COLUMNS = "id, alert_id, panel_id, kind, event, severity, detail, metric, occurred_at"
_DELIVERY_COLUMNS = "id, message_key, channel, shape, event_count, payload, attempts, created_at"


@dataclass(frozen=True)
class AlertEvent:
    id: int
    alert_id: int
    panel_id: str
    kind: str
    event: str  # opened | resolved
    severity: str
    detail: str | None
    metric: float | None
    occurred_at: datetime


@dataclass(frozen=True)
class EvaluationSummary:
    """What a digest says about one evaluation's events: counts per group and a sample."""

    evaluation_id: str
    event_count: int
    occurred_at: datetime
    groups: list[dict[str, object]]  # the DIGEST_DIMENSIONS' values and "count"
    sample: list[AlertEvent]  # the most severe first


@dataclass(frozen=True)
class Delivery:
    id: int
    message_key: str
    channel: str
    shape: str
    event_count: int
    payload: str
    attempts: int  # including the one just claimed
    created_at: datetime


@dataclass(frozen=True)
class DeliveryStatus:
    pending: int  # messages not yet delivered on a channel (retries included), up to COUNT_CAP
    failing: int  # of those, the ones whose last attempt failed
    abandoned_recently: int
    events_waiting: int  # alert events not yet made into messages, up to COUNT_CAP
    oldest_pending: datetime | None
    last_error: str | None  # "<channel>: <error>" of the newest failure still failing or abandoned recently


def new_key() -> str:
    """An evaluation id or a message's idempotency key: random, so a rebuilt database never reuses one."""
    return uuid.uuid4().hex


def _chunks(items: Sequence[str], size: int = _CHUNK) -> list[Sequence[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# ---------------------------------------------------------------- recording, in the alert change's transaction
# `now` as the DATETIME(3) columns stored it (the server drops the digits beyond milliseconds).
_STORED_NOW = "CAST(:now AS DATETIME(3))"
_COPY = (f"INSERT INTO {ALERT_EVENTS} (evaluation_id, alert_id, panel_id, kind, event, severity, detail, metric, "
         "occurred_at) SELECT :evaluation, id, panel_id, kind, :event, severity, detail, metric, :now "
         f"FROM {PANEL_ALERTS} ")


def record_alert_events(conn: Connection, *, opened: Sequence[tuple[str, str]], resolved: Sequence[tuple[str, str]],
                        now: datetime) -> int:
    """Record the alerts this transaction opened and resolved at `now`, (panel, kind) each; returns the count.

    Call it after the changes, in their transaction. Opened: the open alert of each key whose
    `opened_at` is `now` (one seek on the unique open key; a racing evaluation's insert that only
    confirmed an alert is not an opening). Resolved: the alerts of those panels resolved at `now`.
    """
    evaluation, recorded = new_key(), 0
    for chunk in _chunks([f"{panel}|{kind}" for panel, kind in opened]):
        recorded += conn.execute(text(_COPY + f"WHERE open_key IN :keys AND opened_at = {_STORED_NOW}").bindparams(
            bindparam("keys", expanding=True)), {"evaluation": evaluation, "event": OPENED, "now": now,
                                                  "keys": list(chunk)}).rowcount
    for chunk in _chunks([f"{panel}|{kind}" for panel, kind in resolved]):
        recorded += conn.execute(text(
            _COPY + f"WHERE panel_id IN :panels AND state = 'resolved' AND resolved_at = {_STORED_NOW} "
            "AND CONCAT(panel_id, '|', kind) IN :keys").bindparams(
            bindparam("panels", expanding=True), bindparam("keys", expanding=True)),
            {"evaluation": evaluation, "event": RESOLVED, "now": now, "keys": list(chunk),
             "panels": sorted({key.partition("|")[0] for key in chunk})}).rowcount
    return recorded


def record_retired_panels(conn: Connection, panel_ids: Sequence[str], now: datetime) -> int:
    """Record the alerts that retiring `panel_ids` resolved at `now` (every kind), as one evaluation."""
    evaluation, recorded = new_key(), 0
    for chunk in _chunks(list(panel_ids)):
        recorded += conn.execute(text(
            _COPY + f"WHERE panel_id IN :panels AND state = 'resolved' AND resolved_at = {_STORED_NOW}").bindparams(
            bindparam("panels", expanding=True)),
            {"evaluation": evaluation, "event": RESOLVED, "now": now, "panels": list(chunk)}).rowcount
    return recorded


# ---------------------------------------------------------------- planning
def pending_evaluations(conn: Connection, limit: int) -> list[str]:
    """Evaluations with events not yet made into messages, oldest first."""
    return list(conn.execute(text(
        f"SELECT evaluation_id FROM {ALERT_EVENTS} WHERE planned_at IS NULL GROUP BY evaluation_id "
        "ORDER BY MIN(id) LIMIT :limit"), {"limit": limit}).scalars())


def lock_pending_events(conn: Connection, evaluation_id: str) -> int:
    """Lock an evaluation's pending events for this transaction; returns how many are still pending
    (0 when another delivery step planned them meanwhile)."""
    return int(conn.execute(text(
        f"SELECT COUNT(*) FROM {ALERT_EVENTS} WHERE planned_at IS NULL AND evaluation_id = :evaluation FOR UPDATE"),
        {"evaluation": evaluation_id}).scalar_one())


def _event(row: Sequence[object]) -> AlertEvent:
    return AlertEvent(*row)  # type: ignore[arg-type]


def pending_events(conn: Connection, evaluation_id: str) -> list[AlertEvent]:
    return [_event(row) for row in conn.execute(text(
        f"SELECT {_EVENT_COLUMNS} FROM {ALERT_EVENTS} WHERE planned_at IS NULL AND evaluation_id = :evaluation "
        "ORDER BY id"), {"evaluation": evaluation_id})]


def evaluation_summary(conn: Connection, evaluation_id: str, sample_size: int) -> EvaluationSummary:
    """Counts of an evaluation's pending events by DIGEST_DIMENSIONS, and a sample, most severe first."""
    dimensions = ", ".join(DIGEST_DIMENSIONS)
    where = "WHERE planned_at IS NULL AND evaluation_id = :evaluation"
    params = {"evaluation": evaluation_id, "limit": sample_size}
    groups = [
        {**dict(zip(DIGEST_DIMENSIONS, row[:-1], strict=True)), "count": int(row[-1])}
        for row in conn.execute(text(
            f"SELECT {dimensions}, COUNT(*) FROM {ALERT_EVENTS} {where} GROUP BY {dimensions} "
            f"ORDER BY COUNT(*) DESC, {dimensions}"), params)
    ]
    sample = [_event(row) for row in conn.execute(text(
        f"SELECT {_EVENT_COLUMNS} FROM {ALERT_EVENTS} {where} "
        "ORDER BY FIELD(severity, 'critical', 'major', 'minor'), panel_id, id LIMIT :limit"), params)]
    occurred_at = conn.execute(text(f"SELECT MIN(occurred_at) FROM {ALERT_EVENTS} {where}"), params).scalar_one()
    event_count = sum(int(group["count"]) for group in groups)  # type: ignore[call-overload]
    return EvaluationSummary(evaluation_id, event_count, occurred_at, groups, sample)


def mark_event_planned(conn: Connection, event_id: int, message_key: str | None, now: datetime) -> None:
    conn.execute(text(f"UPDATE {ALERT_EVENTS} SET planned_at = :now, message_key = :key WHERE id = :id"),
                 {"now": now, "key": message_key, "id": event_id})


def mark_evaluation_planned(conn: Connection, evaluation_id: str, message_key: str | None, now: datetime) -> int:
    """Every pending event of the evaluation carried by one message (a digest), or by none (no channel)."""
    return conn.execute(text(
        f"UPDATE {ALERT_EVENTS} SET planned_at = :now, message_key = :key "
        "WHERE planned_at IS NULL AND evaluation_id = :evaluation"),
        {"now": now, "key": message_key, "evaluation": evaluation_id}).rowcount


def add_deliveries(conn: Connection, *, message_key: str, channels: Sequence[str], shape: str, event_count: int,
                   payload: str, now: datetime) -> None:
    """One pending delivery of the message per channel, due at once."""
    conn.execute(text(
        f"INSERT INTO {NOTIFICATION_DELIVERIES} (message_key, channel, shape, event_count, payload, state, "
        "created_at, next_attempt_at) VALUES (:key, :channel, :shape, :events, :payload, :state, :now, :now)"),
        [{"key": message_key, "channel": channel, "shape": shape, "events": event_count, "payload": payload,
          "state": PENDING, "now": now} for channel in channels])


# ---------------------------------------------------------------- delivering
def claim_due(conn: Connection, channel: str, now: datetime, lease_until: datetime) -> Delivery | None:
    """The channel's next due delivery, oldest first, counted as an attempt and leased until
    `lease_until`: another sender skips it meanwhile, and if this one dies it is due again then."""
    row = conn.execute(text(
        f"SELECT {_DELIVERY_COLUMNS} FROM {NOTIFICATION_DELIVERIES} WHERE state = :pending AND channel = :channel "
        "AND next_attempt_at <= :now ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"),
        {"pending": PENDING, "channel": channel, "now": now}).first()
    if row is None:
        return None
    conn.execute(text(
        f"UPDATE {NOTIFICATION_DELIVERIES} SET attempts = attempts + 1, last_attempt_at = :now, "
        "next_attempt_at = :lease WHERE id = :id"), {"now": now, "lease": lease_until, "id": row.id})
    return Delivery(*row[:6], row.attempts + 1, row.created_at)  # type: ignore[arg-type]


def mark_delivered(conn: Connection, delivery_id: int, now: datetime, note: str | None = None) -> None:
    """Delivered; `note` keeps what the receiver said beside success (e.g. recipients it refused)."""
    conn.execute(text(
        f"UPDATE {NOTIFICATION_DELIVERIES} SET state = :delivered, delivered_at = :now, "
        "last_error = COALESCE(:note, last_error) WHERE id = :id"),
        {"delivered": DELIVERED, "now": now, "note": note and note[:512], "id": delivery_id})


def mark_failed(conn: Connection, delivery: Delivery, error: str, retry_at: datetime) -> int:
    """Retry the delivery at `retry_at`, and hold the channel's other pending deliveries until then
    too: the channel is down, so its next attempt is one probe, not one per message. Returns how many
    others were held."""
    conn.execute(text(
        f"UPDATE {NOTIFICATION_DELIVERIES} SET next_attempt_at = :retry, last_error = :error WHERE id = :id"),
        {"retry": retry_at, "error": error[:512], "id": delivery.id})
    return conn.execute(text(
        f"UPDATE {NOTIFICATION_DELIVERIES} SET next_attempt_at = :retry WHERE state = :pending "
        "AND channel = :channel AND next_attempt_at < :retry AND id <> :id"),
        {"retry": retry_at, "pending": PENDING, "channel": delivery.channel, "id": delivery.id}).rowcount


def abandon_expired(conn: Connection, channel: str, planned_before: datetime, error: str, now: datetime) -> int:
    """Give up on the channel's pending deliveries planned before `planned_before`, with `error`."""
    return conn.execute(text(
        f"UPDATE {NOTIFICATION_DELIVERIES} SET state = :abandoned, last_error = :error, last_attempt_at = :now "
        "WHERE state = :pending AND channel = :channel AND created_at <= :before"),
        {"abandoned": ABANDONED, "error": error[:512], "now": now, "pending": PENDING, "channel": channel,
         "before": planned_before}).rowcount


def abandon_unconfigured(conn: Connection, configured: Sequence[str], now: datetime) -> int:
    """Pending deliveries on a channel that is no longer configured: abandoned, saying so."""
    others = "AND channel NOT IN :configured" if configured else ""
    statement = text(
        f"UPDATE {NOTIFICATION_DELIVERIES} SET state = :abandoned, last_attempt_at = :now, "
        f"last_error = CONCAT('channel ', channel, ' is no longer configured') WHERE state = :pending {others}")
    if configured:
        statement = statement.bindparams(bindparam("configured", expanding=True))
    return conn.execute(statement, {"abandoned": ABANDONED, "now": now, "pending": PENDING,
                                    **({"configured": list(configured)} if configured else {})}).rowcount


def prune(conn: Connection, before: datetime, batch: int = COUNT_CAP) -> int:
    """Drop delivered and abandoned deliveries, and planned events, from before `before` (a batch each)."""
    removed = conn.execute(text(
        f"DELETE FROM {NOTIFICATION_DELIVERIES} WHERE created_at < :before AND state IN (:delivered, :abandoned) "
        "LIMIT :batch"), {"before": before, "delivered": DELIVERED, "abandoned": ABANDONED, "batch": batch}).rowcount
    removed += conn.execute(text(
        f"DELETE FROM {ALERT_EVENTS} WHERE planned_at < :before LIMIT :batch"),
        {"before": before, "batch": batch}).rowcount
    return removed


# ---------------------------------------------------------------- status
def delivery_status(conn: Connection, now: datetime, recent: timedelta = timedelta(hours=24)) -> DeliveryStatus:
    """Counts for health and Dagster, each read through an index and capped at COUNT_CAP."""
    since = now - recent

    def capped(where: str, table: str = NOTIFICATION_DELIVERIES) -> int:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE {where} LIMIT :cap) t"),
                                {"pending": PENDING, "abandoned": ABANDONED, "since": since, "cap": COUNT_CAP})
                   .scalar_one())

    pending = capped("state = :pending")
    failing = capped("state = :pending AND last_error IS NOT NULL")
    abandoned = capped("state = :abandoned AND last_attempt_at >= :since")
    waiting = capped("planned_at IS NULL", ALERT_EVENTS)
    oldest = conn.execute(text(f"SELECT MIN(created_at) FROM {NOTIFICATION_DELIVERIES} WHERE state = :pending"),
                          {"pending": PENDING}).scalar_one()
    newest_error = conn.execute(text(
        f"SELECT channel, last_error FROM {NOTIFICATION_DELIVERIES} WHERE last_error IS NOT NULL AND "
        "((state = :pending) OR (state = :abandoned AND last_attempt_at >= :since)) "
        "ORDER BY last_attempt_at DESC LIMIT 1"),
        {"pending": PENDING, "abandoned": ABANDONED, "since": since}).first()
    return DeliveryStatus(pending, failing, abandoned, waiting, oldest,
                          f"{newest_error[0]}: {newest_error[1]}" if newest_error else None)
