"""What Dagster and the API show when the stream waits for MariaDB's disk, or finds Kafka offsets
that retention deleted before it read them (real MariaDB and Kafka; the stream's records written
through the same storage functions the stream uses)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from sqlalchemy import text

from solar_platform import kafka_clients
from solar_platform.api.app import create_app
from solar_platform.orchestration.ingestion import checks as ingestion_checks
from solar_platform.orchestration.ingestion.sensors import stream_heartbeat
from solar_platform.orchestration.live import checks as live_checks
from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.runtime import stream_wait
from solar_platform.runtime.stream_wait import StreamWait
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.stream import offsets, progress
from solar_platform_tests.orchestration.conftest import defs_for

pytestmark = pytest.mark.integration

ERROR = "error 1114: The table 'panelData' is full"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


def _evaluate(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    with dg.build_sensor_context(resources=defs.resources, definitions=defs, instance=instance,
                                 cursor=cursor) as context:
        return stream_heartbeat(context), context.cursor


def _pulse(settings: Settings, started_at: datetime, *, in_flight: bool, waiting: StreamWait | None) -> None:
    with db.engine(settings.as_role("stream")).begin() as conn:
        progress.record_pulse(conn, query_name="readings", batch_id=7, started_at=_naive(started_at),
                              in_flight=in_flight, waiting_for=None if waiting is None else waiting.headline(),
                              waiting_since=None if waiting is None else _naive(waiting.since))
        conn.execute(text("UPDATE stream_pulse SET pulse_at = UTC_TIMESTAMP(3)"))


def _platform_alerts(settings: Settings) -> list[tuple[str, str]]:
    with db.engine(settings).connect() as conn:
        return [tuple(row) for row in conn.execute(text("SELECT kind, state FROM platform_alerts ORDER BY id"))]


def _health(settings: Settings) -> dict:
    return create_app(settings, rate_per_second=None).test_client().get("/api/v1/health").get_json()


def test_a_stream_waiting_for_mariadbs_disk_is_one_alarm_never_a_restart(fresh_settings, offline_processes) -> None:
    settings = fresh_settings
    defs = defs_for(settings, processes=offline_processes)
    offline_processes.set_state("stream", "RUNNING")
    now = _now()
    # Everything that would otherwise request a restart: an old heartbeat, input waiting on the
    # topic, and a batch in flight for longer than a batch may take.
    with db.engine(settings, role="migrator").begin() as conn:
        conn.execute(text("INSERT INTO stream_progress (query_id, query_name, batch_id, rows_in, rows_written, "
                          "dead_letters, duration_ms, recorded_at) VALUES ('q', 'readings', 6, 10, 10, 0, 5, :t)"),
                     {"t": _naive(now - timedelta(minutes=30))})
    producer = kafka_clients.producer(settings, "fleet", acks="all")
    producer.send(settings.topic, key=b"panel-1", value=b"{}").get(timeout=30)
    producer.close()
    started = now - timedelta(seconds=settings.stream_max_batch_seconds + 300)
    wait = StreamWait(kind=stream_wait.MARIADB_DISK_FULL, batch_id=7, since=started + timedelta(seconds=5),
                      updated_at=now, attempts=12, retry_in_seconds=30, error=ERROR,
                      server=f"{settings.mysql_host}:{settings.mysql_port}", data_dir="/srv/mariadb/data/")
    stream_wait.write_wait(stream_wait.wait_file(settings), wait)
    _pulse(settings, started, in_flight=True, waiting=wait)

    with dg.instance_for_test() as instance:
        paused, cursor = _evaluate(defs, instance, None)
        assert isinstance(paused, dg.SensorResult) and not paused.run_requests
        message = paused.skip_reason.skip_message
        assert message.startswith("ALARM: MariaDB's disk is full") and "/srv/mariadb/data/" in message
        assert ERROR in message and "batch 7" in message
        check, observation = paused.asset_events
        assert isinstance(check, dg.AssetCheckEvaluation) and not check.passed
        assert check.asset_check_key == dg.AssetCheckKey(dg.AssetKey("spark_stream"), "mariadb_disk")
        assert observation.metadata["data_dir"].value == "/srv/mariadb/data/"
        assert observation.metadata["platform_alert"].value == "recorded"
        assert _platform_alerts(settings) == [("disk_full", "open")]
        # the same tick again: the check is not re-evaluated (it has not changed), the alarm stays one row
        again, cursor = _evaluate(defs, instance, cursor)
        assert [type(event) for event in again.asset_events] == [dg.AssetObservation]
        assert _platform_alerts(settings) == [("disk_full", "open")]
        assert not ingestion_checks.mariadb_disk(solar=SolarSettingsResource.for_settings(settings)).passed

        health = _health(settings)
        assert health["status"] == "degraded" and health["stream"]["batch_in_flight"] == 7
        assert health["stream"]["waiting_for"] == wait.headline()
        assert [alert["kind"] for alert in health["platform_alerts"]] == ["disk_full"]

        # Without the file (a read-only or lost checkpoint volume), the pulse says the same.
        stream_wait.clear_wait(stream_wait.wait_file(settings))
        from_pulse, cursor = _evaluate(defs, instance, cursor)
        assert not from_pulse.run_requests and "/srv/mariadb/data/" in from_pulse.skip_reason.skip_message
        assert from_pulse.asset_events[-1].metadata["source"].value == "stream_pulse"

        # Space freed, the batch committed: the check passes once, the alarm resolves.
        _pulse(settings, started, in_flight=False, waiting=None)
        resumed, cursor = _evaluate(defs, instance, cursor)
        check = resumed.asset_events[0]
        assert isinstance(check, dg.AssetCheckEvaluation) and check.passed
        assert _platform_alerts(settings) == [("disk_full", "resolved")]
        assert "ALARM" not in (resumed.skip_reason.skip_message if resumed.skip_reason else "")
        assert ingestion_checks.mariadb_disk(solar=SolarSettingsResource.for_settings(settings)).passed

    # A wait file its stream stopped refreshing (it died waiting) is a dead stream, not a wait.
    stream_wait.write_wait(stream_wait.wait_file(settings), wait.__class__(**{
        **wait.__dict__, "updated_at": now - timedelta(seconds=settings.stream_stale_after_seconds + 60)}))
    with dg.instance_for_test() as instance:
        stale, _ = _evaluate(defs, instance, None)
        assert len(stale.run_requests) == 1


def test_offsets_lost_to_retention_fail_a_check_and_show_in_the_health(fresh_settings) -> None:
    settings = fresh_settings
    solar = SolarSettingsResource.for_settings(settings)
    assert live_checks.no_lost_offsets(solar=solar).passed
    assert _health(settings)["lost_offsets"] == {"gaps_last_24h": 0, "records_last_24h": 0, "newest": []}

    before, after = datetime(2026, 12, 3, 8, 0, 0), datetime(2026, 12, 3, 8, 4, 0)
    with db.engine(settings.as_role("stream")).begin() as conn:
        offsets.record_batch_offsets(conn, settings.topic, [], [offsets.Gap(2, 1000, 1499, before, after)], 31)
    result = live_checks.no_lost_offsets(solar=solar)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["records_lost"].value == 500 and result.metadata["gaps"].value == 1
    assert result.metadata["newest_gaps"].value[0]["first_offset"] == 1000
    assert "500 Kafka records" in result.description
    lost = _health(settings)["lost_offsets"]
    assert (lost["gaps_last_24h"], lost["records_last_24h"]) == (1, 500)
    assert lost["newest"][0] | {"detected_at": None} == {
        "topic": settings.topic, "partition": 2, "first_offset": 1000, "last_offset": 1499, "records": 500,
        "published_after": "2026-12-03T08:00:00.000Z", "published_before": "2026-12-03T08:04:00.000Z",
        "detected_at": None}
