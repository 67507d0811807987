"""The deliver_notifications sensor on real MariaDB and a real webhook receiver: failures show on the
alert_notifications asset, its `delivering` check and the tick's text, and clear when delivery resumes."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import dagster as dg
import pytest

from solar_platform.orchestration import keys
from solar_platform.orchestration.notifications.checks import notifications_delivering
from solar_platform.orchestration.notifications.sensors import deliver_notifications
from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform_tests.notifications.receivers import WebhookReceiver
from solar_platform_tests.notifications.test_delivery import change_alerts
from solar_platform_tests.orchestration.conftest import defs_for

pytestmark = pytest.mark.integration


def _tick(defs: dg.Definitions, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(resources=defs.resources, definitions=defs, cursor=cursor) as context:
        return deliver_notifications(context)


def _events(result: dg.SensorResult) -> tuple[list[dg.AssetObservation], list[dg.AssetCheckEvaluation]]:
    observations = [e for e in result.asset_events if isinstance(e, dg.AssetObservation)]
    evaluations = [e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)]
    return observations, evaluations


def test_failures_show_in_dagster_and_clear_when_the_receiver_is_back(fresh_settings) -> None:
    webhook = WebhookReceiver()  # down for now
    settings = fresh_settings.model_copy(update={"notify_webhook_url": webhook.url,
                                                 "notify_retry_base_seconds": 0.5})
    defs = defs_for(settings)
    assert "deliver_notifications" in {s.name for s in defs.sensors}
    change_alerts(settings, datetime.now(UTC), opened=[("panel-000001", "offline")])

    failing = _tick(defs, None)
    (observation,), (evaluation,) = _events(failing)
    assert observation.asset_key == keys.ALERT_NOTIFICATIONS
    assert observation.metadata["failed"].value == 1 and observation.metadata["pending"].value == 1
    assert evaluation.check_name == "delivering" and not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["last_error"].value.startswith("webhook: ")
    assert "failed 1" in failing.skip_reason.skip_message and "webhook: " in failing.skip_reason.skip_message
    executed = notifications_delivering(solar=SolarSettingsResource.for_settings(settings))
    assert not executed.passed and executed.metadata["failing"].value == 1  # run by hand: the same answer

    quiet = _tick(defs, failing.cursor)  # within the backoff: nothing tried, nothing changed, nothing recorded
    assert quiet.asset_events == [] and "pending 1 (1 failing)" in quiet.skip_reason.skip_message

    webhook.start()
    try:
        time.sleep(0.6)  # past the 0.5 s backoff on the sensor's wall clock
        recovered = _tick(defs, quiet.cursor)
    finally:
        webhook.stop()
    (observation,), (evaluation,) = _events(recovered)
    assert observation.metadata["delivered"].value == 1 and evaluation.passed
    assert json.loads(recovered.cursor) == {"passed": True}
    assert [p.body["panel_id"] for p in webhook.received] == ["panel-000001"]
