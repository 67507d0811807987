"""The notifications domain: alert notifications, their delivery sensor and their check."""

import dagster as dg

from solar_platform.orchestration.notifications import assets, checks, sensors

defs = dg.Definitions(assets=[assets.alert_notifications], asset_checks=[checks.notifications_delivering],
                      sensors=[sensors.deliver_notifications])
