"""Delivery of alert notifications every 30 s, with failures shown on the asset and its check."""

import json
from datetime import UTC, datetime

import dagster as dg

from solar_platform.notifications.delivery import describe, run_once
from solar_platform.orchestration import keys
from solar_platform.orchestration.notifications.checks import delivering_evaluation
from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.storage import db

# Under the sensor's own 60 s timeout, whatever the channels' timeouts.
BUDGET_SECONDS = 25.0


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Delivers alert notifications: plans the alert events recorded with each alert change "
                       "into messages (a digest above SOLAR_NOTIFY_DIGEST_THRESHOLD) and sends the due ones to "
                       "the webhook and e-mail, retrying failures with exponential backoff. Each run that did "
                       "something records an observation on alert_notifications and its `delivering` check; "
                       "the tick's text says what failed.")
def deliver_notifications(context: dg.SensorEvaluationContext, solar: SolarSettingsResource) -> dg.SensorResult:
    settings = solar.get()
    report = run_once(db.engine(settings), settings, now=datetime.now(UTC), budget_seconds=BUDGET_SECONDS)
    status = report.status
    assert status is not None  # run_once always reads it
    evaluation = delivering_evaluation(status, report.channels)
    summary = describe(report)
    if report.errors:
        context.log.warning(f"notifications failing: {summary}")
    # Events only when something happened or the check's outcome changed: not two per tick forever.
    previous = json.loads(context.cursor) if context.cursor else {}
    events: list[dg.AssetObservation | dg.AssetCheckEvaluation] = []
    if report.attempted:
        events.append(dg.AssetObservation(asset_key=keys.ALERT_NOTIFICATIONS, metadata={
            "events_planned": report.events_planned, "messages_planned": report.messages_planned,
            "digests_planned": report.digests_planned, "delivered": report.delivered, "failed": report.failed,
            "abandoned": report.abandoned, "pending": status.pending, "failing": status.failing,
            "errors": "; ".join(report.errors) or "none"}))
    if report.attempted or previous.get("passed") != evaluation.passed:
        events.append(evaluation)
    return dg.SensorResult(asset_events=events, skip_reason=dg.SkipReason(summary),
                           cursor=json.dumps({"passed": evaluation.passed}))
