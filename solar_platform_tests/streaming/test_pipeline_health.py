"""Silence judged against the pipeline, end to end: readings through Kafka and the real stream that runs
three minutes behind the clock, then fault detection. Exactly one panel has truly stopped: it alone
is silent, and the slow pipeline is one alarm, not an alert per panel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import SparkSession
from sqlalchemy import text

from solar_platform.fleet.publisher import fast_forward
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.health import alerts
from solar_platform.streaming.job import run_job
from solar_platform_tests.orchestration.fault_replay import fleet_settings

pytestmark = pytest.mark.integration


def test_a_stream_three_minutes_behind_is_one_alarm_and_one_silent_panel(fresh_settings: Settings,
                                                                          spark: SparkSession) -> None:
    settings = fleet_settings(fresh_settings)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    behind = now - timedelta(minutes=3)  # everything the stream has committed stops here
    stopped = now - timedelta(minutes=13)
    faults = {"faults": [{"kind": "silent", "panels": ["panel-000002"], "start": stopped.isoformat()}]}
    summary = fast_forward(settings, start=behind - timedelta(minutes=20), end=behind, panels=8, seed=5,
                           faults=faults)
    assert summary.all_delivered
    run_job(settings, "available-now", spark=spark)

    # The platform's clock now: three minutes and the time the test took past the newest readings.
    evaluated = datetime.now(UTC)
    run = alerts.run_health(db.engine(settings), settings, now=evaluated)
    expected_lag = (evaluated - behind).total_seconds() + settings.interval_seconds
    assert run.pipeline.open and run.pipeline.lag_seconds == pytest.approx(expected_lag, abs=6)
    with db.engine(settings).connect() as conn:
        panel_alerts = conn.execute(text("SELECT panel_id, kind FROM panel_alerts WHERE state = 'open'")).all()
        platform = conn.execute(text("SELECT kind FROM platform_alerts WHERE state = 'open'")).all()
    assert [tuple(row) for row in panel_alerts] == [("panel-000002", "silent")]
    assert [tuple(row) for row in platform] == [("pipeline_lag",)]
