"""Alert notifications: the messages about alerts opening and resolving, sent to the channels."""

import dagster as dg

from solar_platform.orchestration import keys

# Beside the alerts they tell about (UI group "live").
GROUP = "live"

alert_notifications = dg.AssetSpec(
    keys.ALERT_NOTIFICATIONS, group_name=GROUP, deps=[keys.PANEL_ALERTS], kinds={"mysql"},
    description="Alert notifications (alert_events outbox, notification_deliveries): every alert opened or "
                "resolved is told to the configured channels (JSON webhook, SMTP e-mail), one message per alert "
                "or one digest for a fleet-wide change, at least once with backoff and an idempotency key. "
                "Kept by the deliver_notifications sensor; its check `delivering` fails while deliveries fail.")
