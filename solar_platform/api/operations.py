"""Tag `operations`: fault alerts and the platform's health."""

from __future__ import annotations

from datetime import timedelta

from flask import Response, jsonify
from flask_openapi3 import Tag
from sqlalchemy.exc import SQLAlchemyError

from solar_platform.api.context import api_context, read_connection
from solar_platform.api.errors import BAD_REQUEST
from solar_platform.api.models import AlertsPage, AlertsQuery, AlertState, Health
from solar_platform.api.shaping import (
    alert_json,
    decode_id_cursor,
    encode_cursor,
    health_down_json,
    health_json,
    keyset_page,
    notifications_json,
)
from solar_platform.api.v1 import tag_blueprint
from solar_platform.storage import notifications, pipeline_status, queries
from solar_platform.storage.health.faults import ALERT_KINDS
from solar_platform.storage.stream import offsets

TAG = Tag(name="operations", description="Alerts and platform health.")
bp = tag_blueprint(TAG, __name__)


@bp.get("/alerts", responses={200: AlertsPage, **BAD_REQUEST})
def list_alerts(query: AlertsQuery) -> Response:
    """Fault alerts (offline, silent, zero_production, stuck, underperforming, over_range), newest first,
    pages of at most 100, with open alerts per kind.

    `state` defaults to open. `since` keeps alerts still open or opened/resolved at or after it.
    """
    before = decode_id_cursor(query.cursor) if query.cursor else None
    with read_connection() as conn:
        rows = queries.alerts(
            conn,
            state=None if query.state is AlertState.ALL else query.state.value,
            since=query.since,
            kinds=[query.kind.value] if query.kind else ALERT_KINDS,
            panel_id=query.panel_id,
            limit=query.limit + 1,
            before_id=before,
        )
        open_by_kind = queries.open_alert_counts(conn)
    page, next_cursor = keyset_page(rows, query.limit, lambda alert: encode_cursor(str(alert.id)))
    return jsonify({"items": [alert_json(a) for a in page], "next_cursor": next_cursor, "open_by_kind": open_by_kind})


# Open to probes: app.py lists this path among those that need no token.
@bp.get("/health", responses={200: Health, 503: Health})
def health() -> Response:
    """Is the platform alive: database reachable, stream heartbeat age, dead letters. No auth.

    200 when the database answers (status ok, or degraded when the stream heartbeat is missing
    or older than `SOLAR_STREAM_STALE_AFTER_TRIGGERS` triggers, default 12, and at least
    `SOLAR_STREAM_STALE_MIN_SECONDS`, default 60 s: the limit Dagster's heartbeat sensor uses,
    while no batch is in flight; when the batch in flight waits, `stream.waiting_for` saying for what,
    e.g. MariaDB's disk full; or when a platform alarm such as `pipeline_lag` or `disk_full` is open);
    503 with status down when it does not. `notifications` counts alert notifications pending,
    failing and abandoned, with the newest error. `lost_offsets` counts the Kafka records that
    retention deleted before the stream read them, with the newest gaps.
    """
    ctx = api_context()
    now = ctx.now()
    stale_after = ctx.settings.stream_stale_after_seconds  # the same limit as Dagster's heartbeat sensor
    try:
        with read_connection() as conn:
            stream = queries.stream_health(conn, now)
            delivery = notifications.delivery_status(conn, now)
            pulse = pipeline_status.pulse(conn)
            platform_alerts = queries.open_platform_alerts(conn)
            lost = offsets.lost_offsets_summary(conn, since=now - timedelta(days=1))
    except SQLAlchemyError as exc:
        response = jsonify(health_down_json(type(exc).__name__))
        response.status_code = 503
        return response
    age = pipeline_status.heartbeat_age_seconds(stream.last_heartbeat, now)
    stale = pipeline_status.heartbeat_is_stale(age, stale_after)
    in_flight = pipeline_status.batch_in_flight(pulse, now, stale_after, ctx.settings.stream_max_batch_seconds)
    return jsonify(health_json(stream, age_seconds=age, stale=stale, stale_after_seconds=stale_after,
                               notifications=notifications_json(delivery, ctx.settings.notify_channels),
                               pulse=pulse, in_flight=in_flight, platform_alerts=platform_alerts,
                               lost_offsets=lost, now=now))
