"""Alert notifications: when a panel alert opens or resolves, tell the configured channels.

The events are recorded in the alerts' own transaction (`storage/notifications.py`, the outbox);
this part plans them into messages (`messages.py`: one per alert, or one digest for a fleet-wide
event) and delivers them over a JSON webhook and SMTP e-mail (`channels.py`) at least once, with
exponential backoff and an idempotency key (`delivery.py`). Dagster's `deliver_notifications`
sensor and `solar-platform notify deliver` run it.
"""
