"""The notifications' check: are messages reaching their channels?"""

from datetime import UTC, datetime

import dagster as dg

from solar_platform.orchestration import keys
from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.storage import db
from solar_platform.storage.notifications import DeliveryStatus, delivery_status

CHECK_NAME = "delivering"


def delivering_evaluation(status: DeliveryStatus, channels: tuple[str, ...]) -> dg.AssetCheckEvaluation:
    """Passed unless a delivery is failing now or was abandoned in the last 24 h; a warning, since
    the alerts themselves are fine (the API and Grafana show them)."""
    return dg.AssetCheckEvaluation(
        asset_key=keys.ALERT_NOTIFICATIONS, check_name=CHECK_NAME,
        passed=status.failing == 0 and status.abandoned_recently == 0, severity=dg.AssetCheckSeverity.WARN,
        metadata={"channels": ", ".join(channels) or "none configured", "pending": status.pending,
                  "failing": status.failing, "abandoned_last_24h": status.abandoned_recently,
                  "events_waiting": status.events_waiting,
                  "oldest_pending": status.oldest_pending.replace(tzinfo=UTC).isoformat()
                  if status.oldest_pending else "none",
                  "last_error": status.last_error or "none"})


@dg.asset_check(asset=keys.ALERT_NOTIFICATIONS, name=CHECK_NAME, description="No notification is failing to "
                "deliver, and none was abandoned in the last 24 h. The deliver_notifications sensor reports it "
                "after each run that did something; executing it reads the current state.")
def notifications_delivering(solar: SolarSettingsResource) -> dg.AssetCheckResult:
    settings = solar.get()
    with db.engine(settings).connect() as conn:
        status = delivery_status(conn, datetime.now(UTC).replace(tzinfo=None))
    evaluation = delivering_evaluation(status, settings.notify_channels)
    return dg.AssetCheckResult(passed=evaluation.passed, severity=evaluation.severity, metadata=evaluation.metadata)
