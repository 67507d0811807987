"""Slow is not stuck: the heartbeat sensor, run while the real stream works through a catch-up batch
that takes longer than the staleness limit, sees the batch in flight and requests no restart."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from pyspark.sql import SparkSession

from solar_platform.fleet.publisher import fast_forward
from solar_platform.orchestration.ingestion.sensors import stream_heartbeat
from solar_platform.settings import Settings
from solar_platform.storage import db, pipeline_status
from solar_platform.streaming.job import run_job
from solar_platform_tests.orchestration.conftest import defs_for
from solar_platform_tests.orchestration.fakes import OfflineProcessControl

pytestmark = pytest.mark.integration


def test_the_sensor_leaves_a_slow_batch_alone(fresh_settings: Settings, spark: SparkSession) -> None:
    # A staleness limit of 1 s (1 trigger of 1 s, no minimum): any real batch of 200k readings outlasts it.
    settings = fresh_settings.model_copy(update={"stream_trigger_seconds": 1.0, "stream_stale_after_triggers": 1.0,
                                                 "stream_stale_min_seconds": 0.0})
    start = datetime(2026, 12, 3, 8, tzinfo=UTC)
    fast_forward(settings, start=start, end=start + timedelta(seconds=50), panels=20_000, seed=3)
    processes = OfflineProcessControl()
    processes.set_state("stream", "RUNNING")
    defs = defs_for(settings, processes=processes)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            run_job(settings, "available-now", spark=spark)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    job = threading.Thread(target=run, daemon=True)
    job.start()
    verdicts = []
    try:
        while job.is_alive() and len(verdicts) < 3:
            now = datetime.now(UTC)
            with db.engine(settings).connect() as conn:
                pulse = pipeline_status.heartbeat(conn, now).pulse
            if pulse is not None and pulse.in_flight and pulse.running_seconds(now) > 2.5:
                with dg.instance_for_test() as instance, dg.build_sensor_context(
                        resources=defs.resources, definitions=defs, instance=instance) as context:
                    verdicts.append(stream_heartbeat(context))
            time.sleep(0.5)
    finally:
        job.join(timeout=300)
    assert not failures, failures
    assert verdicts, "no batch was seen in flight for longer than the staleness limit"
    # The batch may commit between the pulse read and the sensor's own: "healthy" is then right too.
    busy = [verdict for verdict in verdicts
            if not (isinstance(verdict, dg.SkipReason) and "stream healthy" in (verdict.skip_message or ""))]
    assert busy, verdicts
    for verdict in busy:
        assert isinstance(verdict, dg.SensorResult) and not verdict.run_requests
        assert "busy" in verdict.skip_reason.skip_message
