"""The operator's fast-forward job publishes exactly the fleet's past readings to the real Kafka topic."""

from datetime import UTC, datetime

import dagster as dg
import pytest

from solar_platform import kafka_clients
from solar_platform.fleet.publisher import expected_messages
from solar_platform_tests.orchestration.conftest import defs_for

pytestmark = pytest.mark.integration


def _run(settings, start: str, end: str) -> dg.ExecuteInProcessResult:
    job = defs_for(settings).resolve_job_def("publish_fleet_history_job")
    config = {"ops": {"publish_fleet_history": {"config": {"start": start, "end": end, "panels": 5}}}}
    return job.execute_in_process(run_config=config, raise_on_error=False)


def test_publishes_the_range_and_reports_it(fresh_settings):
    result = _run(fresh_settings, "2026-01-01T10:00:00", "2026-01-01T10:10:00")
    assert result.success
    want = expected_messages(fresh_settings, datetime(2026, 1, 1, 10, tzinfo=UTC),
                             datetime(2026, 1, 1, 10, 10, tzinfo=UTC), panels=5)
    assert want == 5 * 600 // int(fresh_settings.interval_seconds)
    assert result.output_for_node("publish_fleet_history") == want
    consumer = kafka_clients.consumer(fresh_settings, fresh_settings.topic, auto_offset_reset="earliest",
                                      consumer_timeout_ms=10_000)
    assert sum(1 for _ in consumer) == want
    consumer.close()


@pytest.mark.parametrize(("start", "end"), [("2026-01-02", "2026-01-01"), ("2026-01-01", "2026-03-01"),
                                            ("yesterday", "2026-01-01")])
def test_rejects_bad_ranges_before_publishing(fresh_settings, start, end):
    result = _run(fresh_settings, start, end)
    assert not result.success
    consumer = kafka_clients.consumer(fresh_settings, fresh_settings.topic, auto_offset_reset="earliest",
                                      consumer_timeout_ms=3_000)
    assert sum(1 for _ in consumer) == 0
    consumer.close()
