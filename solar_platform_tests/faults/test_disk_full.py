"""MariaDB's disk fills while the stream runs under load: the stream pauses, never loses.

MariaDB runs on a 256 MiB tmpfs of the test's own (`small_disk`); Kafka is the stack's. While the
fleet's load publishes and the stream (a real `stream run` process) writes, another file takes every
free byte of that disk. The test then checks, for `HOLD_SECONDS`:

- the stream stops committing, and neither exits nor restarts (no crash loop): it holds its batch,
  and its wait file names MariaDB's data directory and error. MariaDB itself may abort on the full
  disk (a rollback that needs a page it cannot have); the test's supervisor starts it again, as the
  stack's supervisord would, and the stream waits that out too;
- Dagster's heartbeat sensor, run for real, requests no restart and raises the one alarm: the
  failed `spark_stream/mariadb_disk` check and a tick naming the disk (the `disk_full` platform
  alert too, when MariaDB still takes that small write); the API's health says what the stream
  waits for (or, while MariaDB cannot start again on the full disk, that the database is down).

Then the file is deleted. No batch committed while the disk was full (by the progress rows' own
stamps: MariaDB may not have answered then). The stream must resume by itself, and once the load
stops and the stream has drained the topic: every acknowledged reading is in panelData exactly
once, no dead letters, every derived table equals a recompute from panelData, and the alarm is
resolved.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import text

from solar_platform.api.app import create_app
from solar_platform.orchestration.ingestion.sensors import stream_heartbeat
from solar_platform.runtime import stream_wait
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform_tests.faults.harness import (
    stream_under_load,
    wait_until,
)
from solar_platform_tests.faults.small_disk import small_disk_mariadb
from solar_platform_tests.orchestration.conftest import defs_for
from solar_platform_tests.orchestration.fakes import OfflineProcessControl

pytestmark = [pytest.mark.fault, pytest.mark.integration]

DISK_MB = 256
HOLD_SECONDS = 45


def _sensor(settings: Settings, instance: dg.DagsterInstance, cursor: str | None) -> tuple[object, str | None]:
    processes = OfflineProcessControl()
    processes.set_state("stream", "RUNNING")
    defs = defs_for(settings, processes=processes)
    with dg.build_sensor_context(resources=defs.resources, definitions=defs, instance=instance,
                                 cursor=cursor) as context:
        return stream_heartbeat(context), context.cursor


def _commits_since(settings: Settings, moment: float, until: float | None = None) -> int:
    """Batches committed with their progress row stamped (by MariaDB's clock) after `moment`, and
    before `until` when given."""
    def naive(epoch_s: float) -> datetime:
        return datetime.fromtimestamp(epoch_s, UTC).replace(tzinfo=None)

    with db.engine(settings).connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {db.STREAM_PROGRESS} WHERE recorded_at > :a "
                                     "AND (:b IS NULL OR recorded_at < :b)"),
                                {"a": naive(moment), "b": None if until is None else naive(until)}).scalar())


def _health_while_full(settings: Settings, timeout_s: float) -> dict:
    """The API's health once MariaDB answers; if it has not within `timeout_s` (aborted on the full
    disk, it may not start again until there is space), what the API says meanwhile: down."""
    client = create_app(settings, rate_per_second=None).test_client()
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get("/api/v1/health")
        if response.status_code == 200 or time.monotonic() > deadline:
            return {"http": response.status_code, **response.get_json()}
        time.sleep(1)


def _first_commit_after(settings: Settings, moment: float) -> float | None:
    with db.engine(settings).connect() as conn:
        first = conn.execute(text(f"SELECT MIN(recorded_at) FROM {db.STREAM_PROGRESS} WHERE recorded_at > :t"),
                             {"t": datetime.fromtimestamp(moment, UTC).replace(tzinfo=None)}).scalar()
    return None if first is None else first.replace(tzinfo=UTC).timestamp()


@pytest.mark.timeout(900)
def test_a_full_disk_pauses_the_stream_and_loses_nothing(stack_settings: Settings, tmp_path: Path) -> None:
    with small_disk_mariadb(stack_settings, f"t_diskfull_{int(time.time())}", DISK_MB, tmp_path) as disk:
        settings = disk.settings
        with stream_under_load(settings, tmp_path, "MariaDB's disk full") as run, dg.instance_for_test() as instance:
            figures, stream = run.figures, run.stream
            figures["disk_mb"] = DISK_MB
            time.sleep(5)
            figures["free_mb_before_fill"] = disk.free_bytes() / 2**20
            filled_at = time.time()
            disk.fill()
            wait = wait_until(lambda: stream_wait.current_wait(settings), 300, "the stream to wait for the disk")
            paused_at = time.time()
            figures["pause_after_fill_s"] = paused_at - filled_at
            figures["batches_committed_after_fill"] = _commits_since(settings, filled_at)
            figures["mariadb_error"] = wait.error
            assert wait.kind == stream_wait.MARIADB_DISK_FULL
            assert wait.data_dir == f"{disk.data_dir}/", wait

            # Held full: no exit, one alarm in Dagster, no restart requested (and no commit: checked
            # once the disk has space again, as MariaDB may be down for as long as it is full).
            verdict, cursor = _sensor(settings, instance, None)
            deadline = time.monotonic() + HOLD_SECONDS
            while time.monotonic() < deadline:
                assert stream.running, f"the stream exited while the disk was full:\n{stream.log_tail()}"
                time.sleep(1)
            assert stream.starts == 1
            held, cursor = _sensor(settings, instance, cursor)
            for result in (verdict, held):
                assert isinstance(result, dg.SensorResult) and not result.run_requests
                assert result.skip_reason.skip_message.startswith("ALARM: MariaDB's disk is full")
                assert f"data directory {disk.data_dir}/" in result.skip_reason.skip_message
            check = verdict.asset_events[0]
            assert isinstance(check, dg.AssetCheckEvaluation) and not check.passed
            assert check.asset_check_key.name == "mariadb_disk"
            observation = held.asset_events[-1]
            assert observation.metadata["source"].value == "wait file"
            figures["platform_alert_while_full"] = observation.metadata["platform_alert"].value
            health = _health_while_full(settings, 60)
            figures["api_health_while_full"] = health["http"]
            if health["http"] == 200:
                assert health["status"] == "degraded" and health["stream"]["waiting_for"].startswith("disk full")
            else:  # MariaDB has not started again on the full disk: the API says so
                assert health["http"] == 503 and health["status"] == "down", health
            last_wait = stream_wait.current_wait(settings)
            figures["retries_while_full"] = last_wait.attempts if last_wait else wait.attempts
            figures["held_full_s"] = time.time() - paused_at

            freed_at = time.time()
            disk.free()
            resumed = wait_until(lambda: _first_commit_after(settings, freed_at), 180,
                                 "the stream to commit again once the disk had space")
            figures["recovery_s"] = resumed - freed_at
            assert _commits_since(settings, paused_at, until=freed_at) == 0, "the stream committed on a full disk"
            run.end_load_and_drain()
            figures["drained_after_free_s"] = time.time() - freed_at
            assert stream.starts == 1, "the stream was restarted"
            assert stream_wait.current_wait(settings) is None
            resolved, _ = _sensor(settings, instance, cursor)
            check = resolved.asset_events[0] if isinstance(resolved, dg.SensorResult) else None
            assert isinstance(check, dg.AssetCheckEvaluation) and check.passed
            with db.engine(settings).connect() as conn:
                alerts = conn.execute(text("SELECT kind, state FROM platform_alerts")).all()
            assert ("disk_full", "open") not in {tuple(row) for row in alerts}
            figures["mariadb_aborts"] = len(disk.server.crashes)
        run.verify(tmp_path)
