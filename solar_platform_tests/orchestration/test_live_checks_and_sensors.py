"""Live-table observation and checks, and the heartbeat and panel-health sensors, on real MariaDB."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from sqlalchemy import text

from solar_platform import kafka_clients
from solar_platform.orchestration import keys
from solar_platform.orchestration.ingestion.sensors import stream_heartbeat
from solar_platform.orchestration.ingestion.stream_lag import stream_lag_figures
from solar_platform.orchestration.live import checks as live_checks
from solar_platform.orchestration.live.assets import observe_live_table
from solar_platform.orchestration.resources import KafkaResource, SolarSettingsResource
from solar_platform.storage import db
from solar_platform.storage.health import quality
from solar_platform.storage.stream import progress
from solar_platform_tests.orchestration.conftest import defs_for, insert_readings, register_panels
from solar_platform_tests.stream_writes import write_as_stream

pytestmark = pytest.mark.integration


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _good_recent_data(settings, panels: int = 5, minutes: int = 35) -> dict[str, float]:
    """Readings up to now, as the stream writes them: at least one whole 15-min bucket before now's."""
    pmax = {f"p-{i}": 380.0 + i for i in range(panels)}
    register_panels(settings, pmax)
    end = _now()
    steps = int(minutes * 60 / settings.interval_seconds)
    write_as_stream(settings, [(pid, 0.5 * pm, 1, end - timedelta(seconds=settings.interval_seconds * k))
                               for pid, pm in pmax.items() for k in range(1, steps)], commit_delay_seconds=1.0)
    return pmax


def _check(check_def, settings):
    return check_def(solar=SolarSettingsResource.for_settings(settings))


def test_observation_job_records_figures_and_runs_checks(fresh_settings):
    _good_recent_data(fresh_settings)
    with db.engine(fresh_settings, role="migrator").connect() as conn:
        conn.execute(text("ANALYZE TABLE panelData"))  # the estimate the observation reads (it never counts)
    defs = defs_for(fresh_settings)
    result = defs.resolve_job_def("observe_live_tables").execute_in_process(raise_on_error=False)
    observations = {e.asset_key.to_user_string(): e.event_specific_data.asset_observation.metadata
                    for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"}
    assert observations["panelData"]["row_count_estimate"].value == pytest.approx(5 * 420, rel=0.5)
    assert observations["panelData"]["lag_seconds"].value < 60
    assert "dagster/last_updated_timestamp" in observations["panelData"]
    evaluations = {f"{e.asset_check_key.asset_key.to_user_string()}:{e.asset_check_key.name}": e.passed
                   for e in result.get_asset_check_evaluations()}
    assert evaluations["panelData:fresh"] and evaluations["panelData:complete"]
    assert evaluations["panelData:power_within_bounds"] and evaluations["panelData:no_excess_readings"]
    assert evaluations["panelData:dead_letter_rate"] and evaluations["panelDataAgg:fresh"]


def test_both_live_tables_report_the_streams_last_merge(fresh_settings):
    """The one query writes panelData and panelDataAgg together: its progress rows date both."""
    now = _now()
    batches = [(1, 40, now - timedelta(minutes=30)), (2, 25, now - timedelta(minutes=4)), (3, 0, now)]
    with db.engine(fresh_settings, role="stream").begin() as conn:
        for batch_id, written, at in batches:
            progress.record_progress(conn, query_id="q", query_name=progress.READINGS_QUERY, batch_id=batch_id,
                                     rows_in=written, rows_written=written, dead_letters=0, appended=written,
                                     corrected=0, max_event_time=None, frontier_time=None, duration_ms=5,
                                     profile={})
            conn.execute(text("UPDATE stream_progress SET recorded_at = :at WHERE batch_id = :b"),
                         {"at": at, "b": batch_id})
    for key in (keys.PANEL_DATA, keys.PANEL_DATA_AGG):
        metadata = observe_live_table(fresh_settings, key).metadata
        assert metadata["readings_merged_last_10_minutes"].value == 25  # batch 3 merged nothing
        # The newest batch that merged readings: 4 minutes ago, not the empty one just now.
        assert metadata["dagster/last_updated_timestamp"].value == pytest.approx(
            (now - timedelta(minutes=4)).replace(tzinfo=UTC).timestamp())


def test_checks_fail_on_injected_bad_data(fresh_settings):
    pmax = _good_recent_data(fresh_settings)
    assert _check(live_checks.panel_data_power_bounds, fresh_settings).passed
    assert _check(live_checks.panel_data_no_excess, fresh_settings).passed
    # Late readings in the newest complete bucket: out of bounds, and each one more than the cadence
    # allows there (a reading sent again with another time).
    start, end = quality.complete_buckets(_now(), fresh_settings.check_completeness_window_minutes)
    moment = end - timedelta(minutes=5, milliseconds=500)
    write_as_stream(fresh_settings, [("p-0", 1.3 * pmax["p-0"], 1, moment),
                                     ("p-1", -2.0, 1, moment + timedelta(milliseconds=1)),
                                     ("p-1", 10.0, 1, moment + timedelta(milliseconds=2))],
                    arrivals=[_now()] * 3, commit_delay_seconds=0.0)
    bounds = _check(live_checks.panel_data_power_bounds, fresh_settings)
    assert not bounds.passed
    assert (bounds.metadata["negative"].value, bounds.metadata["above_limit"].value) == (1, 1)
    excess = _check(live_checks.panel_data_no_excess, fresh_settings)
    assert not excess.passed and excess.metadata["panels_above_expected"].value == 1  # p-1: two extra


def test_stale_table_fails_freshness(fresh_settings):
    insert_readings(fresh_settings, [("p-0", 10.0, 1, _now() - timedelta(hours=2))])
    result = _check(live_checks.panel_data_fresh, fresh_settings)
    assert not result.passed and result.metadata["lag_seconds"].value > 7000


def test_stream_lag_counts_uncommitted_messages(fresh_settings):
    producer = kafka_clients.producer(fresh_settings, "fleet")
    for i in range(40):
        producer.send(fresh_settings.topic, key=b"p-0", value=b'{"x": %d}' % i)
    producer.flush()
    producer.close()
    solar = SolarSettingsResource.for_settings(fresh_settings)
    figures = stream_lag_figures(fresh_settings, KafkaResource(solar=solar))
    assert figures["messages_behind"] == 40 and figures["committed_batch"] == -1
    # a checkpoint whose last committed batch ended at the end offsets: no lag
    ends = KafkaResource(solar=solar).end_offsets()
    ckpt = fresh_settings.checkpoint_dir / "readings"
    (ckpt / "offsets").mkdir(parents=True)
    (ckpt / "commits").mkdir()
    (ckpt / "offsets" / "3").write_text('v1\n{"batchWatermarkMs":0}\n' + json.dumps(
        {fresh_settings.topic: {str(p): o for p, o in ends.items()}}))
    (ckpt / "commits" / "3").write_text('v1\n{"nextBatchWatermarkMs":0}')
    figures = stream_lag_figures(fresh_settings, KafkaResource(solar=solar))
    assert figures["messages_behind"] == 0 and figures["committed_batch"] == 3


def _progress(settings, recorded_at: datetime) -> None:
    with db.engine(settings, role="migrator").begin() as conn:
        conn.execute(text("INSERT INTO stream_progress (query_id, query_name, batch_id, rows_in, rows_written, "
                          "dead_letters, max_event_time, duration_ms, recorded_at) VALUES "
                          "('q', 'readings', 1, 10, 10, 0, :t, 5, :t)"), {"t": recorded_at})


def _evaluate(sensor, defs, **kwargs):
    with dg.build_sensor_context(resources=defs.resources, definitions=defs, **kwargs) as context:
        return sensor(context), context.cursor


def test_stale_heartbeat_requests_a_restart_only_when_input_waits(fresh_settings, offline_processes):
    defs = defs_for(fresh_settings, processes=offline_processes)
    offline_processes.set_state("stream", "RUNNING")
    _progress(fresh_settings, _now() - timedelta(minutes=10))
    with dg.instance_for_test() as instance:
        # Nothing on the topic the stream has not committed: idle (night, fleet stopped), never restarted.
        idle, _ = _evaluate(stream_heartbeat, defs, instance=instance)
        assert isinstance(idle, dg.SensorResult) and not idle.run_requests
        assert "idle" in idle.skip_reason.skip_message
        assert idle.asset_events[0].metadata["idle"].value is True
        # Input waiting behind a stale heartbeat: stuck.
        producer = kafka_clients.producer(fresh_settings, "fleet", acks="all")
        producer.send(fresh_settings.topic, key=b"panel-1", value=b"{}").get(timeout=30)
        producer.close()
        result, cursor = _evaluate(stream_heartbeat, defs, instance=instance)
        assert isinstance(result, dg.SensorResult)
        assert len(result.run_requests) == 1 and result.run_requests[0].run_key.startswith("restart-stream-")
        observation = result.asset_events[0]
        assert observation.asset_key == dg.AssetKey("spark_stream")
        assert observation.metadata["heartbeat_stale"].value is True
        assert observation.metadata["messages_behind"].value == 1
        # within the grace period: observed, but no second restart
        again, _ = _evaluate(stream_heartbeat, defs, instance=instance, cursor=cursor)
        assert not again.run_requests
    # a fresh heartbeat: healthy, nothing requested
    with db.engine(fresh_settings, role="migrator").begin() as conn:
        conn.execute(text("UPDATE stream_progress SET recorded_at = UTC_TIMESTAMP(3)"))
    healthy, _ = _evaluate(stream_heartbeat, defs)
    assert isinstance(healthy, dg.SkipReason) and "healthy" in healthy.skip_message
    # an operator stopped it: leave it alone
    offline_processes.set_state("stream", "STOPPED")
    with db.engine(fresh_settings, role="migrator").begin() as conn:
        conn.execute(text("UPDATE stream_progress SET recorded_at = UTC_TIMESTAMP(3) - INTERVAL 1 HOUR"))
    assert isinstance(_evaluate(stream_heartbeat, defs)[0], dg.SkipReason)


def _pulse(settings, started_at: datetime, pulse_at: datetime, in_flight: bool = True) -> None:
    with db.engine(settings, role="migrator").begin() as conn:
        conn.execute(text("REPLACE INTO stream_pulse (query_name, batch_id, batch_started_at, pulse_at, in_flight) "
                          "VALUES ('readings', 7, :s, :p, :f)"), {"s": started_at, "p": pulse_at, "f": in_flight})


def test_a_batch_in_flight_is_never_restarted_however_old_the_heartbeat(fresh_settings, offline_processes):
    defs = defs_for(fresh_settings, processes=offline_processes)
    offline_processes.set_state("stream", "RUNNING")
    _progress(fresh_settings, _now() - timedelta(minutes=10))
    producer = kafka_clients.producer(fresh_settings, "fleet", acks="all")
    producer.send(fresh_settings.topic, key=b"panel-1", value=b"{}").get(timeout=30)
    producer.close()
    with dg.instance_for_test() as instance:
        # A catch-up batch running for 4 minutes, past the 60 s staleness limit, its pulse fresh.
        _pulse(fresh_settings, _now() - timedelta(minutes=4), _now() - timedelta(seconds=3))
        busy, _ = _evaluate(stream_heartbeat, defs, instance=instance)
        assert isinstance(busy, dg.SensorResult) and not busy.run_requests
        assert "busy" in busy.skip_reason.skip_message
        assert busy.asset_events[0].metadata["batch_in_flight"].value == 7
        # The pulse stopped (the driver hangs or died without exiting): stuck, restarted.
        _pulse(fresh_settings, _now() - timedelta(minutes=4), _now() - timedelta(minutes=3))
        stuck, cursor = _evaluate(stream_heartbeat, defs, instance=instance)
        assert len(stuck.run_requests) == 1
    with dg.instance_for_test() as instance:
        # A pulse that keeps beating on a batch running past the longest a batch may take: hung.
        _pulse(fresh_settings, _now() - timedelta(seconds=fresh_settings.stream_max_batch_seconds + 60),
               _now() - timedelta(seconds=2))
        hung, _ = _evaluate(stream_heartbeat, defs, instance=instance)
        assert len(hung.run_requests) == 1
        assert "past the longest a batch may take" in hung.run_requests[0].tags["solar/reason"]
